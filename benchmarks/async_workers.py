"""Asynchronous workers on synthetic problems: how acquisitions handle the running trials.

    python -m benchmarks.async_workers [--problems hartmann6,branin,rosenbrock4,ackley10]
        [--acquisitions auto,qlog_nei] [--workers 4] [--seeds 16]

A `gpbo.Optimizer` with W workers: each evaluation takes an exp(1) time
(seeded per run), the earliest to finish is told, and a new trial is asked
while the other W - 1 are still running (pending points). Budgets: Branin
40 evaluations, Hartmann6 and Rosenbrock-4 60, Ackley-10 100. Prints the
median [IQR] log10 final regret per acquisition (``Settings.acquisition``)
and each one against the first by Mann-Whitney U.
See docs/decisions/0059-four-workers-rule-or-search.md.
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
import torch
from botorch.test_functions import Ackley, Branin, Hartmann, Rosenbrock
from scipy.stats import mannwhitneyu

import gpbo

PROBLEMS = {  # name: (function, optimum, bounds or None for the function's own, budget)
    "branin": (Branin(), 0.397887, None, 40),
    "hartmann6": (Hartmann(dim=6), -3.32237, None, 60),
    "rosenbrock4": (Rosenbrock(dim=4), 0.0, None, 60),
    "ackley10": (Ackley(dim=10), 0.0, [[-5.0] * 10, [10.0] * 10], 100),
}


def run(problem: str, acquisition: str, workers: int, seed: int) -> float:
    """log10 final regret of one asynchronous run."""
    f, optimum, bounds, budget = PROBLEMS[problem]
    b = f.bounds if bounds is None else torch.tensor(bounds, dtype=torch.float64)
    d = b.shape[1]
    space = gpbo.Space({f"x{i}": gpbo.Real(float(b[0, i]), float(b[1, i])) for i in range(d)})
    opt = gpbo.Optimizer(space, seed=seed, settings=gpbo.Settings(acquisition=acquisition))
    rng = np.random.default_rng(seed)
    running = [(rng.exponential(), opt.ask()) for _ in range(min(workers, budget))]
    done, best = 0, math.inf
    while running:
        running.sort(key=lambda r: r[0])
        t, trial = running.pop(0)
        value = float(f(torch.tensor([[trial.params[f"x{i}"] for i in range(d)]], dtype=torch.float64)))
        opt.tell(trial, value)
        best, done = min(best, value), done + 1
        if done + len(running) < budget:
            running.append((t + rng.exponential(), opt.ask()))
    return math.log10(max(best - optimum, 1e-12))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--acquisitions", default="auto,qlog_nei")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=16)
    args = ap.parse_args(argv)
    acquisitions = args.acquisitions.split(",")
    print(f"log10 final regret, {args.workers} asynchronous workers, {args.seeds} seeds: median [IQR]; p against {acquisitions[0]}")
    for problem in args.problems.split(","):
        results = {a: [run(problem, a, args.workers, s) for s in range(args.seeds)] for a in acquisitions}
        cells = []
        for a, r in results.items():
            q1, med, q3 = np.quantile(r, [0.25, 0.5, 0.75]) if len(r) > 1 else (r[0], statistics.median(r), r[0])
            p = "" if a == acquisitions[0] or len(r) < 2 else f" p={mannwhitneyu(r, results[acquisitions[0]]).pvalue:.3f}"
            cells.append(f"{a} {med:.3f} [{q1:.2f}, {q3:.2f}]{p}")
        print(f"{problem}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
