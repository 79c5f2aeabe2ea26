"""Where one ``gpbo.engine.suggest`` call spends its time (GP fit vs acquisition ascent).

    python -m benchmarks.profile_suggest [--device cuda] [--n-list 100,1000] [--d 10] [--P 1] [--reps 3]
                                         [--accelerator-mode]

Data as ``benchmarks.speed``'s latency part: Styblinski-Tang on n scrambled
Sobol points in d dims; with P > 1, P problems with different points (Sobol
seeds 0..P-1). One untimed call on n - 1 points (the
previous ask), then ``--reps`` calls on all n warm-started from its model,
each phase timed with a device sync around it:

- ``fit``: ``gpbo.models.select.fit_surrogate`` (the MAP fit);
- ``acquisition``: the multi-start ascent (``gpbo.engine._maximise``);
- the L-BFGS-B calls inside each phase (``gpbo.optim.lbfgsb.minimize_lbfgsb``):
  per call the median, 99th percentile and maximum of the iterations its batch
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
import contextlib
import json
import statistics
import time

import torch

import gpbo.engine as engine
import gpbo.models.exact as exact
import gpbo.search.multistart as multistart
from benchmarks.speed import sobol_designs, styblinski_tang
from gpbo.settings import Settings


class _Recorder:
    """Wraps the phases and the L-BFGS-B calls of the engine while active."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.phase = "other"
        self.times: dict[str, float] = {}
        self.n_iter: dict[str, list[torch.Tensor]] = {}  # phase -> n_iter of each L-BFGS-B call
        self.graphed: dict[str, list[bool]] = {}  # phase -> whether each call replayed a CUDA graph

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def timed(self, name, fn):
        def wrapper(*args, **kwargs):
            self._sync()
            outer, self.phase, t0 = self.phase, name, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._sync()
                self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
                self.phase = outer
        return wrapper

    def counted(self, fn):
        def wrapper(*args, **kwargs):
            res = fn(*args, **kwargs)
            self.n_iter.setdefault(self.phase, []).append(res.n_iter)  # summarised after the call: no sync here
            self.graphed.setdefault(self.phase, []).append(res.graphed)
            return res
        return wrapper

    def lbfgs_iterations(self) -> dict[str, list[dict[str, int]]]:
        """Per phase and call: elements, median, 99th percentile and max of the
        iterations, and whether they were replayed from a CUDA graph."""
        out = {}
        for phase, calls in self.n_iter.items():
            out[phase] = []
            for n_iter, graphed in zip(calls, self.graphed[phase]):
                it = n_iter.flatten().double().cpu()
                p50, p99 = torch.quantile(it, torch.tensor([0.5, 0.99], dtype=it.dtype)).tolist()
                out[phase].append({"elements": it.numel(), "p50": round(p50), "p99": round(p99), "max": int(it.max()),
                                   "graphed": graphed})
        return out

    @contextlib.contextmanager
    def active(self):
        patches = [(engine, "fit_surrogate", self.timed("fit", engine.fit_surrogate)),
                   (engine, "_maximise", self.timed("acquisition", engine._maximise)),
                   (multistart, "minimize_lbfgsb", self.counted(multistart.minimize_lbfgsb)),
                   (exact, "minimize_lbfgsb", self.counted(exact.minimize_lbfgsb))]
        saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
        for mod, name, new in patches:
            setattr(mod, name, new)
        try:
            yield self
        finally:
            for mod, name, old in saved:
                setattr(mod, name, old)


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
    rows = []
    for r in range(reps):
        rec = _Recorder(X.device)
        with rec.active():
            rec._sync()
            t0 = time.perf_counter()
            engine.suggest(X, Y, seed=r + 1, warm_start=model, settings=settings)
            rec._sync()
            rows.append({"total_s": time.perf_counter() - t0, **{f"{k}_s": v for k, v in rec.times.items()},
                         "lbfgs_iterations": rec.lbfgs_iterations()})
    out = {"P": P, "n": n, "d": d, "device": device, "reps": reps, "accelerator_mode": accelerator_mode,
           **{k: statistics.median(row[k] for row in rows) for k in ("total_s", "fit_s", "acquisition_s")},
           "lbfgs_iterations": rows[-1]["lbfgs_iterations"]}
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
