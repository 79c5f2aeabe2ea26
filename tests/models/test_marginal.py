"""The MAP objective's closed-form gradient against autograd and finite differences."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.models.utils.gpytorch_modules import (
    get_covar_module_with_dim_scaled_prior,
    get_gaussian_likelihood_with_lognormal_prior,
)

from gpbo.models.kernel import kernel_matrix
from gpbo.models.marginal import GPPriors, neg_log_posterior

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _gpytorch_log_prior(theta, d):
    """BoTorch's priors (GPyTorch LogNormalPrior objects, float32 parameters) as float64
    torch LogNormal distributions, at exp(theta)."""
    ls_prior = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, use_rbf_kernel=False).lengthscale_prior
    noise_prior = get_gaussian_likelihood_with_lognormal_prior().noise_covar.noise_prior
    ls, noise = (torch.distributions.LogNormal(p.loc.double(), p.scale.double()) for p in (ls_prior, noise_prior))
    return ls.log_prob(theta[..., :-1].exp()).sum(-1) + noise.log_prob(theta[..., -1].exp())


def _autograd_loss(theta, X, Y, categorical):
    """Reference: the same loss written with autograd-differentiable ops and GPyTorch's priors."""
    n = X.shape[-2]
    ls, noise = theta[..., :-1].exp(), theta[..., -1].exp()
    K = kernel_matrix(X, X, ls, categorical) + noise[..., None, None] * torch.eye(n, dtype=X.dtype)
    L = torch.linalg.cholesky(K)
    a = torch.linalg.solve_triangular(L, Y.expand(K.shape[:-1]).unsqueeze(-1), upper=False)
    nll = 0.5 * a.squeeze(-1).pow(2).sum(-1) + L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return (nll + 0.5 * n * math.log(2 * math.pi) - _gpytorch_log_prior(theta, X.shape[-1])) / n


def test_priors_match_botorch_prior_objects() -> None:
    d = 4
    theta = torch.randn(5, 3, d + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    priors = GPPriors.for_dim(d, theta)
    torch.testing.assert_close(priors.log_prob(theta), _gpytorch_log_prior(theta, d))
    ls_prior = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, use_rbf_kernel=False).lengthscale_prior
    torch.testing.assert_close(priors.mode_theta[0], ls_prior.mode.double().log())
    assert priors.min_lengthscale == pytest.approx(0.025)


@pytest.mark.parametrize("device", [*DEVICES, "meta"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_priors_and_loss_stay_on_the_data_device(device: str, dtype: torch.dtype) -> None:
    """Regression (CUDA run): the prior parameters stayed on the CPU. On the "meta" device
    any CPU tensor mixed into the loss or its gradient raises, so this runs without a GPU."""
    X = torch.rand(2, 6, 3, dtype=dtype).to(device)
    Y = torch.randn(2, 6, dtype=dtype).to(device)
    priors = GPPriors.for_dim(3, X)
    assert GPPriors.for_dim(3, X.clone()) is priors  # cached per (d, dtype, device)
    assert (priors.loc.device, priors.loc.dtype) == (X.device, dtype)
    assert (priors.scale.device, priors.scale.dtype) == (X.device, dtype)
    theta = priors.mode_theta.expand(2, 4).clone().requires_grad_()
    loss = neg_log_posterior(theta, X, Y, (), priors)
    (grad,) = torch.autograd.grad(loss.sum(), theta)
    assert (loss.device, loss.dtype, grad.device, grad.shape) == (X.device, dtype, X.device, (2, 4))


@pytest.mark.parametrize("device", DEVICES)  # CUDA: K^-1 by a triangular solve, not potri
@pytest.mark.parametrize("categorical", [(), (1,), (0, 2)])
def test_gradient_matches_autograd(categorical: tuple[int, ...], device: str) -> None:
    g = torch.Generator().manual_seed(0)
    P, n, d = 3, 12, 3
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    for j in categorical:
        X[..., j] = torch.randint(0, 3, (P, n), generator=g).double() / 2
    Y = torch.randn(P, n, generator=g, dtype=torch.float64)
    theta = (0.5 * torch.randn(4, P, d + 1, generator=g, dtype=torch.float64) - 1).requires_grad_()
    ref = _autograd_loss(theta, X, Y, categorical)
    X, Y = X.to(device), Y.to(device)
    ours = neg_log_posterior(theta.to(device), X, Y, categorical, GPPriors.for_dim(d, X)).cpu()
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
