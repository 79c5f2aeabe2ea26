"""Count host-device synchronisations in one ``gpbo.engine.suggest`` call on CUDA.

    python -m benchmarks.sync_check [--P 64] [--n 50] [--d 6] [--acquisitions log_ei,qlog_nei]

Uses ``torch.cuda.set_sync_debug_mode("warn")``: every synchronising CUDA call
(``.item()``, ``.cpu()``, ``nonzero``, a host ``if`` on a tensor, ...) emits a
warning, which is recorded and grouped by source line. One warm-up call runs
first (lazy initialisation syncs are not counted). DESIGN.md allows a host
check of "all converged" every k L-BFGS iterations, so the count is expected to
be small but not zero; the point is to see where they come from. Without CUDA
it prints a note and exits 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import warnings

import torch


def count(P: int, n: int, d: int, acquisition: str, dtype=torch.float64) -> dict:
    from gpbo import engine

    g = torch.Generator().manual_seed(0)
    X = torch.rand(P, n, d, generator=g, dtype=dtype).cuda()
    Y = -((X - 0.3) ** 2).sum(-1)
    s = engine.suggest(X, Y, acquisition=acquisition, seed=0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            engine.suggest(X, Y, acquisition=acquisition, seed=1, warm_start=s.model)
            torch.cuda.synchronize()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    where = collections.Counter(f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message))
    return {"P": P, "n": n, "d": d, "acquisition": acquisition, "dtype": str(dtype),
            "syncs": sum(where.values()), "by_line": dict(where.most_common(15))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sync_check")
    ap.add_argument("--P", type=int, default=64)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--d", type=int, default=6)
    ap.add_argument("--acquisitions", default="log_ei,qlog_nei")
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("sync_check: no CUDA device, skipped")
        return 0
    for acq in a.acquisitions.split(","):
        for dt in (torch.float64, torch.float32):
            print(json.dumps(count(a.P, a.n, a.d, acq, dt)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
