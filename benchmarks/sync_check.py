"""Count host-device synchronisations in one ``gpbo.engine.suggest`` call on CUDA.

    python -m benchmarks.sync_check [--P-list 1,256] [--n 50] [--d 6] [--acquisitions log_ei,qlog_nei]

Uses ``torch.cuda.set_sync_debug_mode("warn")``: every synchronising CUDA call
(``.item()``, ``.cpu()``, ``nonzero``, a host ``if`` on a tensor, ...) emits a
warning, which is recorded and grouped by source line. One warm-up call runs
first (lazy initialisation syncs are not counted). DESIGN.md allows a host
check of "all converged" every k L-BFGS iterations, so the count is expected to
be small but not zero; the point is to see where they come from.

A second part checks that the count does not grow with the number of L-BFGS-B
iterations: ``minimize_lbfgsb`` on 64 ten-dimensional Rosenbrock problems with
the tolerances at zero (so every element runs to ``max_iter``) at
``max_iter`` = 10, 50, 200; the syncs should be ``max_iter / check_every`` (the
"all done" checks), not one or more per iteration.

Without CUDA it prints a note and exits 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import warnings

import torch


def count_syncs(fn, device: str = "cuda") -> tuple[object, collections.Counter]:
    """Run ``fn()`` under sync debug mode: its result and the synchronising calls grouped by source line.

    On a CPU ``device`` there is no host-device sync to count: ``fn()`` runs
    plainly and the counter is empty.
    """
    if torch.device(device).type != "cuda":
        return fn(), collections.Counter()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fn()
            torch.cuda.synchronize()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return out, collections.Counter(f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message))


def count(P: int, n: int, d: int, acquisition: str, dtype=torch.float64) -> dict:
    from gpbo import engine

    g = torch.Generator().manual_seed(0)
    X = torch.rand(P, n, d, generator=g, dtype=dtype).cuda()
    Y = -((X - 0.3) ** 2).sum(-1)
    s = engine.suggest(X, Y, seed=0, settings={"acquisition": acquisition})
    _, where = count_syncs(lambda: engine.suggest(X, Y, seed=1, warm_start=s.model, settings={"acquisition": acquisition}))
    return {"P": P, "n": n, "d": d, "acquisition": acquisition, "dtype": str(dtype),
            "syncs": sum(where.values()), "by_line": dict(where.most_common(15))}


def lbfgsb_scaling(max_iter: int, B: int = 64, D: int = 10, device: str = "cuda") -> dict:
    """Syncs of one ``minimize_lbfgsb`` call on B Rosenbrock-D problems run to ``max_iter``."""
    from gpbo.optim.lbfgsb import minimize_lbfgsb

    def rosenbrock(x):  # (..., B, D) -> (..., B)
        return (100 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2).sum(-1)

    x0 = torch.full((B, D), -1.5, dtype=torch.float64, device=device)
    x0 += 0.1 * torch.arange(B, dtype=torch.float64, device=device)[:, None] / B
    res, where = count_syncs(
        lambda: minimize_lbfgsb(rosenbrock, x0, -2.0, 2.0, max_iter=max_iter, pgtol=0.0, ftol=0.0), device)
    return {"part": "lbfgsb_scaling", "max_iter": max_iter, "mean_iterations": float(res.n_iter.double().mean()),
            "syncs": sum(where.values()), "by_line": dict(where.most_common(5))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sync_check")
    ap.add_argument("--P-list", default="1,256")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--d", type=int, default=6)
    ap.add_argument("--acquisitions", default="log_ei,qlog_nei")
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("sync_check: no CUDA device, skipped")
        return 0
    for max_iter in (10, 50, 200):
        print(json.dumps(lbfgsb_scaling(max_iter)), flush=True)
    for P in [int(p) for p in a.P_list.split(",")]:
        for acq in a.acquisitions.split(","):
            for dt in (torch.float64, torch.float32):
                print(json.dumps(count(P, a.n, a.d, acq, dt)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
