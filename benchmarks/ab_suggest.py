"""Before/after latency of one ``gpbo.engine.suggest``: a git revision against the working tree.

    python -m benchmarks.ab_suggest [--base HEAD~1] [--n-list 20,100] [--d 6] [--problems 1] [--objectives 1]
                                    [--q 1] [--reps 15] [--settings '{"acquisition": "ucb"}']

For speed changes inside gpbo (decision records 0040-0044): the revision's
``gpbo/`` is exported (``git archive``) to a temporary folder and imported by
one worker process, the working tree's by another; no code is patched. The
workers take turns, one warm-started suggestion each (as
``benchmarks.profile_suggest``: Styblinski-Tang on n scrambled Sobol points,
the fit warm-started from the model of n - 1 points, seed = rep), one torch
thread each, so both see the same machine load. With ``--problems P`` one
suggestion serves P studies at once (P Sobol designs, batched); with
``--objectives 2`` each study has a second objective (Styblinski-Tang
shifted by one unit: a Pareto front) and the engine's multi-objective
default; ``--q`` points per suggestion. Prints per
cell the median wall time of each and the ratio after / before (median of
the per-rep ratios), whether the candidates were bit-identical, and for how
many (rep, problem) pairs the new acquisition value found was lower (by more
than 1e-6 relative): a search-quality check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]

_WORKER = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
import gpbo, gpbo.engine as engine
assert gpbo.__file__.startswith(sys.argv[1]), gpbo.__file__
torch.set_num_threads(1)
settings = json.loads(sys.argv[2]) or None
def data(n, d, P, m):
    X = torch.stack([torch.quasirandom.SobolEngine(d, scramble=True, seed=k).draw(n, dtype=torch.float64)
                     for k in range(P)])
    st = [-0.5 * (U**4 - 16 * U**2 + 5 * U).sum(-1) for U in (10.0 * X - 5.0, 10.0 * X - 6.0)]
    return X, st[0] if m == 1 else torch.stack(st[:m], -1)
if int(sys.argv[3]) > 1:
    settings = {**(settings or {}), "outcomes": {"n_objectives": int(sys.argv[3]), "n_constraints": 0}}
models = {}
for line in sys.stdin:
    n, d, P, q, seed = map(int, line.split())
    X, Y = data(n, d, P, int(sys.argv[3]))
    if (n, d) not in models:
        models[n, d] = engine.suggest(X[:, :-1], Y[:, :-1], seed=0, settings=settings).model
        engine.suggest(X, Y, seed=10**6, warm_start=models[n, d], settings=settings)
    t0 = time.perf_counter()
    s = engine.suggest(X, Y, q=q, seed=seed, warm_start=models[n, d], settings=settings)
    wall = time.perf_counter() - t0
    print(json.dumps({"wall": wall, "x": s.candidates.flatten().tolist(), "acq": s.acq_values.flatten().tolist()}),
          flush=True)
"""


def _export(rev: str, into: Path) -> None:
    archive = into / "src.tar"
    subprocess.run(["git", "archive", "-o", str(archive), rev, "gpbo"], cwd=_ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare the working tree with")
    ap.add_argument("--n-list", default="20,100")
    ap.add_argument("--d", type=int, default=6)
    ap.add_argument("--problems", type=int, default=1, help="P studies batched in one suggestion")
    ap.add_argument("--objectives", type=int, default=1, choices=(1, 2), help="objectives per study")
    ap.add_argument("--q", type=int, default=1, help="points per suggestion")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--settings", default="", help="JSON gpbo.Settings fields for both")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        _export(args.base, Path(tmp))
        workers = [
            subprocess.Popen([sys.executable, "-c", _WORKER, root, args.settings or "null", str(args.objectives)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for root in (tmp, str(_ROOT))
        ]
        for n in map(int, args.n_list.split(",")):
            walls: list[list[float]] = [[], []]
            same, worse, deltas = True, 0, []
            for rep in range(args.reps):
                outs = []
                for i in (rep % 2, 1 - rep % 2):  # alternate who goes first
                    workers[i].stdin.write(f"{n} {args.d} {args.problems} {args.q} {rep}\n")
                    workers[i].stdin.flush()
                    outs.append((i, json.loads(workers[i].stdout.readline())))
                outs.sort()
                for i, out in outs:
                    walls[i].append(out["wall"])
                same = same and outs[0][1]["x"] == outs[1][1]["x"]
                for a, b in zip(outs[0][1]["acq"], outs[1][1]["acq"]):
                    worse += b < a - 1e-6 * (1 + abs(a))
                    deltas.append(b - a)
            ratio = statistics.median(a / b for a, b in zip(walls[1], walls[0]))
            row = {"n": n, "d": args.d, "problems": args.problems, "objectives": args.objectives, "q": args.q,
                   "base": args.base, "reps": args.reps,
                   "base_ms": 1e3 * statistics.median(walls[0]), "new_ms": 1e3 * statistics.median(walls[1]),
                   "new_over_base": ratio, "bit_identical": same, "pairs_new_acq_value_lower": worse,
                   "acq_new_minus_base_min": min(deltas), "acq_new_minus_base_median": statistics.median(deltas)}
            print(json.dumps(row), flush=True)
            rows.append(row)
        for w in workers:
            w.stdin.close()
            w.wait()
    return rows


if __name__ == "__main__":
    main()
