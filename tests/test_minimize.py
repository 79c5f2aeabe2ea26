"""Tests for gpbo.minimize: the loop, failures, callbacks, bad input and a quality check."""

from __future__ import annotations

import concurrent.futures
import inspect
import math
import re
import threading
import time

import numpy as np
import pytest
import torch

import gpbo
from gpbo.errors import InvalidArgumentError, InvalidSpaceError, InvalidTrialError
from gpbo.loop import MinimizeResult, minimize
from gpbo.optimizer import Optimizer
from gpbo.space import Categorical, Real
from gpbo.trial import TrialState

BOX = {"x": Real(-1.0, 1.0), "y": Real(-1.0, 1.0)}
BRANIN_SPACE = {"x1": Real(-5.0, 10.0), "x2": Real(0.0, 15.0)}
BRANIN_MIN = 0.397887357729738


def quadratic(params: dict) -> float:
    return (params["x"] - 0.3) ** 2 + (params["y"] + 0.2) ** 2


def branin(params: dict) -> float:
    x1, x2 = params["x1"], params["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BAD_CALLS = [
    (dict(fn=3), InvalidArgumentError, "fn must be callable, got int 3"),
    (dict(n_trials=0), InvalidArgumentError, "n_trials must be an int >= 1, got int 0"),
    (dict(n_trials=-2), InvalidArgumentError, "n_trials must be an int >= 1, got int -2"),
    (dict(n_trials=2.5), InvalidArgumentError, "n_trials must be an int >= 1, got float 2.5"),
    (dict(n_trials=True), InvalidArgumentError, "n_trials must be an int >= 1, got bool True"),
    (dict(callbacks=print), InvalidArgumentError, "callbacks must be a list of callables"),
    (dict(callbacks=[print, 1]), InvalidArgumentError, "every callback must be callable, got int 1"),
    (dict(space=[1, 2]), InvalidSpaceError, "space must be a Space or a dict"),
    (dict(seed="0"), InvalidArgumentError, "seed must be an int >= 0"),
    (dict(settings={"dtype": torch.int64}), InvalidArgumentError, "dtype must be torch.float32 or torch.float64"),
    (dict(settings={"warp": "log"}), InvalidArgumentError, "warp must be one of ('yeo-johnson', 'none'), got 'log'"),
    (dict(storage=gpbo.Storage("x.db"), study_name="s"), TypeError, "unexpected keyword argument 'study_name'"),
    (dict(catch=(ValueError,)), TypeError, "unexpected keyword argument 'catch'"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_CALLS)
def test_bad_input_raises(kwargs, error, message):
    kwargs = {"fn": quadratic, "space": BOX, "n_trials": 3, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        minimize(kwargs.pop("fn"), kwargs.pop("space"), kwargs.pop("n_trials"), **kwargs)


def test_objective_returning_a_non_number_raises():
    with pytest.raises(InvalidTrialError, match="got 'oops' of type str"):
        minimize(lambda p: "oops", BOX, 2, seed=0)


def test_minimize_sobol_phase_result():
    result = minimize(quadratic, BOX, 4, seed=0, settings={"n_initial": 4})
    assert isinstance(result, MinimizeResult) and isinstance(result.optimizer, Optimizer)
    assert len(result.trials) == 4 and all(t.state is TrialState.COMPLETE for t in result.trials)
    best = min(result.trials, key=lambda t: t.value)
    assert (result.best_params, result.best_value) == (best.params, best.value)
    assert result.optimizer.trials == result.trials


def test_failures_are_recorded_and_the_loop_goes_on():
    outcomes = iter([ValueError("bad input"), math.nan, np.float64(2.0), math.inf, torch.tensor(1.0), -(10**400)])

    def objective(params):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = minimize(objective, BOX, 6, seed=0, settings={"n_initial": 6})
    states = [t.state.value for t in result.trials]
    assert states == ["failed", "failed", "complete", "failed", "complete", "failed"]
    assert result.trials[0].error == "ValueError: bad input"
    assert result.trials[1].error == "non-finite value nan"
    assert result.trials[5].error == "non-finite value -inf"  # an int beyond float's range
    assert result.best_value == 1.0 and result.best_params == result.trials[4].params


def test_all_failed_gives_no_best():
    def objective(params):
        raise RuntimeError("always")

    with pytest.warns(UserWarning, match="all 3 trials failed; the first one's error: RuntimeError: always"):
        result = minimize(objective, BOX, 3, seed=0)
    assert result.best_params is None and result.best_value is None
    assert all(t.state is TrialState.FAILED for t in result.trials)


def test_keyboard_interrupt_stops_the_loop():
    def objective(params):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        minimize(objective, BOX, 3, seed=0)


def test_callbacks_see_each_told_trial():
    seen = []
    minimize(quadratic, BOX, 3, seed=0, callbacks=[lambda opt, trial: seen.append((len(opt.trials), trial))])
    assert [n for n, _ in seen] == [1, 2, 3]
    assert all(t.state is TrialState.COMPLETE and t.value == quadratic(t.params) for _, t in seen)


def test_objective_gets_a_copy_of_the_params():
    def objective(params):
        value = quadratic(params)
        params["x"] = "changed"
        return value

    result = minimize(objective, BOX, 2, seed=0)
    assert all(isinstance(t.params["x"], float) for t in result.trials)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_minimize_with_the_engine(dtype):
    space = {**BOX, "c": Categorical(["a", "b"])}
    result = minimize(lambda p: quadratic(p) + (p["c"] == "b"), space, 5, seed=1, settings={"n_initial": 3, "dtype": dtype})
    assert len(result.trials) == 5 and all(t.state is TrialState.COMPLETE for t in result.trials)
    assert result.best_value == min(t.value for t in result.trials)


def test_maximize_returns_the_largest_value():
    result = minimize(lambda p: -quadratic(p), BOX, 4, seed=0, maximize=True, settings={"n_initial": 3})
    assert result.best_value == max(t.value for t in result.trials)
    assert result.optimizer.maximize


def test_branin_beats_sobol_at_seed_0():
    sobol = minimize(branin, BRANIN_SPACE, 15, seed=0, settings={"n_initial": 15})
    bo = minimize(branin, BRANIN_SPACE, 15, seed=0)
    assert bo.best_value - BRANIN_MIN < 1.0
    assert bo.best_value < sobol.best_value


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_branin_25_trials_reaches_small_regret(seed):
    sobol = minimize(branin, BRANIN_SPACE, 25, seed=seed, settings={"n_initial": 25})
    bo = minimize(branin, BRANIN_SPACE, 25, seed=seed)
    assert bo.best_value - BRANIN_MIN < 1.0
    assert bo.best_value < sobol.best_value


# ------------------------------------------------------- failures, workers, progress

BAD_LOOP_OPTIONS = [
    (dict(timeout_per_trial=0), InvalidArgumentError, "timeout_per_trial must be None or a number of seconds > 0, got int 0"),
    (dict(timeout_per_trial=math.nan), InvalidArgumentError, "timeout_per_trial must be None or a number of seconds > 0"),
    (dict(timeout_per_trial="1"), InvalidArgumentError, "got str '1'"),
    (dict(n_workers=0), InvalidArgumentError, "n_workers must be an int >= 1, got int 0"),
    (dict(executor="pool"), InvalidArgumentError, "executor must be a concurrent.futures.Executor (with a submit method), got str 'pool'"),
    (dict(progress="yes"), InvalidArgumentError, "progress must be a bool, got str 'yes'"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_LOOP_OPTIONS)
def test_bad_loop_options_raise(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        minimize(quadratic, BOX, 3, **kwargs)


def test_every_exception_of_fn_is_a_failed_trial_and_the_study_goes_on(tmp_path):
    path = str(tmp_path / "s.db")
    errors = iter([KeyError("missing"), OSError("disk gone"), ValueError("bad")])

    def objective(params):
        raise next(errors)

    with pytest.warns(UserWarning, match="all 3 trials failed; the first one's error: KeyError: 'missing'"):
        result = minimize(objective, BOX, 3, seed=0, storage=path)
    expected = ["KeyError: 'missing'", "OSError: disk gone", "ValueError: bad"]
    assert [t.error for t in result.trials] == expected
    assert [t.state for t in gpbo.load_study(path).trials] == [TrialState.FAILED] * 3


def test_a_callback_stops_the_study_by_raising(tmp_path):
    path = str(tmp_path / "s.db")

    class GoodEnough(Exception):
        pass

    def stop_when_good(opt, trial):
        if trial.value < 1.0:
            raise GoodEnough(trial.id)

    with pytest.raises(GoodEnough):
        minimize(quadratic, BOX, 20, seed=0, storage=path, callbacks=[stop_when_good], settings={"n_initial": 20})
    trials = gpbo.load_study(path).trials
    assert len(trials) < 20 and trials[-1].value < 1.0
    assert all(t.state is TrialState.COMPLETE for t in trials)


def test_non_number_result_is_recorded_then_raised(tmp_path):
    path = str(tmp_path / "s.db")
    with pytest.raises(InvalidTrialError, match="got 'oops' of type str"):
        minimize(lambda p: "oops", BOX, 2, seed=0, storage=path)
    (trial,) = gpbo.load_study(path).trials
    assert trial.state is TrialState.FAILED and "got 'oops' of type str" in trial.error


def test_timeout_per_trial_fails_slow_trials_and_goes_on():
    release = threading.Event()

    def objective(params):
        if params["x"] > 0:
            release.wait(5.0)  # "hangs"; abandoned after the timeout
        return quadratic(params)

    start = time.monotonic()
    result = minimize(objective, BOX, 6, seed=0, timeout_per_trial=0.2, settings={"n_initial": 6})
    release.set()
    slow = [t for t in result.trials if t.params["x"] > 0]
    assert slow and all(t.state is TrialState.FAILED for t in slow)
    assert all(t.error == f"TrialTimeoutError: trial {t.id} ran longer than timeout_per_trial=0.2 s" for t in slow)
    assert all(t.state is TrialState.COMPLETE for t in result.trials if t.params["x"] <= 0)
    assert time.monotonic() - start < 4.0


def sleepy_quadratic(params: dict) -> float:
    time.sleep(0.05)
    return quadratic(params)


def test_workers_keep_n_trials_in_flight_and_suggestions_see_them_as_pending():
    in_flight = []

    def record(opt, trial):
        in_flight.append(sum(t.state is TrialState.RUNNING for t in opt.trials))

    result = minimize(sleepy_quadratic, BOX, 10, seed=0, n_workers=3, callbacks=[record], settings={"n_initial": 4})
    assert len(result.trials) == 10 and all(t.state is TrialState.COMPLETE for t in result.trials)
    assert max(in_flight) == 2  # while one trial is told, the two others are still running
    assert len({(t.params["x"], t.params["y"]) for t in result.trials}) == 10


def test_any_executor_works_process_pool_included():
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        result = minimize(sleepy_quadratic, BOX, 6, seed=0, n_workers=2, executor=pool, settings={"n_initial": 4})
    assert [t.value for t in result.trials] == [quadratic(t.params) for t in result.trials]


def test_executor_must_return_futures():
    class Odd:
        def submit(self, fn, *args):
            return fn(*args)

    with pytest.raises(InvalidArgumentError, match="executor.submit must return a concurrent.futures.Future, got float"):
        minimize(quadratic, BOX, 2, executor=Odd())


def test_progress_bar_shows_the_best_value(capsys):
    result = minimize(quadratic, BOX, 3, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and f"best={result.best_value:.6g}" in err


def test_minimize_keeps_its_parameter_budget():
    """``gpbo.minimize`` takes at most 12 parameters (issue 20's acceptance):
    what shapes a suggestion goes in ``settings``, not in new keywords. The
    multi-objective and multi-fidelity issues may add at most four more, to 16:
    the multi-objective one added ``objectives`` and ``constraints``, the
    multi-fidelity one ``max_step`` and ``step_budget``."""
    params = inspect.signature(gpbo.minimize).parameters
    extra = {"objectives", "constraints", "max_step", "step_budget"}
    assert len([name for name in params if name not in extra]) <= 12, list(params)
    assert len(params) <= 16, list(params)
    assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values())
