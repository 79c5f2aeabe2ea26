"""Tests of the batched exact GP: posterior against BoTorch, MAP fit, robustness."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms import Standardize
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior

from gpbo.models.exact import ExactGP
from gpbo.models.kernel import kernel_matrix
from gpbo.models.marginal import GPPriors, neg_log_posterior

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


def _data(P: int, n: int, d: int, seed: int = 0, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X).sum(-1) + 0.1 * torch.randn(P, n, generator=g, dtype=torch.float64)
    return X.to(device, dtype), Y.to(device, dtype)


def _botorch_twin(model: ExactGP, p: int) -> SingleTaskGP:
    """A BoTorch SingleTaskGP with problem p's hyperparameters and prior mean.

    BoTorch standardises by the average, gpbo's prior mean is the worst
    observation: in BoTorch's standardised units that is the constant
    ``(min Y - mean Y) / std Y`` of its ConstantMean.
    """
    X = model.X_train[p]
    Y = (model.Y_train[p] * model.y_std[p] + model.y_mean[p]).unsqueeze(-1)
    gp = SingleTaskGP(
        X, Y, covar_module=get_covar_module_with_dim_scaled_prior(X.shape[-1], use_rbf_kernel=False),
        outcome_transform=Standardize(1),
    )
    gp.covar_module.lengthscale = model.lengthscale[p]
    gp.likelihood.noise = model.noise[p]
    gp.mean_module.constant = (Y.min() - Y.mean()) / Y.std()
    return gp.eval()


def test_prior_mean_is_the_worst_observation() -> None:
    X, Y = _data(2, 12, 3)
    model = ExactGP.fit(X, Y)
    torch.testing.assert_close(model.y_mean, Y.min(-1).values)
    torch.testing.assert_close(model.y_std, Y.std(-1))
    far = torch.full((1, 2, 1, 3), 1e3, dtype=X.dtype)  # far from every observation: the prior
    torch.testing.assert_close(model.posterior(far).mean[0, :, 0], Y.min(-1).values)


@pytest.mark.parametrize("device", DEVICES)
def test_posterior_matches_botorch_with_same_hyperparameters(device: str) -> None:
    X, Y = _data(3, 20, 4, device=device)
    model = ExactGP.fit(X, Y)
    Xt = torch.rand(5, 3, 2, 4, dtype=X.dtype, device=device)  # (..., P, q, d)
    post = model.posterior(Xt)
    for p in range(3):
        ref = _botorch_twin(model, p).posterior(Xt[:, p])
        torch.testing.assert_close(post.mean[:, p], ref.mean.squeeze(-1), rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(
            post.covariance[:, p], ref.distribution.covariance_matrix, rtol=1e-6, atol=1e-8
        )


def test_kernel_categorical_dims_use_indicator_distance() -> None:
    ls = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    a = torch.tensor([[[0.3, 0.0]]], dtype=torch.float64)
    b = torch.tensor([[[0.3, 0.5], [0.3, 1.0], [0.3, 0.0]]], dtype=torch.float64)
    k = kernel_matrix(a, b, ls, categorical=(1,))[0, 0]
    r = 1.0 / 2.0  # sqrt(1[x != x'] / ls^2)
    expected = (1 + math.sqrt(5) * r + 5 / 3 * r**2) * math.exp(-math.sqrt(5) * r)
    torch.testing.assert_close(k, torch.tensor([expected, expected, 1.0], dtype=torch.float64))


def test_map_fit_is_at_least_as_good_as_botorch_fit() -> None:
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    X, Y = _data(4, 30, 3, seed=1)
    model = ExactGP.fit(X, Y)
    priors = GPPriors.for_dim(3, X)
    ours = neg_log_posterior(model.theta, X, model.Y_train, (), priors)
    for p in range(4):
        gp = SingleTaskGP(
            X[p], Y[p, :, None],
            covar_module=get_covar_module_with_dim_scaled_prior(3, use_rbf_kernel=False),
            outcome_transform=Standardize(1),
        )
        fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
        theta = torch.cat([gp.covar_module.lengthscale.log().view(-1), gp.likelihood.noise.log()])
        theirs = neg_log_posterior(theta[None], X[p : p + 1], model.Y_train[p : p + 1], (), priors)
        assert ours[p] <= theirs[0] + 1e-4


def test_batched_fit_equals_looped_fit() -> None:
    X, Y = _data(4, 15, 3, seed=2)
    batched = ExactGP.fit(X, Y)
    for p in range(4):
        single = ExactGP.fit(X[p : p + 1], Y[p : p + 1])
        torch.testing.assert_close(batched.theta[p], single.theta[0], rtol=1e-6, atol=1e-6)


def test_warm_fit_is_capped_per_element_so_batched_equals_looped(monkeypatch) -> None:
    """A warm-started fit stops at 20 L-BFGS-B iterations (cold: 100); the cap is per
    element, so a batch containing a slow problem still equals the looped fits."""
    from gpbo.models import exact

    caps = []
    real = exact.minimize_lbfgsb

    def spy(*args, **kwargs):
        caps.append(kwargs["max_iter"])
        return real(*args, **kwargs)

    monkeypatch.setattr(exact, "minimize_lbfgsb", spy)
    X, Y = _data(4, 30, 3, seed=4)
    cold = ExactGP.fit(X[:, :12], Y[:, :12])
    warm = ExactGP.fit(X, Y, warm_start=cold)  # 18 new points: far from the old optimum
    assert caps == [100, 20]
    for p in range(4):
        single = ExactGP.fit(X[p : p + 1], Y[p : p + 1], warm_start=cold.theta[p : p + 1])
        torch.testing.assert_close(warm.theta[p], single.theta[0], rtol=1e-6, atol=1e-6)


def test_warm_start_reaches_the_same_optimum() -> None:
    X, Y = _data(2, 25, 2, seed=3)
    cold = ExactGP.fit(X[:, :20], Y[:, :20])
    warm = ExactGP.fit(X, Y, warm_start=cold)
    scratch = ExactGP.fit(X, Y)
    priors = GPPriors.for_dim(2, X)
    loss = lambda m: neg_log_posterior(m.theta, X, m.Y_train, (), priors)  # noqa: E731
    torch.testing.assert_close(loss(warm), loss(scratch), rtol=1e-5, atol=1e-5)


def test_deterministic_noise_is_fixed_at_floor() -> None:
    X, Y = _data(2, 10, 2)
    model = ExactGP.fit(X, Y, noise="deterministic")
    torch.testing.assert_close(model.noise, torch.full((2,), 1e-6, dtype=torch.float64))


def test_condition_equals_dense_solve_on_all_data() -> None:
    X, Y = _data(2, 12, 2)
    model = ExactGP.fit(X[:, :10], Y[:, :10])
    cond = model.condition(X[:, 10:], Y[:, 10:])
    Xt = torch.rand(3, 2, 1, 2, dtype=torch.float64)  # (..., P, q, d)
    post = cond.posterior(Xt)
    y = (Y - model.y_mean[:, None]) / model.y_std[:, None]
    K = kernel_matrix(X, X, model.lengthscale, ()) + model.noise[:, None, None] * torch.eye(12)
    k_star = kernel_matrix(Xt, X, model.lengthscale, ())  # (3, 2, 1, 12)
    mean = (k_star @ torch.linalg.solve(K, y.unsqueeze(-1))).squeeze(-1)
    var = 1 - (k_star @ torch.linalg.solve(K, k_star.transpose(-1, -2))).squeeze(-1)
    torch.testing.assert_close(post.mean, mean * model.y_std[:, None] + model.y_mean[:, None])
    torch.testing.assert_close(post.variance, var.squeeze(-1)[..., None] * model.y_std[:, None] ** 2)


def _robust_case(name: str, dtype: torch.dtype):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(2, 12, 3, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1)
    if name == "duplicates":
        X = X[:, :3].repeat(1, 8, 1)
        Y = torch.sin(5 * X).sum(-1)
    elif name == "constant":
        Y = torch.full_like(Y, 3.7)
    elif name == "huge":
        Y = Y * 1e12
    elif name == "tiny":
        Y = Y * 1e-12
    elif name == "n1":
        X, Y = X[:, :1], Y[:, :1]
    elif name == "d1":
        X = X[..., :1]
        Y = torch.sin(5 * X).sum(-1)
    return X.to(dtype), Y.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["duplicates", "constant", "huge", "tiny", "n1", "d1"])
def test_fit_is_robust(case: str, dtype: torch.dtype) -> None:
    X, Y = _robust_case(case, dtype)
    model = ExactGP.fit(X, Y)
    post = model.posterior(torch.rand(4, 2, 1, X.shape[-1], dtype=dtype))
    assert bool(post.mean.isfinite().all()) and bool(post.covariance.isfinite().all())
    assert bool((post.variance >= -1e-6 * model.y_std.pow(2).unsqueeze(-1)).all())
    # the model interpolates its (distinct) data in the sense of the mean
    fit_mean = model.posterior(X.transpose(0, 1).unsqueeze(-2)).mean.squeeze(-1).T  # (P, n)
    scale = Y.abs().max() + torch.finfo(dtype).tiny
    assert bool(((fit_mean - Y).abs() <= 0.5 * scale).all())
