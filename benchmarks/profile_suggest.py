"""Where one ``gpbo.engine.suggest`` call spends its time (GP fit vs acquisition ascent).

    python -m benchmarks.profile_suggest [--device cuda] [--n-list 100,1000] [--d 10] [--P 1] [--reps 3]
                                         [--accelerator-mode]

Data as ``benchmarks.speed``'s latency part: Styblinski-Tang on n scrambled
Sobol points in d dims; with P > 1, P problems with different points (Sobol
seeds 0..P-1). One untimed call on n - 1 points (the
previous ask), then ``--reps`` calls on all n warm-started from its model,
each under ``cProfile`` (its per-function aggregation splits the time; nothing
is patched; the times include cProfile's overhead, about 10% of a CPU
suggestion at n = 100, d = 2):

- ``fit``: ``gpbo.models.select.fit_surrogate`` (the MAP fit);
- ``acquisition``: the multi-start ascent (``gpbo.search.multistart.maximize_acquisition``);
- the L-BFGS-B calls inside each phase (``gpbo.optim.lbfgsb.minimize_lbfgsb``),
  read by a profile hook on the last rep's call run once more, untimed: per
  call the median, 99th percentile and maximum of the iterations its batch
  elements ran. A batched call runs until its slowest element is done, so the
  maximum is what the call costs.

``--accelerator-mode`` runs the CPU through the accelerator path of
``minimize_lbfgsb`` (the "all done" check every 10 iterations, the batched
line search), to study on a CPU how the GPU's iteration counts grow with P.

On CUDA one more call runs under ``torch.profiler`` and reports the number of
kernel launches (graph launches included), the GPU's busy time (sum of
kernel times) and the eight kernels with the most device time, against the
call's wall time: a low busy fraction means the call is bound by Python and
launch overhead, not by GPU arithmetic. Medians over reps; JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from types import CodeType, FrameType
from typing import Callable

import torch

import gpbo.engine as engine
from benchmarks.speed import sobol_designs, styblinski_tang
from gpbo.models.select import fit_surrogate
from gpbo.optim.lbfgsb import minimize_lbfgsb
from gpbo.search.multistart import maximize_acquisition
from gpbo.settings import Settings

# The phases, by the function whose cumulative time each is: the MAP fit and
# the multi-start ascent (building the acquisition function, e.g. Thompson's
# sample paths, is in neither).
_PHASES = {"fit": fit_surrogate.__code__, "acquisition": maximize_acquisition.__code__}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _phase_times(call: Callable[[], object], device: torch.device) -> dict[str, float]:
    """Wall time of ``call()`` under cProfile and the cumulative time of each phase's function.

    cProfile aggregates by function (no patching). On CUDA the phases end at
    their own host syncs (the solver's "all done" checks), not at a device
    sync, so their split is approximate there; the total is synced.
    """
    prof = cProfile.Profile()
    _sync(device)
    t0 = time.perf_counter()
    prof.enable()
    try:
        call()
        _sync(device)
    finally:
        prof.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (calls, calls, own time, cumulative time, callers)
    return {"total_s": total, **{f"{phase}_s": stats.get(_label(code), (0, 0, 0.0, 0.0))[3]
                                 for phase, code in _PHASES.items()}}


def _label(code: CodeType) -> tuple[str, int, str]:
    return code.co_filename, code.co_firstlineno, code.co_name


def _lbfgs_calls(call: Callable[[], object]) -> dict[str, list]:
    """Each ``minimize_lbfgsb`` result returned while ``call()`` runs, by phase.

    A profile hook (``sys.setprofile``) sees every return and keeps those of
    ``minimize_lbfgsb``; the phase is the phase function found up the stack.
    The hook slows the call, so it runs untimed.
    """
    target = minimize_lbfgsb.__code__
    phase_of = {code: phase for phase, code in _PHASES.items()}
    calls: dict[str, list] = {}

    def hook(frame: FrameType, event: str, arg: object) -> None:
        if event == "return" and frame.f_code is target and arg is not None:
            outer = frame.f_back
            while outer is not None and outer.f_code not in phase_of:
                outer = outer.f_back
            calls.setdefault("other" if outer is None else phase_of[outer.f_code], []).append(arg)

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(previous)
    return calls


def _summarise(calls: dict[str, list]) -> dict[str, list[dict[str, int]]]:
    """Per phase and call: elements, median, 99th percentile and max of the
    iterations, and whether they were replayed from a CUDA graph."""
    out = {}
    for phase, results in calls.items():
        out[phase] = []
        for res in results:
            it = res.n_iter.flatten().double().cpu()
            p50, p99 = torch.quantile(it, torch.tensor([0.5, 0.99], dtype=it.dtype)).tolist()
            out[phase].append({"elements": it.numel(), "p50": round(p50), "p99": round(p99), "max": int(it.max()),
                               "graphed": res.graphed})
    return out


def _data(P: int, n: int, d: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """P different problems (Sobol seeds 0..P-1): X (P, n, d), Y (P, n) maximised."""
    X = sobol_designs(P, n, d, device)
    return X, -styblinski_tang(X)


def _launches(X, Y, model, seed: int) -> dict:
    """Kernel launches and GPU busy time of one suggestion (CUDA only)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        engine.suggest(X, Y, seed=seed, warm_start=model)
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key.startswith(("cudaLaunchKernel", "cudaGraphLaunch")))
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_us = sum(e.self_device_time_total for e in kernels)
    top = sorted(kernels, key=lambda e: -e.self_device_time_total)[:8]
    return {"kernel_launches": launches, "gpu_busy_s": busy_us * 1e-6, "profiled_wall_s": wall,
            "top_kernels_ms": {e.key[:80]: round(e.self_device_time_total * 1e-3, 2) for e in top}}


def profile_one(P: int, n: int, d: int, device: str, reps: int, accelerator_mode: bool = False) -> dict:
    X, Y = _data(P, n, d, device)
    settings = Settings(solver_path="accelerator" if accelerator_mode else "auto")
    model = engine.suggest(X[:, :-1], Y[:, :-1], seed=0, settings=settings).model  # untimed: the previous ask

    def call(seed: int) -> Callable[[], object]:
        return lambda: engine.suggest(X, Y, seed=seed, warm_start=model, settings=settings)

    rows = [_phase_times(call(r + 1), X.device) for r in range(reps)]
    out = {"P": P, "n": n, "d": d, "device": device, "reps": reps, "accelerator_mode": accelerator_mode,
           **{k: statistics.median(row[k] for row in rows) for k in ("total_s", "fit_s", "acquisition_s")},
           "lbfgs_iterations": _summarise(_lbfgs_calls(call(reps)))}  # the last rep's calls again
    if X.device.type == "cuda":
        out.update(_launches(X, Y, model, seed=reps + 1))
    return out


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile_suggest")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n-list", default="100,1000")
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--P", type=int, default=1)
    ap.add_argument("--P-list", default=None, help="several P (one row each); overrides --P")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--accelerator-mode", action="store_true")
    a = ap.parse_args(argv)
    res = []
    Ps = [int(x) for x in a.P_list.split(",")] if a.P_list else [a.P]
    for P, n in ((P, int(n)) for P in Ps for n in a.n_list.split(",")):
        res.append(profile_one(P, n, a.d, a.device, a.reps, a.accelerator_mode))
        print(json.dumps(res[-1]), flush=True)
    return res


if __name__ == "__main__":
    main()
