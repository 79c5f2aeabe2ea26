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

Then ``Optimizer.ask`` on the same kind of study through the facade: 400
trials of those curves reported step by step (every other one stopped early
at 12 steps, the rest complete at 52: 12,800 reports), then ``ask`` timed
``--ask-reps`` times, each after one more report of a running trial (the
GP's data includes the rule's predicted final values of the stopped
trials). The first ``ask`` includes the curve model's fit.

Usage: python benchmarks/es_latency.py [--reps 30] [--ask-reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import gpbo
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
    parser.add_argument("--ask-reps", type=int, default=5)
    args = parser.parse_args()
    time_should_stop(args.reps)
    time_ask(args.ask_reps)


def time_ask(reps: int, n_trials: int = 400, max_step: int = 52) -> None:
    """Median ``Optimizer.ask`` time on a study with thousands of reports (see the module docstring)."""
    study = synthetic_study(n_done=n_trials, n_running=0, d=7, max_step=max_step)
    space = gpbo.Space({f"x{j}": gpbo.Real(0.0, 1.0) for j in range(7)})
    opt = gpbo.Optimizer(space, seed=0, maximize=True, max_step=max_step,
                         settings=gpbo.Settings(n_initial=n_trials + 1))  # the filling asks are Sobol points
    for i in range(n_trials):
        trial = opt.ask()
        k = max_step if i % 2 == 0 else 12
        for t, v in zip(study.steps[i][:k].tolist(), study.values[i][:k].tolist()):
            opt.report(trial, v, int(t))
        opt.tell(trial, study.values[i][k - 1].item())
    opt = gpbo.Optimizer.from_state_dict(opt.state_dict(), settings={"n_initial": 8})  # model-based asks from here
    n_obs = sum(len(t.steps) for t in opt.trials)
    running = opt.ask()
    opt.report(running, 0.5, 1)
    times = []
    for r in range(reps):
        opt.report(running, 0.5, r + 2)
        t0 = time.perf_counter()
        opt.ask()
        times.append(time.perf_counter() - t0)
    print(f"Optimizer.ask with {n_obs} reported points, {n_trials} trials "
          f"({sum(t.state is gpbo.TrialState.PRUNED for t in opt.trials)} stopped early)")
    print(f"  ask median {statistics.median(times):.2f} s  (n={reps}, first {times[0]:.2f} s, max {max(times):.2f} s)")


def time_should_stop(reps: int) -> None:
    """Median ``ModelBasedRule.should_stop`` times (see the module docstring)."""
    curves = synthetic_study()
    n_obs = sum(len(s) for s in curves.steps)
    rule = ModelBasedRule()
    running = [i for i in range(curves.n_trials) if bool(curves.running[i])]
    times: dict[str, list[float]] = {"new report": [], "same curves": [], "refit": []}
    stops = 0
    for r in range(reps):
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
          f"{torch.get_num_threads()} threads; {stops} of {reps} asks stopped")
    for name, ts in times.items():
        print(f"  {name:12s} median {1e3 * statistics.median(ts):8.1f} ms  (n={len(ts)}, max {1e3 * max(ts):.1f} ms)")
    print("  (the first 'new report' call includes the hyperparameter fit)")


if __name__ == "__main__":
    main()
