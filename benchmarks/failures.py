"""Failed trials: imputing them at the worst observed value vs leaving them out.

    python -m benchmarks.failures [--seeds 8] [--quick]

Each problem has a *failing region* where the objective raises (like a
training run that diverges), next to good values:

| problem   | fails where     | evals | reachable optimum                  |
| --------- | --------------- | ----- | ---------------------------------- |
| branin    | x2 < 4          | 40    | 0.397887 at (-pi, 12.275)          |
| hartmann6 | x0 + x5 > 1     | 80    | -3.32237 (the global one, x0+x5=0.86) |

Two failed-trial policies run through the same ask/tell loop and seeds:

- ``impute_worst``: gpbo's policy; a failed point enters the GP at the worst
  completed value, which discourages its neighbourhood.
- ``exclude``: failed points are left out of the GP (the engine still sees
  running trials as pending, and nothing else).

Reported per problem and policy: simple regret after the budget (median and
IQR over seeds) and the number of failed evaluations. Prints a markdown table
and writes benchmarks/results/failures.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import Tensor

from benchmarks.latency import environment, quantiles
from benchmarks.problems import Problem, get
from gpbo.optimizer import Optimizer
from gpbo.trial import TrialState

RESULTS = Path(__file__).resolve().parent / "results"
FAILS = {"branin": lambda p: p["x2"] < 4.0, "hartmann6": lambda p: p["x0"] + p["x5"] > 1.0}
BUDGETS = {"branin": 40, "hartmann6": 80}
QUICK_BUDGETS = {"branin": 20, "hartmann6": 30}


class ExcludingOptimizer(Optimizer):
    """The `Optimizer` with failed trials left out of the GP's data."""

    def _observations(self) -> tuple[Tensor, Tensor] | None:
        complete = self._log.ids(TrialState.COMPLETE)
        if not complete:
            return None
        sign = 1.0 if self._maximize else -1.0
        Y = torch.tensor([sign * self._log.get(i).value for i in complete], dtype=torch.float64)
        return self._log.X[complete], Y


POLICIES = {"impute_worst": Optimizer, "exclude": ExcludingOptimizer}


def run(problem: Problem, policy: str, budget: int, seed: int) -> dict:
    """One ask/tell run; returns the regret, the failed count and the wall time."""
    opt = POLICIES[policy](problem.space(), seed=seed)
    fails = FAILS[problem.name]
    start = time.perf_counter()
    for _ in range(budget):
        trial = opt.ask()
        value = RuntimeError("diverged") if fails(trial.params) else problem(trial.params)
        opt.tell(trial, value)
    trials = opt.trials
    best = opt.best
    return {
        "regret": None if best is None else problem.regret(best.value),
        "failed": sum(t.state is TrialState.FAILED for t in trials),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, small budgets")
    args = parser.parse_args()
    seeds = range(2 if args.quick else args.seeds)
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    env = environment()
    print(f"# {env}")
    results: dict = {"environment": env, "budgets": budgets, "runs": {}}
    print("| problem | policy | evals | regret median | regret IQR | failed evals median (IQR) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, budget in budgets.items():
        problem = get(name)
        for policy in POLICIES:
            runs = [run(problem, policy, budget, seed) for seed in seeds]
            results["runs"][f"{name}/{policy}"] = runs
            r25, r50, r75 = quantiles([r["regret"] for r in runs])
            f25, f50, f75 = quantiles([r["failed"] for r in runs])
            print(f"| {name} | {policy} | {budget} | {r50:.3g} | {r25:.3g} – {r75:.3g} "
                  f"| {f50:.0f} ({f25:.0f} – {f75:.0f}) |", flush=True)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "failures.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
