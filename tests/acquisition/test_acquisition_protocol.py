"""Posterior / psd_cholesky helpers and the AcquisitionContext contract."""

from __future__ import annotations

import pytest
import torch

from gpbo.acquisition import AcquisitionContext
from gpbo.acquisition.protocol import check_single_point, draw_seed
from gpbo.errors import GpboError, InvalidArgumentError
from gpbo.models.protocol import Posterior, Surrogate, psd_cholesky


def _random_posterior(batch: tuple[int, ...], P: int, q: int, dtype: torch.dtype) -> Posterior:
    g = torch.Generator().manual_seed(0)
    A = torch.randn(*batch, P, q, q, generator=g, dtype=torch.float64)
    cov = A @ A.transpose(-1, -2) + 0.1 * torch.eye(q, dtype=torch.float64)
    mean = torch.randn(*batch, P, q, generator=g, dtype=torch.float64)
    return Posterior(mean.to(dtype), cov.to(dtype))


def test_variance_is_diagonal() -> None:
    post = _random_posterior((4,), 2, 3, torch.float64)
    assert post.variance.shape == (4, 2, 3)
    torch.testing.assert_close(post.variance, torch.diagonal(post.covariance, dim1=-2, dim2=-1))


@pytest.mark.parametrize("batch", [(), (5,), (4, 3)])
def test_rsample_shapes_and_moments(batch: tuple[int, ...], dtype: torch.dtype) -> None:
    post = _random_posterior(batch, 2, 3, dtype)
    z = torch.randn(20000, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    samples = post.rsample(z)  # shared across batch and problems
    assert samples.shape == (20000, *batch, 2, 3) and samples.dtype == dtype
    emp_mean = samples.mean(0)
    centred = samples - emp_mean
    emp_cov = torch.einsum("s...i,s...j->...ij", centred, centred) / (samples.shape[0] - 1)
    scale = post.covariance.diagonal(dim1=-2, dim2=-1).amax().sqrt()
    torch.testing.assert_close(emp_mean, post.mean, atol=0.05 * scale, rtol=0)
    torch.testing.assert_close(emp_cov, post.covariance, atol=0.08 * scale**2, rtol=0)


def test_rsample_is_differentiable() -> None:
    post = _random_posterior((), 1, 2, torch.float64)
    mean = post.mean.clone().requires_grad_(True)
    z = torch.randn(8, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Posterior(mean, post.covariance).rsample(z).sum().backward()
    torch.testing.assert_close(mean.grad, torch.full_like(mean, 8.0))


def test_rsample_rejects_too_many_dims() -> None:
    post = _random_posterior((), 1, 2, torch.float64)
    with pytest.raises(ValueError, match="base_samples"):
        post.rsample(torch.zeros(4, 1, 1, 1, 2, dtype=torch.float64))


def test_psd_cholesky_handles_singular(dtype: torch.dtype) -> None:
    v = torch.tensor([1.0, 2.0, 3.0], dtype=dtype)
    A = torch.stack([torch.outer(v, v), torch.eye(3, dtype=dtype)])  # rank 1 and identity
    L = psd_cholesky(A)
    assert torch.isfinite(L).all()
    torch.testing.assert_close(L @ L.transpose(-1, -2), A, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(L[1], torch.eye(3, dtype=dtype), atol=1e-5, rtol=0)


def test_tiny_gp_follows_surrogate_protocol(make_gp) -> None:
    assert isinstance(make_gp(), Surrogate)


def test_context_from_data(make_gp, make_ctx) -> None:
    gp = make_gp(P=3)
    ctx = make_ctx(gp, seed=3)
    Y = gp.Y_train * gp.y_std[:, None] + gp.y_mean[:, None]
    torch.testing.assert_close(ctx.best_f, Y.max(-1).values)
    again = make_ctx(gp, seed=3)
    assert draw_seed(ctx.generator) == draw_seed(again.generator)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("X", torch.zeros(2, 8), "ctx.X must be"),
        ("Y", torch.zeros(2, 7), "ctx.Y must be"),
        ("best_f", torch.zeros(3), "ctx.best_f must be"),
        ("pending", torch.zeros(2, 1, 5), "ctx.pending must be"),
    ],
)
def test_context_rejects_bad_shapes(
    field: str, value: torch.Tensor, message: str, make_gp, make_ctx
) -> None:
    ctx = make_ctx(make_gp(P=2, n=8, d=2))
    kwargs = {f: getattr(ctx, f) for f in ("model", "X", "Y", "best_f", "pending", "generator")}
    kwargs[field] = value.double()
    with pytest.raises(InvalidArgumentError, match=message):
        AcquisitionContext(**kwargs)


def test_check_single_point_message() -> None:
    with pytest.raises(InvalidArgumentError, match=r"one point at a time.*\(2, 3, 4\)") as info:
        check_single_point(torch.zeros(2, 3, 4), "LogEI")
    assert isinstance(info.value, GpboError) and isinstance(info.value, ValueError)
