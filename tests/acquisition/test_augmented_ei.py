"""LogAugmentedEI and its effective-best incumbent against closed forms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.stats import norm

from gpbo.acquisition import LogAugmentedEI, LogEI
from gpbo.acquisition.analytic import effective_best
from gpbo.errors import InvalidArgumentError


def _points(gp, T: int = 6, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    P, _, d = gp.X_train.shape
    return torch.rand(T, P, 1, d, generator=g, dtype=torch.float64).to(dtype=dtype, device=gp.X_train.device)


def _moments(gp, X: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    post = gp.posterior(X.double())
    return (post.mean.squeeze(-1).cpu().numpy(),
            np.sqrt(np.maximum(post.variance.squeeze(-1).cpu().numpy(), 1e-12)))


@pytest.mark.parametrize("c", [0.0, 1.0, 2.5])
def test_effective_best_is_mean_at_highest_lower_bound(c: float, make_gp, make_ctx) -> None:
    gp = make_gp(P=3, n=9, noise=0.3, seed=2)
    best = effective_best(make_ctx(gp), c)
    mean, sigma = _moments(gp, gp.X_train.transpose(0, 1).unsqueeze(-2))  # (n, P) each
    for p in range(3):
        i = np.argmax(mean[:, p] - c * sigma[:, p])
        assert best[p].item() == pytest.approx(mean[i, p], rel=1e-12)


def test_effective_best_in_chunks_equals_one_call(make_gp, make_ctx) -> None:
    ctx = make_ctx(make_gp(P=2, n=11, noise=0.2))
    whole = effective_best(ctx, 1.0)
    torch.testing.assert_close(effective_best(ctx, 1.0, chunk=3), whole, rtol=0, atol=0)


@pytest.mark.parametrize("noise", [1e-4, 0.05, 0.5])
def test_matches_closed_form(noise: float, dtype: torch.dtype, device: str, make_gp, make_ctx) -> None:
    gp = make_gp(P=2, noise=noise, dtype=dtype, device=device)
    ctx = make_ctx(gp)
    X = _points(gp, dtype=dtype)
    values = LogAugmentedEI()(ctx)(X)
    assert values.shape == (6, 2) and values.dtype == dtype and torch.isfinite(values).all()
    ref_gp = make_gp(P=2, noise=noise)
    mean, sigma = _moments(ref_gp, X.double().cpu())
    mean_d, sigma_d = _moments(ref_gp, ref_gp.X_train.transpose(0, 1).unsqueeze(-2))
    T = mean_d[np.argmax(mean_d - sigma_d, axis=0), [0, 1]]  # (P,)
    u = (mean - T) / sigma
    eps = np.sqrt(noise) * ref_gp.y_std.numpy()  # noise sd in Y units
    expected = np.log(sigma * (norm.pdf(u) + u * norm.cdf(u)) * (1 - eps / np.sqrt(sigma**2 + eps**2)))
    tol = 1e-6 if dtype == torch.float64 else 2e-2
    np.testing.assert_allclose(values.double().cpu().numpy(), expected, rtol=tol, atol=tol)


def test_is_log_ei_at_effective_best_when_noise_is_negligible(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, noise=1e-12)
    ctx = make_ctx(gp)
    X = _points(gp)
    shifted = dataclasses.replace(ctx, best_f=effective_best(ctx, 1.0))
    torch.testing.assert_close(LogAugmentedEI()(ctx)(X), LogEI()(shifted)(X), rtol=1e-5, atol=1e-5)


def test_discount_prefers_unexplored_points_under_noise(make_gp, make_ctx) -> None:
    """On top of an observation the data pin f down; the discount there is far below 1."""
    gp = make_gp(P=1, n=20, noise=0.5)
    ctx = make_ctx(gp)
    on_data = gp.X_train[:, :1].unsqueeze(0)  # (1, 1, 1, d)
    shifted = dataclasses.replace(ctx, best_f=effective_best(ctx, 1.0))
    gap = LogEI()(shifted)(on_data) - LogAugmentedEI()(ctx)(on_data)
    assert (gap > 0.5).all()


def test_gradcheck(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, noise=0.1)
    fn = LogAugmentedEI()(make_ctx(gp))
    X = _points(gp)[:3].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (X,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_finite_on_top_of_a_data_point(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, noise=1e-6)
    X = gp.X_train[:, :1].unsqueeze(0).clone().requires_grad_(True)  # sigma ~ the floor
    value = LogAugmentedEI()(make_ctx(gp))(X)
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(X.grad).all()


@pytest.mark.parametrize("c", [-0.5, float("inf"), "1", True])
def test_rejects_bad_c(c: object) -> None:
    with pytest.raises(InvalidArgumentError, match="LogAugmentedEI c"):
        LogAugmentedEI(c=c)  # type: ignore[arg-type]


def test_needs_a_model_with_noise(make_gp, make_ctx) -> None:
    ctx = make_ctx(make_gp(P=1))

    class NoNoise:
        posterior = ctx.model.posterior

    bare = type(ctx)(NoNoise(), ctx.X, ctx.Y, ctx.best_f, None, ctx.generator)
    message = "LogAugmentedEI needs a surrogate with the NoiseAndScale capability.*NoNoise lacks noise, y_std"
    with pytest.raises(InvalidArgumentError, match=message):
        LogAugmentedEI()(bare)


class _MeanHidden:
    """A model that offers posterior() only, so effective_best scores every point."""

    def __init__(self, model) -> None:
        self.model = model

    def posterior(self, X: torch.Tensor):
        return self.model.posterior(X)


def _fitted(kind: str, n: int, noise: float):
    from gpbo.models.exact import ExactGP
    from gpbo.models.variational import SVGP

    g = torch.Generator().manual_seed(4)
    X = torch.rand(2, n, 3, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1) + noise * torch.randn(2, n, generator=g, dtype=torch.float64)
    if kind == "exact":
        return ExactGP.fit(X, Y), X, Y
    return SVGP.fit(X, Y, num_inducing=64, steps=0), X, Y


@pytest.mark.parametrize("kind", ["exact", "svgp"])
@pytest.mark.parametrize("c", [0.0, 1.0, 50.0])  # 50: the top means do not decide, every point is scored
def test_effective_best_from_top_means_equals_scoring_every_point(kind: str, c: float) -> None:
    from gpbo.acquisition.protocol import AcquisitionContext

    model, X, Y = _fitted(kind, 300, 0.3)
    ctx = AcquisitionContext.from_data(model, X, Y)
    everything = effective_best(dataclasses.replace(ctx, model=_MeanHidden(model)), c, chunk=32)
    torch.testing.assert_close(effective_best(ctx, c, chunk=32), everything, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["exact", "svgp"])
def test_posterior_mean_equals_posterior_dot_mean(kind: str) -> None:
    model, X, _ = _fitted(kind, 60, 0.1)
    points = torch.rand(5, 2, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(model.posterior_mean(points), model.posterior(points).mean, rtol=1e-10, atol=1e-10)
    conditioned = model.condition(points[0, :, :1], torch.zeros(2, 1, dtype=torch.float64))
    torch.testing.assert_close(conditioned.posterior_mean(points), conditioned.posterior(points).mean,
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["exact", "svgp"])
def test_effective_best_among_incumbents_is_the_best_lower_bound_among_them(kind: str) -> None:
    from gpbo.acquisition.protocol import AcquisitionContext

    model, X, Y = _fitted(kind, 300, 0.3)
    allowed = torch.rand(2, 300, generator=torch.Generator().manual_seed(3)) < 0.3  # (P, n)
    allowed[1] = False  # problem 1 marks none: every observation counts
    ctx = AcquisitionContext.from_data(model, X, Y)
    masked = dataclasses.replace(ctx, incumbents=allowed)
    best = effective_best(masked, 1.0, chunk=32)
    mean, sigma = _moments(model, X.transpose(0, 1).unsqueeze(-2))  # (n, P)
    lower = mean - sigma
    i0 = np.flatnonzero(allowed[0].numpy())[np.argmax(lower[allowed[0].numpy(), 0])]
    assert best[0].item() == pytest.approx(mean[i0, 0], rel=1e-10)
    assert best[1].item() == pytest.approx(mean[np.argmax(lower[:, 1]), 1], rel=1e-10)
    assert best[0].item() != pytest.approx(effective_best(ctx, 1.0)[0].item(), rel=1e-6)  # the mask matters here
    everything = effective_best(dataclasses.replace(masked, model=_MeanHidden(model)), 1.0, chunk=32)
    torch.testing.assert_close(best, everything, rtol=0, atol=0)


def test_context_refuses_incumbents_of_another_shape(make_gp, make_ctx) -> None:
    ctx = make_ctx(make_gp(P=2, n=8))
    with pytest.raises(InvalidArgumentError, match=r"ctx.incumbents must be \(P, n\) = \(2, 8\) or None, got \(8, 2\)"):
        dataclasses.replace(ctx, incumbents=torch.ones(8, 2, dtype=torch.bool))
