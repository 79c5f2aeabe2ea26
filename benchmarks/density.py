"""Where a method spends its evaluations on one synthetic problem (a diagnostic).

    python -m benchmarks.density OUT_DIR --problem rosenbrock4_noisy [--threshold 3000] [--last 50]

For each method of a sweep's results file, over seeds (medians):

- ``log10 best@k``: log10 simple regret of the best noiseless value among
  the first k evaluations, for k = 20, 40, 60 and the full budget;
- ``share < T``: the share of the last ``--last`` evaluations whose
  noiseless value is below the threshold T;
- ``spread``: the mean per-parameter standard deviation of those last
  evaluations' inputs (raw parameter units), i.e. how concentrated they are.

Used to explain Rosenbrock-4-noisy, where the noise hides the function below
~1e4 and the score rewards dense sampling there (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.problems import get
from benchmarks.report import load

CHECKPOINTS = (20, 40, 60)


def runs_of(folder: Path, problem: str) -> dict[str, list[list[dict]]]:
    """method -> complete runs (records ordered by idx) of ``problem``."""
    out: dict[str, list[list[dict]]] = defaultdict(list)
    for (method, prob, _, budget, _), recs in sorted(load(folder).items()):
        if prob == problem and len(recs) == budget:
            out[method].append([recs[i] for i in range(budget)])
    return out


def run_stats(run: list[dict], optimum: float, threshold: float, last: int) -> dict[str, float]:
    """The diagnostics of one run (see the module docstring)."""
    true = np.array([r["true"] for r in run], dtype=float)
    best = np.minimum.accumulate(true) - optimum
    tail = run[-last:]
    X = np.array([[r["params"][k] for k in sorted(r["params"])] for r in tail], dtype=float)
    stats = {f"log10 best@{k}": float(np.log10(max(best[k - 1], 1e-12))) for k in CHECKPOINTS if k < len(run)}
    stats[f"log10 best@{len(run)}"] = float(np.log10(max(best[-1], 1e-12)))
    stats[f"share < {threshold:g}"] = float(np.mean(true[-last:] < threshold))
    stats["spread"] = float(X.std(0).mean())
    return stats


def table(folder: Path, problem: str, threshold: float, last: int) -> str:
    """A markdown table: one row per method, medians over its complete runs."""
    optimum = get(problem).optimum
    rows, header = [], None
    for method, runs in runs_of(folder, problem).items():
        per_run = [run_stats(run, optimum, threshold, last) for run in runs]
        header = header or list(per_run[0])
        medians = [float(np.median([s[k] for s in per_run])) for k in header]
        rows.append(f"| {method} | {len(runs)} | " + " | ".join(f"{m:.3g}" for m in medians) + " |")
    if header is None:
        raise SystemExit(f"no complete run of {problem} in {folder}")
    head = "| method | runs | " + " | ".join(header) + " |"
    return "\n".join([head, "|" + "---|" * (len(header) + 2), *rows])


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="sweep folder with results.jsonl(.gz)")
    ap.add_argument("--problem", required=True)
    ap.add_argument("--threshold", type=float, default=3000.0)
    ap.add_argument("--last", type=int, default=50, help="evaluations at the end of each run")
    args = ap.parse_args(argv)
    text = table(args.out, args.problem, args.threshold, args.last)
    print(text)
    return text


if __name__ == "__main__":
    main()
