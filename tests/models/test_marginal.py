"""The MAP objective's closed-form gradient against autograd and finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from gpbo.models.kernel import kernel_matrix
from gpbo.models.marginal import GPPriors, neg_log_posterior


def _autograd_loss(theta, X, Y, categorical, priors):
    """Reference: the same loss written with autograd-differentiable ops only."""
    n = X.shape[-2]
    ls, noise = theta[..., :-1].exp(), theta[..., -1].exp()
    K = kernel_matrix(X, X, ls, categorical) + noise[..., None, None] * torch.eye(n, dtype=X.dtype)
    L = torch.linalg.cholesky(K)
    a = torch.linalg.solve_triangular(L, Y.expand(K.shape[:-1]).unsqueeze(-1), upper=False)
    nll = 0.5 * a.squeeze(-1).pow(2).sum(-1) + L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    log_prior = priors.lengthscale.log_prob(ls).sum(-1) + priors.noise.log_prob(noise)
    return (nll + 0.5 * n * math.log(2 * math.pi) - log_prior) / n


@pytest.mark.parametrize("categorical", [(), (1,), (0, 2)])
def test_gradient_matches_autograd(categorical: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(0)
    P, n, d = 3, 12, 3
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    for j in categorical:
        X[..., j] = torch.randint(0, 3, (P, n), generator=g).double() / 2
    Y = torch.randn(P, n, generator=g, dtype=torch.float64)
    priors = GPPriors.for_dim(d, X)
    theta = (0.5 * torch.randn(4, P, d + 1, generator=g, dtype=torch.float64) - 1).requires_grad_()
    ours = neg_log_posterior(theta, X, Y, categorical, priors)
    ref = _autograd_loss(theta, X, Y, categorical, priors)
    torch.testing.assert_close(ours, ref)
    weights = torch.rand(4, P, generator=g, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), theta)
    (g_ref,) = torch.autograd.grad((ref * weights).sum(), theta)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-7, atol=1e-9)


def test_gradcheck_against_finite_differences() -> None:
    g = torch.Generator().manual_seed(1)
    X = torch.rand(2, 8, 2, generator=g, dtype=torch.float64)
    Y = torch.randn(2, 8, generator=g, dtype=torch.float64)
    priors = GPPriors.for_dim(2, X)
    theta = torch.full((2, 3), -1.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: neg_log_posterior(t, X, Y, (), priors), (theta,))


def test_failed_cholesky_gives_inf_and_zero_gradient() -> None:
    X = torch.zeros(1, 3, 1, dtype=torch.float64)  # identical points
    Y = torch.tensor([[0.0, 1.0, -1.0]], dtype=torch.float64)
    priors = GPPriors.for_dim(1, X)
    theta = torch.tensor([[0.0, -80.0]], dtype=torch.float64, requires_grad=True)  # noise ~ 1e-35
    loss = neg_log_posterior(theta, X, Y, (), priors)
    (grad,) = torch.autograd.grad(loss.sum().clamp_max(1e300), theta)
    assert math.isinf(float(loss)) and bool((grad == 0).all())
