"""Early stopping in a constrained study: LCBench with a limit on the time an epoch takes.

A practitioner's case: minimise the validation error subject to "an epoch
takes at most tau seconds" (a latency or cost limit). The constraint is
known after the first epoch and told with the error at the end, stopped or
not. The limit tau is the median first-epoch time of 2,000 random
configurations of the task, so about half of the space is feasible.

Methods, each ``gpbo.Optimizer(objectives={"err": "minimize"},
constraints={"sec_per_epoch": ("<=", tau)}, max_step=52)`` driven one trial
at a time (one worker), epoch by epoch, until ``budget`` full trainings of
epochs are spent:

- ``gpbo_es``: the model-based early-stopping rule (the default);
- ``gpbo``: full fidelity (``early_stopping=None``).

Metric: regret of the best *feasible* trial that reached epoch 52, in
percentage points of validation error above the best feasible one of
100,000 random configurations (seed 0), at 10 and 30 full trainings.
Mann-Whitney U between the two methods per task and budget.

    python -m benchmarks.es_constrained --tasks 3945,146212 --seeds 16 --budget 30
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import time

import numpy as np
import torch

import gpbo
from benchmarks import lcbench
from benchmarks.mf_problems import get_mf

METHODS = {"gpbo_es": "model", "gpbo": None}


@functools.cache
def epoch_limit(task: str) -> float:
    """tau: the median first-epoch time (s) of 2,000 random configurations (seed 1)."""
    x = lcbench.random_configs(2000, 1)
    return float(np.median(lcbench.curves(task, x, epochs=1)[1][:, 0]))


@functools.cache
def feasible_optimum(task: str, n: int = 100_000) -> float:
    """The lowest epoch-52 validation error (%) of the feasible ones among ``n`` random configurations (seed 0)."""
    tau, best = epoch_limit(task), math.inf
    for x in np.array_split(lcbench.random_configs(n, 0), -(-n // 10_000)):
        first = lcbench.curves(task, x, epochs=1)[1][:, 0]  # (m,) first-epoch time
        acc = lcbench.evaluate(task, torch.as_tensor(x))[:, 0].numpy()  # (m,) val_accuracy at epoch 52
        if (ok := first <= tau).any():
            best = min(best, float(100.0 - acc[ok].max()))
    return best


def run(task: str, method: str, seed: int, budget: int) -> list[tuple[int, float]]:
    """One study; returns ``(cumulative epochs, best feasible error)`` each time the best improves."""
    problem, tau, max_step = get_mf(f"mf_lcbench_{task}"), epoch_limit(task), lcbench.EPOCHS
    opt = gpbo.Optimizer(problem.space(), seed=seed, max_step=max_step, objectives={"err": "minimize"},
                         constraints={"sec_per_epoch": ("<=", tau)},
                         settings={"early_stopping": METHODS[method]})
    spent, trace = 0, []
    while spent < budget * max_step:
        trial = opt.ask()
        acc, cum = lcbench.curves(task, [[float(trial.params[k]) for k in lcbench.PARAMS]])  # (1, 52) each
        for epoch in range(1, max_step + 1):
            err = 100.0 - float(acc[0, epoch - 1])
            opt.report(trial, err, epoch)
            spent += 1
            if spent >= budget * max_step or opt.should_stop(trial):
                break
        told = opt.tell(trial, {"err": err, "sec_per_epoch": float(cum[0, 0])})
        best = opt.best
        if best is not None and best.id == told.id:
            trace.append((spent, best.value))
    return trace


def regret_at(trace: list[tuple[int, float]], epochs: int, optimum: float) -> float:
    """Regret of the best feasible full training within ``epochs`` cumulative epochs (inf if none)."""
    seen = [v for spent, v in trace if spent <= epochs]
    return seen[-1] - optimum if seen else math.inf


def main(argv: list[str] | None = None) -> None:
    from scipy.stats import mannwhitneyu

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="3945,146212", help="comma list of LCBench development tasks")
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--budget", type=int, default=30, help="full trainings of epochs per study")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reference-configs", type=int, default=100_000, help="random configurations of the optimum")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    budgets = [b for b in (10, 30) if b <= args.budget] or [args.budget]
    for task in args.tasks.split(","):
        lcbench.check_dev_task(task)
        optimum, regrets = feasible_optimum(task, args.reference_configs), {}
        for method in METHODS:
            t0 = time.perf_counter()
            traces = [run(task, method, seed, args.budget) for seed in range(args.seeds)]
            regrets[method] = {b: [regret_at(t, b * lcbench.EPOCHS, optimum) for t in traces] for b in budgets}
            print(json.dumps({"task": task, "method": method, "tau": epoch_limit(task), "optimum": optimum,
                              "regret": regrets[method], "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
        for b in budgets:
            es, full = regrets["gpbo_es"][b], regrets["gpbo"][b]
            p = mannwhitneyu(es, full).pvalue
            print(f"task {task}, {b} trainings: median regret, early stopping {statistics.median(es):.3f} "
                  f"against full fidelity {statistics.median(full):.3f} (Mann-Whitney p = {p:.3f}, "
                  f"{args.seeds} seeds)", flush=True)


if __name__ == "__main__":
    main()
