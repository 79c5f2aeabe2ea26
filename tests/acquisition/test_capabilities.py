"""A researcher's own surrogate, following only the documented protocols.

``FixedGP`` below is a tiny exact GP in plain torch (RBF kernel, fixed
hyperparameters, batched over P) with nothing but the base
:class:`~gpbo.models.protocol.Surrogate` protocol: ``posterior`` and
``condition`` (tests/custom_surrogates.py). Here the acquisitions run on the
engine's own path below the fit: an :class:`AcquisitionContext` on the model,
the acquisition built from it, :func:`gpbo.search.maximize_acquisition`
preconditioned by :func:`~gpbo.models.protocol.lengthscale_of`, and for
one-point acquisitions the kriging believer through the model's
``condition``. tests/test_custom_surrogate.py runs the same model through
``gpbo.suggest``, the Optimizer and ``minimize`` (``Settings.model``).
"""

from __future__ import annotations

import pytest
import torch
from custom_surrogates import FixedGP, FixedGPWithNoise
from torch import Tensor

from gpbo.acquisition import DEFAULT_ACQUISITION, AcquisitionContext, get, is_joint
from gpbo.acquisition.protocol import required_capabilities
from gpbo.dims import DimSpec
from gpbo.errors import InvalidArgumentError
from gpbo.models.exact import ExactGP
from gpbo.models.protocol import (
    Lengthscales,
    NoiseAndScale,
    PathwiseUpdate,
    PointNoise,
    Surrogate,
    ThompsonFeatures,
    lengthscale_of,
    noise_variance,
    require,
)
from gpbo.models.variational import SVGP
from gpbo.search import maximize_acquisition


def _data(P: int = 2, n: int = 8, d: int = 2, *, dtype=torch.float64, device="cpu") -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    Y = -(X - 0.3).pow(2).sum(-1) + 0.1 * torch.arange(P, dtype=torch.float64)[:, None]
    return X.to(dtype=dtype, device=device), Y.to(dtype=dtype, device=device)


def _suggest(model: Surrogate, X: Tensor, Y: Tensor, acquisition: object, *, q: int = 1,
             seed: int = 0) -> tuple[Tensor, Tensor]:
    """The engine's step below the fit: candidates (P, q, d) and first values (P,)."""
    acq = get(acquisition)
    dims, P = DimSpec.continuous(X.shape[-1]), X.shape[0]
    joint, points, first = is_joint(acq), [], None
    for i in range(1 if joint else q):
        ctx = AcquisitionContext.from_data(model, X, Y, seed=seed + i)
        x, values = maximize_acquisition(
            acq(ctx), dims, n_problems=P, q=q if joint else 1, seed=seed + i, dtype=X.dtype,
            device=X.device, n_raw=64, n_restarts=4, max_iter=30, scale=lengthscale_of(model),
        )
        points.append(x)
        first = values if first is None else first
        if not joint:  # kriging believer, through the model's own condition
            mean = model.posterior(x).mean.detach()  # (P, 1)
            model = model.condition(x, mean, noiseless=True)
            X, Y = torch.cat([X, x], -2), torch.cat([Y, mean], -1)
    return torch.cat(points, -2), first


@pytest.mark.parametrize("acquisition", ["log_ei", "ucb", "posterior_mean", "qlog_nei"])
def test_a_base_protocol_model_works_with_the_acquisitions(acquisition: str, dtype, device) -> None:
    X, Y = _data(dtype=dtype, device=device)
    model = FixedGP(X, Y)
    assert isinstance(model, Surrogate) and not isinstance(model, (NoiseAndScale, Lengthscales))
    candidates, values = _suggest(model, X, Y, acquisition, q=2)
    assert candidates.shape == (2, 2, 2) and candidates.dtype == dtype
    assert bool(((candidates >= 0) & (candidates <= 1)).all()) and bool(values.isfinite().all())
    if acquisition != "posterior_mean":  # believing the mean leaves the mean, and its maximiser, as it was
        assert not torch.allclose(candidates[:, 0], candidates[:, 1])  # the batch spreads


def test_the_posterior_mean_search_finds_the_models_optimum() -> None:
    X, Y = _data(P=2, n=12)
    candidates, _ = _suggest(FixedGP(X, Y), X, Y, "posterior_mean")
    grid = torch.stack(torch.meshgrid(*[torch.linspace(0, 1, 101, dtype=X.dtype)] * 2, indexing="ij"), -1)
    on_grid = FixedGP(X, Y).posterior(grid.reshape(-1, 1, 1, 2).expand(-1, 2, 1, 2)).mean.squeeze(-1)
    found = FixedGP(X, Y).posterior(candidates).mean.squeeze(-1)  # (P,)
    assert bool((found >= on_grid.amax(0) - 1e-4).all())


