"""Numerical robustness of the facade with the real engine: awkward data still gets valid suggestions.

Each case loads an `Optimizer` with told trials (``n_initial`` small, so the
GP is used), asks, and checks that the suggestions are inside the space and
that the engine did not fall back to Sobol points (no FitError warning).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from gpbo.optimizer import Optimizer
from gpbo.space import Categorical, Integer, Real, Space
from gpbo.trial import TrialState

DTYPES = [pytest.param(torch.float32, marks=pytest.mark.slow), torch.float64]  # float32 runs with -m slow
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
BOX = Space({"x": Real(-1.0, 1.0), "y": Real(0.0, 10.0), "n": Integer(1, 8)})


def sobol_params(space: Space, n: int, seed: int = 0) -> list[dict]:
    if n == 0:
        return []
    U = torch.quasirandom.SobolEngine(space.dim, scramble=True, seed=seed).draw(n, dtype=torch.float64)
    return space.decode(U)


def ask_valid(opt: Optimizer, n: int = 2) -> list:
    """Asks ``n`` trials and checks them; a Sobol fallback (FitError warning) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        trials = opt.ask(n)
    for trial in trials:
        assert trial.state is TrialState.RUNNING
        opt.space.encode(trial.params)  # raises if a value is outside the space
    assert len({tuple(t.params.values()) for t in trials}) == n
    return trials


def loaded(space: Space, values: list, *, dtype=torch.float64, device="cpu", params=None) -> Optimizer:
    opt = Optimizer(space, seed=0, settings={"n_initial": 2, "dtype": dtype, "device": device})
    opt.tell_many(params or sobol_params(space, len(values)), values)
    return opt


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_failed_but_one(dtype, device):
    values = [math.nan, math.inf, -math.inf, ValueError("x"), 2.5, math.nan, RuntimeError("y"), math.nan]
    ask_valid(loaded(BOX, values, dtype=dtype, device=device))


@pytest.mark.parametrize("dtype", DTYPES)
def test_identical_values(dtype):
    ask_valid(loaded(BOX, [3.0] * 10, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1e15, 1e-15])
def test_huge_and_tiny_values(dtype, scale):
    params = sobol_params(BOX, 10)
    values = [scale * (1.0 + p["x"] ** 2 + 0.1 * p["y"]) for p in params]
    ask_valid(loaded(BOX, values, dtype=dtype, params=params))


@pytest.mark.parametrize("dtype", DTYPES)
def test_values_of_1e15_and_1e_minus_15_together(dtype):
    values = [1e15 if i % 3 == 0 else 1e-15 * i for i in range(10)]
    ask_valid(loaded(BOX, values, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_two_hundred_duplicate_points(dtype):
    params = [{"x": 0.25, "y": 5.0, "n": 3}] * 200
    values = [1.0 + 0.01 * math.sin(i) for i in range(200)]
    ask_valid(loaded(BOX, values, dtype=dtype, params=params))


def test_one_dimension():
    space = Space({"x": Real(-3.0, 3.0)})
    params = sobol_params(space, 6)
    ask_valid(loaded(space, [p["x"] ** 2 for p in params], params=params))


def test_sixty_dimensions():
    space = Space({f"x{i}": Real(0.0, 1.0) for i in range(60)})
    params = sobol_params(space, 20)
    ask_valid(loaded(space, [sum((v - 0.5) ** 2 for v in p.values()) for p in params], params=params))


def test_only_categorical_parameters():
    space = Space({"a": Categorical(["r", "g", "b"]), "b": Categorical([True, False]), "c": Categorical([1, 2.5, None])})
    params = sobol_params(space, 8)
    values = [(p["a"] == "g") + (p["b"] is True) * 0.5 + (p["c"] is None) * 0.25 for p in params]
    ask_valid(loaded(space, values, params=params), n=3)


def test_categorical_with_fifty_choices():
    space = Space({"k": Categorical([f"choice{i}" for i in range(50)]), "x": Real(0.0, 1.0)})
    params = sobol_params(space, 12)
    values = [abs(int(p["k"][6:]) - 17) + p["x"] for p in params]
    ask_valid(loaded(space, values, params=params), n=3)


@pytest.mark.parametrize("n_told", [0, 1])
def test_zero_or_one_observation_with_pending_trials(n_told):
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 0})
    opt.tell_many(sobol_params(BOX, n_told), [1.0] * n_told)
    pending = opt.ask(3)
    more = ask_valid(opt, n=2)
    assert not {tuple(t.params.values()) for t in more} & {tuple(t.params.values()) for t in pending}
