"""Cost of deciding: ModelBasedRule.should_stop with 10,000 reported points on the CPU.

Builds a study of 200 trials on synthetic curves ``y = a(x) - b(x) exp(-c(x) t)``
(190 finished at 52 steps = 9,880 reports, 10 running at 12 steps = 120) and
times ``should_stop`` three ways, median of ``--reps`` calls each:

- ``new report``: a running trial reports one more step, then asks (a new
  content each call: conditioning on every report, the fitted hyperparameters
  reused because the finished trials did not change);
- ``same curves``: the same content asked again (fully cached);
- ``refit``: a fresh rule (hyperparameter fit + conditioning), the cost paid
  about 20 times in a 200-trial study (``ask`` pays it at most once).

Usage: python benchmarks/es_latency.py [--reps 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gpbo.early_stopping import Curves
from gpbo.early_stopping.model_based import ModelBasedRule


def synthetic_study(n_done: int = 190, n_running: int = 10, d: int = 7, max_step: int = 52, seed: int = 0) -> Curves:
    """(n_done + n_running) trials: finished ones at max_step, running ones at 12 steps."""
    gen = torch.Generator().manual_seed(seed)
    T = n_done + n_running
    X = torch.rand(T, d, generator=gen, dtype=torch.float64)
    a = 0.9 - 0.5 * (X[:, :3] - 0.4).pow(2).sum(-1)
    b, c = 0.3 + 0.2 * X[:, 3], 0.05 + 0.2 * X[:, 4]
    steps, values = [], []
    for i in range(T):
        k = max_step if i < n_done else 12
        t = torch.arange(1, k + 1, dtype=torch.float64)
        steps.append(t)
        values.append(a[i] - b[i] * torch.exp(-c[i] * t) + 0.005 * torch.randn(k, generator=gen, dtype=torch.float64))
    running = torch.arange(T) >= n_done
    return Curves(X, tuple(steps), tuple(values), running, torch.zeros(T, dtype=torch.bool), float(max_step))


def _extend(curves: Curves, i: int) -> Curves:
    """The same study after running trial i reported one more step (its last value repeated)."""
    steps, values = list(curves.steps), list(curves.values)
    steps[i] = torch.cat([steps[i], steps[i][-1:] + 1])
    values[i] = torch.cat([values[i], values[i][-1:]])
    return Curves(curves.X, tuple(steps), tuple(values), curves.running, curves.stopped, curves.max_step)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    curves = synthetic_study()
    n_obs = sum(len(s) for s in curves.steps)
    rule = ModelBasedRule()
    running = [i for i in range(curves.n_trials) if bool(curves.running[i])]
    times: dict[str, list[float]] = {"new report": [], "same curves": [], "refit": []}
    stops = 0
    for r in range(args.reps):
        i = running[r % len(running)]
        if r < 3:
            t0 = time.perf_counter()
            ModelBasedRule().should_stop(curves, i)
            times["refit"].append(time.perf_counter() - t0)
        curves = _extend(curves, i)
        t0 = time.perf_counter()
        stops += rule.should_stop(curves, i)
        times["new report"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rule.should_stop(curves, i)
        times["same curves"].append(time.perf_counter() - t0)
    print(f"should_stop with {n_obs} reported points, {curves.n_trials} trials, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {stops} of {args.reps} asks stopped")
    for name, ts in times.items():
        print(f"  {name:12s} median {1e3 * statistics.median(ts):8.1f} ms  (n={len(ts)}, max {1e3 * max(ts):.1f} ms)")
    print("  (the first 'new report' call includes the hyperparameter fit)")


if __name__ == "__main__":
    main()