def test_batched_equals_looped_for_the_custom_model() -> None:
    X, Y = _data(P=3)
    batched, _ = _suggest(FixedGP(X, Y), X, Y, "log_ei", q=2)
    for p in range(3):
        alone, _ = _suggest(FixedGP(X[p:p + 1], Y[p:p + 1]), X[p:p + 1], Y[p:p + 1], "log_ei", q=2)
        torch.testing.assert_close(batched[p:p + 1], alone, atol=1e-6, rtol=0)


@pytest.mark.parametrize("n", [7, 8])  # either member of the portfolio takes the first turn
def test_the_default_acquisition_needs_noise_and_scale_on_every_turn(n: int) -> None:
    X, Y = _data(n=n)
    candidates, values = _suggest(FixedGPWithNoise(X, Y), X, Y, DEFAULT_ACQUISITION, q=2)
    assert candidates.shape == (2, 2, 2) and bool(values.isfinite().all())
    with pytest.raises(InvalidArgumentError, match=(
        r"LogAugmentedEI\(c=1.0\) in RoundRobin needs a surrogate with the NoiseAndScale capability "
        r"\(attributes noise, y_std; .*\); FixedGP lacks noise, y_std"
    )):
        _suggest(FixedGP(X, Y), X, Y, DEFAULT_ACQUISITION)


def test_acquisitions_declare_what_they_require() -> None:
    assert get("log_aei").requires == (NoiseAndScale,)
    assert get("thompson").requires == (ThompsonFeatures,)
    assert get(DEFAULT_ACQUISITION).requires == (NoiseAndScale,)  # the portfolio: its members' needs
    assert get("log_ei_ucb").requires == ()
    for name in ("log_ei", "log_pi", "ucb", "posterior_mean", "qlog_nei"):
        assert required_capabilities(get(name)) == ()


def test_augmented_ei_reads_the_noise_through_the_capability() -> None:
    X, Y = _data()
    model = FixedGPWithNoise(X, Y)
    torch.testing.assert_close(noise_variance(model, "test"), torch.full((2,), 1e-3, dtype=X.dtype))
    _suggest(model, X, Y, "log_aei")
    with pytest.raises(InvalidArgumentError, match="LogAugmentedEI needs .* NoiseAndScale .* FixedGP lacks"):
        _suggest(FixedGP(X, Y), X, Y, "log_aei")


def test_thompson_sampling_on_a_base_model_names_thompson_features() -> None:
    X, Y = _data()
    with pytest.raises(InvalidArgumentError, match=(
        r"ThompsonSampling needs a surrogate with the ThompsonFeatures capability \(attributes "
        r"lengthscale, noise, y_std, outputscale, X_train, Y_train, y_mean, categorical, base_kernel, kernel; "
        r".*\); FixedGPWithNoise lacks lengthscale, outputscale, X_train"
    )):
        _suggest(FixedGPWithNoise(X, Y), X, Y, "thompson", q=2)


def test_gpbos_models_offer_every_capability() -> None:
    X, Y = _data()
    for gp, update in ((ExactGP.fit(X, Y), PointNoise), (SVGP.fit(X, Y), PathwiseUpdate)):
        for capability in (Surrogate, NoiseAndScale, Lengthscales, ThompsonFeatures, update):
            assert isinstance(gp, capability) and require(gp, capability, "test") is gp
        assert lengthscale_of(gp) is gp.lengthscale
    assert not isinstance(ExactGP.fit(X, Y), PathwiseUpdate)  # Thompson's exact update on X_train


def test_lengthscale_of_a_model_without_lengthscales_is_none_and_a_bad_one_is_named() -> None:
    X, Y = _data()
    assert lengthscale_of(FixedGP(X, Y)) is None

    class ScalarScale(FixedGP):
        lengthscale = 0.25

    with pytest.raises(InvalidArgumentError, match=r"ScalarScale.lengthscale must be a \(P, d\) tensor.*got float"):
        lengthscale_of(ScalarScale(X, Y))


def test_a_custom_acquisition_declares_and_checks_its_capability() -> None:
    class NoiseUCB:
        """UCB on the predictive (noisy) variance: needs the noise."""

        joint = False
        requires = (NoiseAndScale,)

        def __call__(self, ctx: AcquisitionContext):
            noise = noise_variance(ctx.model, "NoiseUCB")  # (P,)

            def fn(X: Tensor) -> Tensor:
                post = ctx.model.posterior(X)
                return post.mean.squeeze(-1) + (post.variance.squeeze(-1) + noise).sqrt()

            return fn

    X, Y = _data()
    _suggest(FixedGPWithNoise(X, Y), X, Y, NoiseUCB())
    with pytest.raises(InvalidArgumentError, match="NoiseUCB needs .*NoiseAndScale.*FixedGP lacks noise"):
        _suggest(FixedGP(X, Y), X, Y, NoiseUCB())
