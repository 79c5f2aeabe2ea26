"""The kernel seam: kernel objects, their derivatives, and the model holding its kernel."""

from __future__ import annotations

import pytest
import torch

import gpbo
from gpbo.errors import InvalidArgumentError
from gpbo.models.exact import ExactGP
from gpbo.models.kernel import KERNELS, RBF, Kernel, Matern52, get_kernel, kernel_matrix
from gpbo.models.marginal import GPPriors, neg_log_posterior
from gpbo.models.variational import SVGP
from gpbo.settings import KERNELS as SETTINGS_KERNELS


def _data(P: int = 2, n: int = 12, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    return X, torch.sin(5 * X).sum(-1) + 0.05 * torch.randn(P, n, generator=g, dtype=torch.float64)


def test_kernels_match_the_settings_names():
    assert tuple(KERNELS) == SETTINGS_KERNELS
    assert all(isinstance(k, Kernel) and k.name == name for name, k in KERNELS.items())
    assert get_kernel("rbf") == RBF() and get_kernel(Matern52()) == Matern52()


@pytest.mark.parametrize("bad", ["matern32", 3, None])
def test_unknown_kernel_is_refused(bad):
    with pytest.raises(InvalidArgumentError, match=f"kernel must be one of .*got {bad!r}"):
        get_kernel(bad)
    X, Y = _data()
    with pytest.raises(InvalidArgumentError, match="kernel must be one of"):
        ExactGP.fit(X, Y, kernel=bad)


def test_rbf_is_the_squared_exponential():
    sq = torch.tensor([0.0, 0.3, 1.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(RBF()(sq), torch.exp(-0.5 * sq))
    torch.testing.assert_close(RBF().dsq(sq), -0.5 * torch.exp(-0.5 * sq))


def test_matern52_is_the_closed_form():
    sq = torch.tensor([0.0, 0.3, 1.0, 4.0], dtype=torch.float64)
    r = sq.sqrt()
    torch.testing.assert_close(Matern52()(sq), (1 + 5**0.5 * r + 5 / 3 * sq) * torch.exp(-(5**0.5) * r))


@pytest.mark.parametrize("kernel", [Matern52(), RBF()])
def test_dsq_is_the_derivative(kernel):
    sq = torch.tensor([1e-3, 0.3, 1.0, 4.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(kernel(sq).sum(), sq)
    torch.testing.assert_close(kernel.dsq(sq.detach()), grad)


@pytest.mark.parametrize("kernel", [Matern52(), RBF()])
def test_map_gradient_matches_autograd_for_each_kernel(kernel):
    X, Y = _data(n=8)
    Y = (Y - Y.mean(-1, keepdim=True)) / Y.std(-1, keepdim=True)
    priors = GPPriors.for_dim(3, X)
    theta = (priors.mode_theta + 0.1).expand(2, 4).clone().requires_grad_()
    (ours,) = torch.autograd.grad(neg_log_posterior(theta, X, Y, (), priors, kernel).sum(), theta)

    t = theta.detach().clone().requires_grad_()
    K = kernel_matrix(X, X, t[..., :-1].exp(), (), kernel) + t[..., -1].exp()[..., None, None] * torch.eye(8, dtype=X.dtype)
    dist = torch.distributions.MultivariateNormal(torch.zeros_like(Y), K)
    ref = (-dist.log_prob(Y) - priors.log_prob(t)) / 8
    (expected,) = torch.autograd.grad(ref.sum(), t)
    torch.testing.assert_close(ours, expected)


def test_the_model_holds_its_kernel_and_rbf_fits_differ():
    X, Y = _data()
    matern, rbf = ExactGP.fit(X, Y), ExactGP.fit(X, Y, kernel="rbf")
    assert matern.base_kernel == Matern52() and rbf.base_kernel == RBF()
    torch.testing.assert_close(rbf.kernel(X, X), kernel_matrix(X, X, rbf.lengthscale, (), RBF()))
    assert not torch.allclose(matern.lengthscale, rbf.lengthscale)
    Xt = torch.rand(2, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(matern.posterior(Xt).mean, rbf.posterior(Xt).mean)
    # the conditioned model keeps it
    assert rbf.condition(Xt[:, :1], rbf.posterior(Xt[:, :1]).mean).base_kernel == RBF()


def test_svgp_holds_its_kernel():
    X, Y = _data(n=30)
    model = SVGP.fit(X, Y, kernel="rbf", num_inducing=10)
    assert model.base_kernel == RBF()
    Z = model.inducing_points
    torch.testing.assert_close(model.kernel(Z, Z), kernel_matrix(Z, Z, model.lengthscale, (), RBF()))


def test_settings_kernel_reaches_the_model():
    X, Y = _data(P=1)
    rbf = gpbo.suggest(X, Y, settings={"kernel": "rbf", "n_raw": 64, "n_restarts": 2})
    matern = gpbo.suggest(X, Y, settings={"n_raw": 64, "n_restarts": 2})
    assert rbf.model.base_kernel == RBF() and matern.model.base_kernel == Matern52()
    assert not torch.equal(rbf.model.lengthscale, matern.model.lengthscale)


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
def test_batched_fit_equals_looped_fits(kernel):
    X, Y = _data(P=3)
    batched = ExactGP.fit(X, Y, kernel=kernel, prior_mean="average")
    for p in range(3):
        single = ExactGP.fit(X[p:p + 1], Y[p:p + 1], kernel=kernel, prior_mean="average")
        torch.testing.assert_close(batched.theta[p:p + 1], single.theta, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(batched.alpha[p:p + 1], single.alpha, rtol=1e-6, atol=1e-8)
