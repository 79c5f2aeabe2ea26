"""Where a method spends its evaluations on one synthetic problem (a diagnostic).

    python -m benchmarks.density OUT_DIR --problem rosenbrock4_noisy [--threshold 3000] [--high 1e5] [--last 50] [--turns 2]

For each method of a sweep's results file, over seeds (medians):

- ``log10 best@k``: log10 simple regret of the best noiseless value among
  the first k evaluations, for k = 20, 40, 60 and the full budget;
- ``share < T``: the share of the last ``--last`` evaluations whose
  noiseless value is below the threshold T;
- ``share > H``: the share of them above ``--high`` (evaluations spent far
  from the optimum);
- ``at bound``: the share of them with at least one parameter within 1 % of
  its range from a bound (in gpbo's unit-cube encoding);
- ``spread``: the mean per-parameter standard deviation of those last
  evaluations' inputs (raw parameter units), i.e. how concentrated they are.

With ``--turns N`` each method also gets N rows "method turn k" with the
share columns of its evaluations whose index is k modulo N: for the default
portfolio (``--turns 2``) turn 0 is LogEI's and turn 1 UCB's (the member is
the number of points the study holds, modulo 2; the initial design of
max(5, d + 1) points comes first, so use ``--last`` below budget - n_init).

Used to explain Rosenbrock-4-noisy, where the noise hides the function below
~1e4 and the score rewards dense sampling there (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.problems import Problem, get
from benchmarks.report import load

CHECKPOINTS = (20, 40, 60)
BOUND_MARGIN = 0.01  # unit-cube distance from a bound that counts as "at the bound"


def runs_of(folder: Path, problem: str) -> dict[str, list[list[dict]]]:
    """method -> complete runs (records ordered by idx) of ``problem``."""
    out: dict[str, list[list[dict]]] = defaultdict(list)
    for (method, prob, _, budget, _), recs in sorted(load(folder).items()):
        if prob == problem and len(recs) == budget:
            out[method].append([recs[i] for i in range(budget)])
    return out


def run_stats(run: list[dict], problem: Problem, threshold: float, high: float, last: int,
              turn: tuple[int, int] | None = None) -> dict[str, float]:
    """The diagnostics of one run (see the module docstring).

    ``turn = (k, N)`` keeps only the last evaluations with index k modulo N
    and leaves out the best-so-far columns (they belong to the whole run).
    """
    true = np.array([r["true"] for r in run], dtype=float)
    best = np.minimum.accumulate(true) - problem.optimum
    tail = [(i, r) for i, r in enumerate(run) if i >= len(run) - last and (turn is None or i % turn[1] == turn[0])]
    tail_true = true[[i for i, _ in tail]]
    params = [r["params"] for _, r in tail]
    X = np.array([[p[k] for k in sorted(p)] for p in params], dtype=float)
    unit = problem.space().encode(params).numpy()  # (len(tail), d)
    stats = {}
    if turn is None:
        stats = {f"log10 best@{k}": float(np.log10(max(best[k - 1], 1e-12))) for k in CHECKPOINTS if k < len(run)}
        stats[f"log10 best@{len(run)}"] = float(np.log10(max(best[-1], 1e-12)))
    stats[f"share < {threshold:g}"] = float(np.mean(tail_true < threshold))
    stats[f"share > {high:g}"] = float(np.mean(tail_true > high))
    stats["at bound"] = float(np.mean((np.minimum(unit, 1.0 - unit) < BOUND_MARGIN).any(-1)))
    stats["spread"] = float(X.std(0).mean())
    return stats


def table(folder: Path, problem: str, threshold: float, high: float, last: int, turns: int = 0) -> str:
    """A markdown table: one row per method (and per turn), medians over its complete runs."""
    prob = get(problem)
    header: list[str] | None = None
    rows = []
    for method, runs in runs_of(folder, problem).items():
        labels = [(method, None)] + [(f"{method} turn {k}", (k, turns)) for k in range(turns)]
        for label, turn in labels:
            per_run = [run_stats(run, prob, threshold, high, last, turn) for run in runs]
            header = header or list(per_run[0])
            medians = [f"{np.median([s[k] for s in per_run]):.3g}" if k in per_run[0] else "-" for k in header]
            rows.append(f"| {label} | {len(runs)} | " + " | ".join(medians) + " |")
    if header is None:
        raise SystemExit(f"no complete run of {problem} in {folder}")
    head = "| method | runs | " + " | ".join(header) + " |"
    return "\n".join([head, "|" + "---|" * (len(header) + 2), *rows])


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="sweep folder with results.jsonl(.gz)")
    ap.add_argument("--problem", required=True)
    ap.add_argument("--threshold", type=float, default=3000.0)
    ap.add_argument("--high", type=float, default=1e5)
    ap.add_argument("--last", type=int, default=50, help="evaluations at the end of each run")
    ap.add_argument("--turns", type=int, default=0, help="also split each method by evaluation index modulo N")
    args = ap.parse_args(argv)
    text = table(args.out, args.problem, args.threshold, args.high, args.last, args.turns)
    print(text)
    return text


if __name__ == "__main__":
    main()
