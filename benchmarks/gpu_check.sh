#!/usr/bin/env bash
# GPU validation for gpbo, to run on a CUDA machine within a 10-minute limit:
#   bash benchmarks/gpu_check.sh     # results under $GPU_RESULTS (default benchmarks/results/gpu)
# Steps (each under its own `timeout`; a failing step does not stop the rest;
# the exit status is non-zero if any step failed):
#   1. environment (nvidia-smi, versions);
#   2. the tests that run on CUDA (parametrised over CUDA when torch.cuda.is_available(),
#      float32 and float64 where a test has a dtype; TESTS_K="" runs the whole suite);
#   3. host syncs (benchmarks.sync_check): per suggestion at P = 1 and 256, and
#      per L-BFGS-B call at 10 / 50 / 200 iterations (must not grow per iteration);
#   4. sweep throughput: P = 1, 64, 256, 1024 Hartmann6 replicas batched, 30
#      iterations, plus one sequential gpbo replica (target: P=1024 wall <= 3x P=1 wall);
#      then P = 1 and 1024 again with GPBO_CUDA_GRAPHS=0 (the eager launches), same machine;
#   5. suggestion latency at n = 100, 1000, 5000, d = 10: gpbo exact (its L-BFGS-B
#      iterations replayed from CUDA graphs), the same launched eagerly, gpbo SVGP,
#      BoTorch's standard recipe on the same GPU (target at n=1000: gpbo <= 0.2x BoTorch);
#   6. where one suggestion's time goes (benchmarks.profile_suggest: fit vs acquisition,
#      L-BFGS-B iterations and whether they were graphed, kernel launches, GPU busy time,
#      top kernels) at n = 100, 1000, 5000, d = 10, and at P = 1 and 1024 (n = 30, d = 6);
#   7. precision: Hartmann6, 16 seeds, 60 evaluations, in float64 and in float32.
# STEPS="throughput latency" (say) runs only those steps.
# On a machine without CUDA, steps 2-6 run what they can on the CPU and say so.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
RES="${GPU_RESULTS:-benchmarks/results/gpu}"
mkdir -p "$RES"
PY="${PYTHON:-python3}"
DEV=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
QUICK="${QUICK:-0}"   # QUICK=1: tiny sizes (to check the script itself on a CPU)
fail=0
STEPS="${STEPS:-tests sync_check throughput latency profile sweep}"
step() {  # step NAME SECONDS CMD...
    local name=$1 secs=$2; shift 2
    local group=${name%%_float*}; group=${group%_eager}; group=${group%_P}  # sweep_float64 -> sweep, ...
    case " $STEPS " in *" $group "*) ;; *) return 0 ;; esac
    echo "== $name (limit ${secs}s, device $DEV)"
    local t0=$SECONDS
    timeout "$secs" "$@" > "$RES/$name.log" 2>&1
    local rc=$?
    echo "   rc=$rc  $((SECONDS - t0))s  -> $RES/$name.log"; tail -n 30 "$RES/$name.log"
    [ "$rc" -ne 0 ] && fail=1
    return 0
}
{ nvidia-smi || echo "no nvidia-smi"; $PY -c "import torch, gpytorch, botorch; print(torch.__version__, torch.version.cuda, gpytorch.__version__, botorch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"; } > "$RES/env.log" 2>&1
cat "$RES/env.log"
XDIST=$($PY -c "import xdist" 2>/dev/null && echo "-n 8" || echo "")
if [ "$QUICK" = 1 ]; then
    P_LIST=1,8; ITERS=3; N_LIST=20,100; SEEDS=2; BUDGET=12; TESTS="tests/benchmarks"; REPS=1; SYNC_P=1,8; P_BIG=8
else
    P_LIST=1,64,256,1024; ITERS=30; N_LIST=100,1000,5000; SEEDS=16; BUDGET=60; TESTS="tests"; REPS=3; SYNC_P=1,256
    P_BIG=1024
fi
TESTS_K="${TESTS_K-cuda or meta}"
# shellcheck disable=SC2086  # XDIST is empty or two words
step tests 120 $PY -m pytest -q -p no:cacheprovider $XDIST -k "$TESTS_K" "$TESTS"
step sync_check 45 $PY -m benchmarks.sync_check --P-list "$SYNC_P" --acquisitions log_ei
step throughput 90 $PY -m benchmarks.speed --part throughput --device "$DEV" --P-list "$P_LIST" \
    --iters "$ITERS" --methods gpbo --seq-reps 1 --out "$RES/speed_throughput.json"
step throughput_eager 60 env GPBO_CUDA_GRAPHS=0 $PY -m benchmarks.speed --part throughput --device "$DEV" \
    --P-list "1,$P_BIG" --iters "$ITERS" --methods gpbo --seq-reps 0 --out "$RES/speed_throughput_eager.json"
step latency 100 $PY -m benchmarks.speed --part latency --device "$DEV" --n-list "$N_LIST" --n-d 10 \
    --d-list "" --methods gpbo,gpbo_eager,gpbo_svgp,botorch --reps "$REPS" --out "$RES/speed_latency.json"
step profile 50 $PY -m benchmarks.profile_suggest --device "$DEV" --n-list "$N_LIST" --d 10
step profile_P 45 $PY -m benchmarks.profile_suggest --device "$DEV" --n-list 30 --d 6 --P-list "1,$P_BIG"
for dt in float64 float32; do
    step "sweep_$dt" 45 $PY -m benchmarks.sweep --problems hartmann6 --methods gpbo \
        --seeds "$SEEDS" --budget "$BUDGET" --device "$DEV" --dtype "$dt" --out "$RES/sweep_$dt"
done
echo "== float64 vs float32 (gpbo final log10 regret, median [IQR])"
for dt in float64 float32; do echo "-- $dt"; head -4 "$RES/sweep_$dt/summary.md" 2>/dev/null; done
exit $fail
