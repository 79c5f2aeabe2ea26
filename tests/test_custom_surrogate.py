"""A researcher's own surrogate through ``Settings.model``: suggest, Optimizer, minimize.

The model (tests/custom_surrogates.py) follows only the documented base
protocol (``posterior``, ``condition``); its class is the
:class:`~gpbo.models.protocol.SurrogateFactory` (``fit`` is a classmethod).
"""

from __future__ import annotations

import json

import pytest
import torch
from custom_surrogates import FixedGP, FixedGPWithNoise

import gpbo
from gpbo.errors import InvalidArgumentError
from gpbo.models.protocol import SurrogateFactory, check_factory

FAST = {"n_raw": 64, "n_restarts": 3, "n_anchors": 1}
ACQUISITIONS = ["log_ei", "ucb"]


@pytest.fixture(autouse=True)
def _reset_fit_log():
    FixedGP.fits.clear()
    yield
    FixedGP.fits.clear()


def _data(P: int = 3, n: int = 8, d: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    Y = -(X - 0.3).pow(2).sum(-1) + 0.1 * torch.arange(P, dtype=torch.float64)[:, None]
    pending = torch.rand(P, 1, d, generator=g, dtype=torch.float64)
    return X, Y, pending


def _settings(acquisition: str, model: object = FixedGP, **more: object) -> gpbo.Settings:
    return gpbo.Settings(model=model, acquisition=acquisition, **FAST, **more)


@pytest.mark.parametrize("acquisition", ACQUISITIONS)
def test_suggest_runs_a_base_protocol_model(acquisition: str) -> None:
    X, Y, pending = _data()
    out = gpbo.suggest(X, Y, q=2, pending=pending, seed=1, settings=_settings(acquisition))
    assert isinstance(out.model, FixedGP) and out.candidates.shape == (3, 2, 3)
    assert bool(((out.candidates >= 0) & (out.candidates <= 1)).all()) and bool(out.acq_values.isfinite().all())
    assert not torch.allclose(out.candidates[:, 0], out.candidates[:, 1])  # the believer spreads the batch
    assert FixedGP.fits == [None]  # fitted once, cold


def test_the_factory_gets_the_warped_outcomes_and_the_previous_model() -> None:
    X, Y, _ = _data()
    seen = []

    class Spy:
        def fit(self, X, Y, *, categorical, seed, warm_start):
            seen.append((Y, categorical, seed, warm_start))
            return FixedGP(X, Y)

    dims = gpbo.dims.DimSpec.continuous(3)
    first = gpbo.suggest(X, Y, dims=dims, seed=5, settings=_settings("log_ei", Spy()))
    gpbo.suggest(X, Y, seed=6, warm_start=first.model, settings=_settings("log_ei", Spy()))
    gpbo.suggest(X, Y, seed=7, warm_start=first.model, settings=_settings("log_ei", Spy(), warm_start=False))
    gpbo.suggest(X, Y, seed=8, settings=_settings("log_ei", Spy(), warp="none"))
    warped = gpbo.models.warping.warp_outcomes(Y, fence=3.0)
    torch.testing.assert_close(seen[0][0], warped)
    assert seen[0][1:] == ((), 5, None) and seen[1][3] is first.model and seen[2][3] is None
    assert seen[3][0] is Y  # warp="none": the outcomes as given


@pytest.mark.parametrize("acquisition", ACQUISITIONS)
def test_batched_equals_looped_for_a_custom_model(acquisition: str) -> None:
    X, Y, pending = _data()
    settings = _settings(acquisition)
    batched = gpbo.suggest(X, Y, q=2, pending=pending, seed=3, settings=settings).candidates
    for p in range(3):
        sl = slice(p, p + 1)
        alone = gpbo.suggest(X[sl], Y[sl], q=2, pending=pending[sl], seed=3, settings=settings).candidates
        torch.testing.assert_close(batched[sl], alone, atol=1e-6, rtol=0)


def test_the_default_acquisition_names_the_capability_it_needs() -> None:
    X, Y, pending = _data()
    with pytest.raises(InvalidArgumentError, match=(
        r"LogAugmentedEI\(c=1.0\) in RoundRobin needs a surrogate with the NoiseAndScale capability "
        r"\(attributes noise, y_std; .*\); FixedGP lacks noise, y_std"
    )):
        gpbo.suggest(X, Y, q=2, pending=pending, settings=gpbo.Settings(model=FixedGP, **FAST))
    out = gpbo.suggest(X, Y, q=2, pending=pending, settings=gpbo.Settings(model=FixedGPWithNoise, **FAST))
    assert isinstance(out.model, FixedGPWithNoise) and bool(out.acq_values.isfinite().all())


@pytest.mark.parametrize("acquisition", ACQUISITIONS)
def test_minimize_runs_a_custom_model(acquisition: str) -> None:
    result = gpbo.minimize(
        lambda p: (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2, {"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(0.0, 1.0)},
        12, seed=0, settings=_settings(acquisition, n_initial=4),
    )
    assert len(result.trials) == 12 and all(t.state is gpbo.TrialState.COMPLETE for t in result.trials)
    assert FixedGP.fits == [None] * 8  # every GP-phase ask, cold (the facade keeps no custom model)
    assert result.best_value < 0.02


def test_optimizer_state_dict_saves_a_custom_factory_as_none() -> None:
    space = {"x": gpbo.Real(0.0, 1.0)}
    opt = gpbo.Optimizer(space, seed=0, settings=_settings("ucb", n_initial=2))
    for _ in range(3):
        trial = opt.ask()
        opt.tell(trial, trial.params["x"] ** 2)
    state = json.loads(json.dumps(opt.state_dict()))
    assert state["settings"]["model"] is None and state["gp_theta"] is None
    with pytest.raises(InvalidArgumentError, match=r"custom surrogate factory; pass settings=\{'model': \.\.\.\}"):
        gpbo.Optimizer.from_state_dict(state)
    restored = gpbo.Optimizer.from_state_dict(state, settings={"model": FixedGP})
    assert restored.settings == opt.settings
    assert restored.ask().params == opt.ask().params  # no warm start: the restored one continues alike
    assert gpbo.Settings.from_dict(state["settings"]).model == "auto"  # None alone means the default


class _NoFit:
    pass


class _MissingKeywords:
    def fit(self, X, Y, *, seed):
        return FixedGP(X, Y)


class _InstanceMethod:
    def fit(self, X, Y, *, categorical, seed, warm_start):
        return FixedGP(X, Y)


@pytest.mark.parametrize("model, message", [
    (_NoFit(), r"or a surrogate factory with fit\(X, Y, \*, categorical, seed, warm_start\).*_NoFit .*no fit method"),
    (_MissingKeywords(), "whose fit lacks the keyword argument.s. categorical, warm_start"),
    (_InstanceMethod, r"whose fit cannot be called so: .*\(pass an instance, not the class\?\)"),
    (3, "got int 3, which has no fit method"),
    ("gp", r"model must be one of \('auto', 'exact', 'svgp'\), got 'gp'"),
])
def test_a_bad_factory_is_named_when_the_settings_are_built(model: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        gpbo.Settings(model=model)


def test_factories_follow_the_protocol() -> None:
    assert isinstance(_InstanceMethod(), SurrogateFactory) and check_factory(FixedGP) is FixedGP

    class Kwargs:
        def fit(self, X, Y, **options):
            return FixedGP(X, Y)

    gpbo.Settings(model=Kwargs())  # **kwargs accepts the keywords


def test_a_fit_that_returns_no_surrogate_or_a_theta_warm_start_is_named() -> None:
    X, Y, _ = _data()

    class ReturnsMean:
        def fit(self, X, Y, *, categorical, seed, warm_start):
            return Y.mean(-1)

    with pytest.raises(InvalidArgumentError, match="fit returned Tensor, which lacks posterior, condition"):
        gpbo.suggest(X, Y, settings=_settings("log_ei", ReturnsMean()))
    with pytest.raises(InvalidArgumentError, match="warm_start of a custom surrogate factory .* got a tensor"):
        gpbo.suggest(X, Y, warm_start=torch.zeros(3, 4, dtype=X.dtype), settings=_settings("log_ei"))


def test_lengthscale_importance_of_a_model_without_lengthscales_is_named() -> None:
    pytest.importorskip("matplotlib")
    opt = gpbo.Optimizer({"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(0.0, 1.0)}, seed=0,
                         settings=_settings("log_ei", n_initial=3))
    for _ in range(3):
        trial = opt.ask()
        opt.tell(trial, trial.params["x"])
    assert set(gpbo.plot.importances(opt, n_samples=64)) == {"x", "y"}
    with pytest.raises(InvalidArgumentError, match="method='lengthscale' needs .*Lengthscales.*FixedGP has none"):
        gpbo.plot.importances(opt, method="lengthscale")
