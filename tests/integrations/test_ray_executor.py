"""RayExecutor against a real local Ray runtime, alone and under gpbo.minimize."""

from __future__ import annotations

import concurrent.futures
import re
import time

import pytest

pytest.importorskip("ray")

import ray.cloudpickle as cloudpickle

from gpbo.early_stopping import Curves
from gpbo.errors import GpboError, InvalidArgumentError, InvalidTrialError
from gpbo.integrations import ray_executor
from gpbo.integrations.ray_executor import RayExecutor
from gpbo.integrations.ray_relay import answer
from gpbo.loop import minimize
from gpbo.optimizer import Optimizer
from gpbo.reporting import StepBudget, TrialHandle
from gpbo.settings import Settings
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


def curve(x: float, step: int) -> float:
    """A loss that falls with the step; the best configuration is x = 0.3."""
    return (x - 0.3) ** 2 + 1.0 / step


def train(params: dict, trial) -> float:
    for step in range(1, 7):
        loss = curve(params["x"], step)
        trial.report(loss, step)
        if trial.should_stop():
            break
    return loss


class StopHighLosses:
    """Stops a trial whose loss is above 0.45 from step 3 on: decided from its own curve only, so not by timing."""

    def should_stop(self, curves: Curves, index: int) -> bool:
        return bool(curves.steps[index][-1] >= 3 and -curves.values[index][-1] > 0.45)


def test_a_reporting_study_on_ray_keeps_every_curve_and_matches_threads(ray_local):
    # n_initial = n_trials: the params come from the seeded design whatever the order of the tells
    settings = Settings(n_initial=6, early_stopping=StopHighLosses())
    with RayExecutor(num_cpus=1) as pool:
        on_ray = minimize(train, {"x": Real(0.0, 1.0)}, 6, seed=1, n_workers=2, executor=pool, max_step=6, settings=settings)
    in_threads = minimize(train, {"x": Real(0.0, 1.0)}, 6, seed=1, n_workers=2, max_step=6, settings=settings)
    for t in on_ray.trials:
        assert t.steps == tuple((s, curve(t.params["x"], s)) for s in range(1, t.last_step + 1))
    states = [t.state for t in on_ray.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    assert all(t.last_step == 3 for t in on_ray.trials if t.state is TrialState.PRUNED)
    assert on_ray.trials == in_threads.trials and on_ray.best_params == in_threads.best_params


def backwards(params: dict, trial) -> float:
    trial.report(1.0, 2)
    trial.report(0.5, 1)  # raises gpbo's InvalidTrialError in the task
    return 0.5


def test_a_bad_report_raises_gpbos_error_in_the_task_and_fails_the_trial(ray_local):
    opt = Optimizer({"x": Real(0.0, 1.0)}, seed=0, max_step=6, settings={"early_stopping": None})
    trial = opt.ask()
    with RayExecutor(num_cpus=1) as pool:
        error = pool.submit(backwards, trial.params, TrialHandle(opt, trial)).exception()
        result = minimize(backwards, {"x": Real(0.0, 1.0)}, 1, seed=0, executor=pool, max_step=6)
    assert isinstance(error, InvalidTrialError)
    assert "trial 0: step 1 goes backwards; steps must increase (the last report was at step 2)" in str(error)
    assert opt.trials[0].steps == ((2, 1.0),)
    (failed,) = result.trials
    assert failed.state is TrialState.FAILED and "InvalidTrialError" in failed.error and "step 1 goes backwards" in failed.error


def spend(params: dict, trial) -> tuple:
    answers = []
    for step in (1, 2):
        trial.report(float(step), step)
        answers.append(trial.should_stop())
    return trial.id, trial.params, answers, trial.steps, trial.last_step


def wait_for_stop(params: dict, trial) -> None:
    while not trial.should_stop():
        time.sleep(0.01)


@pytest.mark.slow  # hung once before the forced cancel after CANCEL_GRACE_S (the next test covers that path)
def test_should_stop_after_the_step_budget_is_spent_and_shutdown_cancels_a_waiting_task(ray_local):
    opt = Optimizer({"x": Real(0.0, 1.0)}, seed=0, max_step=4, settings={"early_stopping": None})
    budget = StepBudget(opt, 2)
    trial = opt.ask()
    budget.add(trial.id)
    pool = RayExecutor(num_cpus=1)
    assert pool.submit(spend, trial.params, TrialHandle(opt, trial, budget)).result() == (
        trial.id, trial.params, [False, True], ((1, 1.0), (2, 2.0)), 2)
    waiting = pool.submit(wait_for_stop, trial.params, trial=TrialHandle(opt, opt.ask()))
    time.sleep(0.5)  # the task is asking should_stop over and over
    start = time.monotonic()
    pool.shutdown(cancel_futures=True)
    assert time.monotonic() - start < 30 and isinstance(waiting.exception(), ray_local.exceptions.TaskCancelledError)


def ignore_interrupts(path: str) -> None:
    """Runs until killed: swallows the KeyboardInterrupt of a plain cancel."""
    open(path, "w").close()
    while True:
        try:
            time.sleep(0.01)
        except KeyboardInterrupt:
            pass


def test_shutdown_kills_a_cancelled_task_that_ignores_its_interrupt(ray_local, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_executor, "CANCEL_GRACE_S", 0.5)
    started = tmp_path / "started"
    pool = RayExecutor(num_cpus=1, max_retries=0)
    stubborn = pool.submit(ignore_interrupts, str(started))
    while not started.exists():
        time.sleep(0.05)
    start = time.monotonic()
    pool.shutdown(cancel_futures=True)
    assert time.monotonic() - start < 30
    assert isinstance(stubborn.exception(), ray_local.exceptions.RayError)


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling")


class RaisesUnpicklable:
    def should_stop(self, curves: Curves, index: int) -> bool:
        raise Unpicklable("a lock inside")


def test_a_request_of_an_ended_task_or_an_answer_that_cannot_travel_becomes_an_error():
    request = cloudpickle.dumps(("should_stop", ()))
    ok, error = cloudpickle.loads(answer(None, request))
    assert not ok and isinstance(error, InvalidTrialError)
    assert str(error) == "the Ray task that sent should_stop() has ended; its trial handle is released"
    opt = Optimizer({"x": Real(0.0, 1.0)}, seed=0, settings={"early_stopping": RaisesUnpicklable()})
    trial = opt.ask()
    opt.report(trial, 1.0, 1)
    ok, error = cloudpickle.loads(answer(TrialHandle(opt, trial), request))
    assert not ok and type(error) is GpboError and "Unpicklable('a lock inside') cannot be pickled: no pickling" in str(error)
