"""LogEI, LogPI, UCB, PosteriorMean against closed forms and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from gpbo.acquisition import UCB, LogEI, LogPI, PosteriorMean
from gpbo.errors import InvalidArgumentError


def _test_points(gp, T: int = 6, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    P, _, d = gp.X_train.shape
    X = torch.rand(T, P, 1, d, generator=g, dtype=torch.float64)
    X[0] = gp.X_train[:, :1].cpu()  # on top of a data point: tiny sigma
    return X.to(dtype=dtype, device=gp.X_train.device)


def _reference(gp, X: torch.Tensor, best_f: torch.Tensor) -> dict[str, np.ndarray]:
    post = gp.posterior(X.double())
    mean = post.mean.squeeze(-1).double().cpu().numpy()
    sigma = np.sqrt(np.maximum(post.variance.squeeze(-1).double().cpu().numpy(), 1e-12))
    u = (mean - best_f.double().cpu().numpy()) / sigma
    with np.errstate(divide="ignore"):  # EI underflows at the data point X[0]
        log_ei = np.log(sigma * (norm.pdf(u) + u * norm.cdf(u)))
    return {
        "log_ei": log_ei,
        "log_pi": norm.logcdf(u),
        "ucb": mean + math.sqrt(0.7) * sigma,
        "posterior_mean": mean,
    }


ACQS = {"log_ei": LogEI, "log_pi": LogPI, "ucb": lambda: UCB(beta=0.7),
        "posterior_mean": PosteriorMean}


@pytest.mark.parametrize("name", list(ACQS))
def test_matches_closed_form(
    name: str, dtype: torch.dtype, device: str, make_gp, make_ctx
) -> None:
    gp = make_gp(P=2, dtype=dtype, device=device)
    ctx = make_ctx(gp)
    X = _test_points(gp, dtype=dtype)
    values = ACQS[name]()(ctx)(X)
    assert values.shape == (6, 2) and values.dtype == dtype
    expected = _reference(make_gp(P=2), X.double().cpu(), ctx.best_f)[name]
    tol = 1e-6 if dtype == torch.float64 else 2e-2
    # float32: posterior itself carries ~1e-3 error near the data (noise 1e-4)
    np.testing.assert_allclose(values.double().cpu().numpy()[1:], expected[1:], rtol=tol, atol=tol)
    assert torch.isfinite(values).all()


@pytest.mark.parametrize("name", list(ACQS))
def test_gradcheck(name: str, make_gp, make_ctx) -> None:
    gp = make_gp(P=2)
    fn = ACQS[name]()(make_ctx(gp))
    X = _test_points(gp)[1:4].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (X,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_log_ei_is_finite_far_below_incumbent(dtype: torch.dtype, make_gp, make_ctx) -> None:
    gp = make_gp(P=1, dtype=dtype)
    ctx = make_ctx(gp)
    shifted = type(ctx)(ctx.model, ctx.X, ctx.Y, ctx.best_f + 200.0, None, ctx.generator)
    X = _test_points(gp, dtype=dtype)[1:].clone().requires_grad_(True)
    value = LogEI()(shifted)(X)
    value.sum().backward()
    assert torch.isfinite(value).all() and (value < -100).all()
    assert torch.isfinite(X.grad).all() and (X.grad.abs().sum() > 0)


@pytest.mark.parametrize("name", list(ACQS))
def test_rejects_q_greater_than_one(name: str, make_gp, make_ctx) -> None:
    fn = ACQS[name]()(make_ctx(make_gp(P=2)))
    with pytest.raises(InvalidArgumentError, match=r"one point at a time.*\(2, 3, 2\)"):
        fn(torch.rand(2, 3, 2, dtype=torch.float64))


@pytest.mark.parametrize("beta", [-1.0, float("nan"), "2", True])
def test_ucb_rejects_bad_beta(beta: object) -> None:
    with pytest.raises(InvalidArgumentError, match="UCB beta"):
        UCB(beta=beta)  # type: ignore[arg-type]


def test_ucb_default_beta() -> None:
    assert UCB().beta == 2.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["log_ei", "log_aei", "ucb"])
def test_fused_value_and_grad_equals_autograd_on_the_exact_gp(name, dtype):
    from gpbo.acquisition import AcquisitionContext, LogAugmentedEI
    from gpbo.acquisition.analytic import FusedAcquisitionFn
    from gpbo.models.exact import ExactGP

    g = torch.Generator().manual_seed(3)
    X = torch.rand(2, 15, 3, generator=g, dtype=torch.float64)
    X[..., 2] = (X[..., 2] * 3).floor() / 2  # a categorical dim with levels 0, 0.5, 1
    Y = torch.sin(6 * X).sum(-1) + 0.05 * torch.randn(2, 15, generator=g, dtype=torch.float64)
    gp = ExactGP.fit(X.to(dtype), Y.to(dtype), categorical=(2,))
    ctx = AcquisitionContext.from_data(gp, X.to(dtype), Y.to(dtype), seed=0)
    fn = {"log_ei": LogEI(), "log_aei": LogAugmentedEI(), "ucb": UCB(beta=0.7)}[name](ctx)
    assert isinstance(fn, FusedAcquisitionFn)
    Xt = torch.rand(4, 5, 2, 1, 3, generator=g, dtype=torch.float64).to(dtype)
    Xt[0, 0] = X[:, :1].to(dtype)  # on a data point: tiny sigma
    xr = Xt.clone().requires_grad_(True)
    value = fn(xr)
    (grad,) = torch.autograd.grad(value.sum(), xr)
    fused_value, fused_grad = fn.value_and_grad(Xt)
    assert fused_value.shape == (4, 5, 2) and fused_grad.shape == Xt.shape
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-8, "atol": 1e-8}
    torch.testing.assert_close(fused_value, value.detach(), **tol)
    torch.testing.assert_close(fused_grad, grad, **tol)
    assert (fused_grad[..., 2] == 0).all()  # the categorical dim has no gradient
