"""Tests for gpbo.minimize: the loop, failures, callbacks, bad input and a quality check."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

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
    (dict(n_trials=0), InvalidArgumentError, "n_trials must be a positive int, got int 0"),
    (dict(n_trials=-2), InvalidArgumentError, "n_trials must be a positive int, got int -2"),
    (dict(n_trials=2.5), InvalidArgumentError, "n_trials must be a positive int, got float 2.5"),
    (dict(n_trials=True), InvalidArgumentError, "n_trials must be a positive int, got bool True"),
    (dict(callbacks=print), InvalidArgumentError, "callbacks must be a list of callables"),
    (dict(callbacks=[print, 1]), InvalidArgumentError, "every callback must be callable, got int 1"),
    (dict(space=[1, 2]), InvalidSpaceError, "space must be a Space or a dict"),
    (dict(seed="0"), InvalidArgumentError, "seed must be an int >= 0"),
    (dict(dtype=torch.int64), InvalidArgumentError, "dtype must be torch.float32 or torch.float64"),
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
    result = minimize(quadratic, BOX, 4, seed=0, n_initial=4)
    assert isinstance(result, MinimizeResult) and isinstance(result.optimizer, Optimizer)
    assert len(result.trials) == 4 and all(t.state is TrialState.COMPLETE for t in result.trials)
    best = min(result.trials, key=lambda t: t.value)
    assert (result.best_params, result.best_value) == (best.params, best.value)
    assert result.optimizer.trials == result.trials


def test_failures_are_recorded_and_the_loop_goes_on():
    outcomes = iter([ValueError("bad input"), math.nan, np.float64(2.0), math.inf, torch.tensor(1.0)])

    def objective(params):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = minimize(objective, BOX, 5, seed=0, n_initial=5)
    states = [t.state.value for t in result.trials]
    assert states == ["failed", "failed", "complete", "failed", "complete"]
    assert result.trials[0].error == "ValueError: bad input"
    assert result.trials[1].error == "non-finite value nan"
    assert result.best_value == 1.0 and result.best_params == result.trials[4].params


def test_all_failed_gives_no_best():
    def objective(params):
        raise RuntimeError("always")

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
    result = minimize(lambda p: quadratic(p) + (p["c"] == "b"), space, 5, seed=1, n_initial=3, dtype=dtype)
    assert len(result.trials) == 5 and all(t.state is TrialState.COMPLETE for t in result.trials)
    assert result.best_value == min(t.value for t in result.trials)


def test_maximize_returns_the_largest_value():
    result = minimize(lambda p: -quadratic(p), BOX, 4, seed=0, maximize=True, n_initial=3)
    assert result.best_value == max(t.value for t in result.trials)
    assert result.optimizer.maximize


def test_branin_beats_sobol_at_seed_0():
    sobol = minimize(branin, BRANIN_SPACE, 15, seed=0, n_initial=15)
    bo = minimize(branin, BRANIN_SPACE, 15, seed=0)
    assert bo.best_value - BRANIN_MIN < 1.0
    assert bo.best_value < sobol.best_value


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_branin_25_trials_reaches_small_regret(seed):
    sobol = minimize(branin, BRANIN_SPACE, 25, seed=seed, n_initial=25)
    bo = minimize(branin, BRANIN_SPACE, 25, seed=seed)
    assert bo.best_value - BRANIN_MIN < 1.0
    assert bo.best_value < sobol.best_value
