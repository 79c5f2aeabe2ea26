"""RayExecutor against a real local Ray runtime, alone and under gpbo.minimize."""

from __future__ import annotations

import concurrent.futures
import re

import pytest

pytest.importorskip("ray")

from gpbo.errors import InvalidArgumentError
from gpbo.integrations.ray_executor import RayExecutor
from gpbo.loop import minimize
from gpbo.space import Categorical, Real
from gpbo.trial import TrialState


class Quadratic:
    """A callable object (not a function): Ray must run it as well."""

    def __call__(self, params: dict) -> float:
        if params["kind"] == "broken":
            raise ValueError(f"broken at x={params['x']:.3f}")
        return (params["x"] - 0.25) ** 2


def test_submit_returns_concurrent_futures(ray_local):
    with RayExecutor(num_cpus=1) as pool:
        futures = [pool.submit(pow, i, 2) for i in range(4)]
        assert all(isinstance(f, concurrent.futures.Future) for f in futures)
        assert sorted(f.result() for f in concurrent.futures.as_completed(futures)) == [0, 1, 4, 9]
        error = pool.submit(Quadratic(), {"kind": "broken", "x": 0.5}).exception()
    assert isinstance(error, ValueError) and "broken at x=0.500" in str(error)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(pow, 1, 1)


def test_minimize_runs_trials_as_ray_tasks(ray_local):
    space = {"x": Real(0.0, 1.0), "kind": Categorical(["ok", "broken"])}
    with RayExecutor(num_cpus=1) as pool:
        result = minimize(Quadratic(), space, 8, seed=0, n_workers=2, executor=pool, settings={"n_initial": 4})
    states = [t.state for t in result.trials]
    assert len(states) == 8 and TrialState.RUNNING not in states
    failed = [t for t in result.trials if t.state is TrialState.FAILED]
    assert all(t.params["kind"] == "broken" and "broken at x=" in t.error for t in failed)
    assert result.best_params["kind"] == "ok" and result.best_value < 0.05


def test_bad_task_options():
    with pytest.raises(InvalidArgumentError, match=re.escape("invalid Ray task options {'num_cpu': 1}")):
        RayExecutor(num_cpu=1)


def test_an_objective_that_reports_is_refused_before_ray_starts():
    def train(params, trial):
        trial.report(params["x"], 1)
        return params["x"]

    with pytest.raises(InvalidArgumentError, match="takes a trial handle .* cannot run on RayExecutor"):
        minimize(train, {"x": Real(0.0, 1.0)}, 2, executor=RayExecutor(), max_step=1)
