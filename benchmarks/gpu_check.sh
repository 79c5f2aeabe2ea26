#!/usr/bin/env bash
# GPU validation for gpbo, to run on a CUDA machine within a 10-minute limit:
#   bash benchmarks/gpu_check.sh            # results under $OUT (default benchmarks/results/gpu)
# Steps (each under its own `timeout`, a failing step does not stop the rest;
# the exit status is non-zero if any step failed):
#   1. environment (nvidia-smi, versions);
#   2. the test suite (tests parametrise over CUDA when torch.cuda.is_available());
#   3. host-device sync count of one engine.suggest call (torch.cuda.set_sync_debug_mode);
#   4. sweep throughput: P = 1, 64, 256, 1024 Hartmann6 replicas batched, 50 iterations,
#      plus one sequential gpbo replica (target: P=1024 wall <= 3x P=1 wall);
#   5. suggestion latency gpbo vs BoTorch at n = 100, 1000 (target at n=1000: gpbo <= 0.2x BoTorch);
#   6. float32 vs float64: the same small gpbo sweep in both dtypes (regret tables side by side).
# On a machine without CUDA, steps 2-6 run what they can on the CPU and say so.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
DEV=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
QUICK="${QUICK:-0}"   # QUICK=1: tiny sizes (to check the script itself on a CPU)
fail=0
step() {  # step NAME SECONDS CMD...
    local name=$1 secs=$2; shift 2
    echo "== $name (limit ${secs}s, device $DEV)"
    local t0=$SECONDS
    timeout "$secs" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "   rc=$rc  $((SECONDS - t0))s  -> $OUT/$name.log"; tail -n 25 "$OUT/$name.log"
    [ "$rc" -ne 0 ] && fail=1
    return 0
}
{ nvidia-smi || echo "no nvidia-smi"; $PY -c "import torch, gpytorch, botorch; print(torch.__version__, torch.version.cuda, gpytorch.__version__, botorch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"; } > "$OUT/env.log" 2>&1
cat "$OUT/env.log"
if [ "$QUICK" = 1 ]; then
    P_LIST=1,8; ITERS=3; N_LIST=20; SEEDS=2; BUDGET=12; TESTS="tests/benchmarks"; REPS=1
else
    P_LIST=1,64,256,1024; ITERS=50; N_LIST=100,1000; SEEDS=8; BUDGET=40; TESTS="tests"; REPS=3
fi
step tests 240 $PY -m pytest -q -x "$TESTS"
step sync_check 60 $PY -m benchmarks.sync_check
step throughput 150 $PY -m benchmarks.speed --part throughput --device "$DEV" --P-list "$P_LIST" \
    --iters "$ITERS" --methods gpbo --seq-reps 1 --out "$OUT/speed_throughput.json"
step latency 90 $PY -m benchmarks.speed --part latency --device "$DEV" --n-list "$N_LIST" --d-list 20 \
    --methods gpbo,botorch --reps "$REPS" --out "$OUT/speed_latency.json"
for dt in float64 float32; do
    step "sweep_$dt" 60 $PY -m benchmarks.sweep --problems branin,hartmann6 --methods gpbo \
        --seeds "$SEEDS" --budget "$BUDGET" --device "$DEV" --dtype "$dt" --out "$OUT/sweep_$dt"
done
echo "== float64 vs float32 (gpbo final log10 regret, median [IQR])"
for dt in float64 float32; do echo "-- $dt"; cat "$OUT/sweep_$dt/summary.md" 2>/dev/null | head -4; done
exit $fail
