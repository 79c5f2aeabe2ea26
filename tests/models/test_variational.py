"""Tests of the batched SVGP and of the exact/SVGP switch (small n, fast)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
import torch

import gpbo.models.variational_train as vtrain
from gpbo.engine import suggest
from gpbo.errors import InvalidArgumentError
from gpbo.models import select
from gpbo.models.exact import ExactGP
from gpbo.models.protocol import Surrogate
from gpbo.models.variational import SVGP

DTYPES = [torch.float32, torch.float64]
FAST = {"num_inducing": 16, "steps": 10, "batch_size": 32}


def _data(P: int, n: int, d: int = 3, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1) + 0.05 * torch.randn(P, n, generator=g, dtype=torch.float64)
    return X.to(dtype), Y.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_protocol_contract_shapes_and_psd(dtype):
    X, Y = _data(2, 40, dtype=dtype)
    model = SVGP.fit(X, Y, **FAST)
    assert isinstance(model, Surrogate)
    Xq = torch.rand(5, 2, 3, 3, dtype=dtype)  # (R, P, q, d)
    post = model.posterior(Xq)
    assert post.mean.shape == (5, 2, 3) and post.covariance.shape == (5, 2, 3, 3)
    assert torch.allclose(post.covariance, post.covariance.transpose(-1, -2), atol=1e-5)
    assert bool((torch.linalg.eigvalsh(post.covariance.double()) > -1e-4).all())
    assert model.theta.shape == (2, 4) and model.inducing_points.shape == (2, 16, 3)


def test_full_inducing_set_equals_exact_gp():
    """With Z = X (M = n, no Z updates) the optimal q gives the exact posterior."""
    X, Y = _data(1, 30)
    svgp = SVGP.fit(X, Y, num_inducing=100, steps=1, lr=0.0)
    exact = ExactGP.fit(X, Y, warm_start=svgp.theta, max_iter=0)
    Xq = torch.rand(7, 1, 1, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, b = svgp.posterior(Xq), exact.posterior(Xq)
    # the SVGP's jitter on Kzz: over 2,000 points of the box the means differ by up to 1.1e-4 (scale 3.4)
    assert torch.allclose(a.mean, b.mean, atol=2e-4)
    assert torch.allclose(a.variance, b.variance, atol=1e-4)


def test_batched_equals_looped():
    X, Y = _data(3, 50)
    batched = SVGP.fit(X, Y, **FAST, seed=3)
    Xq = torch.rand(6, 1, 1, 3, dtype=torch.float64).expand(6, 3, 1, 3)
    post = batched.posterior(Xq)
    for p in range(3):
        single = SVGP.fit(X[p:p + 1], Y[p:p + 1], **FAST, seed=3).posterior(Xq[:, p:p + 1])
        assert torch.allclose(post.mean[:, p], single.mean[:, 0], atol=1e-6)
        assert torch.allclose(post.variance[:, p], single.variance[:, 0], atol=1e-6)


def test_rescaled_q_keeps_the_inducing_values_in_y_units():
    X, Y = _data(2, 40)
    m = SVGP.fit(X, Y, **FAST)
    y_mean, y_std = torch.tensor([0.3, -2.0], dtype=X.dtype), torch.tensor([2.0, 0.5], dtype=X.dtype)
    q_mean, q_covar = m.rescaled_q(y_mean, y_std)
    Li, eye = m.chol_inv, torch.eye(16, dtype=X.dtype)
    moved = replace(
        m, y_mean=y_mean, y_std=y_std, alpha=(Li.transpose(-1, -2) @ q_mean.unsqueeze(-1)).squeeze(-1),
        c_matrix=Li.transpose(-1, -2) @ (eye - q_covar) @ Li,
    )
    Z = m.inducing_points.transpose(0, 1).unsqueeze(-2)  # (M, P, 1, d): at Z, f = u
    a, b = moved.posterior(Z), m.posterior(Z)
    assert torch.allclose(a.mean, b.mean, atol=1e-3)
    assert torch.allclose(a.variance, b.variance, atol=1e-3)


def test_warm_start_keeps_state_and_matches_cold_fit():
    X, Y = _data(1, 120, seed=1)
    Xt, Yt = _data(1, 200, seed=2)
    cold_small = SVGP.fit(X[:, :100], Y[:, :100], **FAST)
    warm = SVGP.fit(X, Y, **FAST, warm_start=cold_small)
    cold = SVGP.fit(X, Y, **FAST)
    Xq = Xt.transpose(0, 1).unsqueeze(-2)  # (200, 1, 1, d)

    def rmse(m):
        return (m.posterior(Xq).mean.squeeze(-1).T - Yt).pow(2).mean().sqrt()

    assert rmse(warm) <= 1.1 * rmse(cold)
    same = SVGP.fit(X, Y, **FAST, warm_start=cold)  # warm start on unchanged data
    assert torch.equal(same.theta, cold.theta) or rmse(same) <= 1.1 * rmse(cold)


def test_default_fit_is_closed_form_and_reseeds_on_warm_start():
    """steps=0 (the default): Z from k-means++ on the current data, q optimal; a warm
    start lends only the hyperparameters, so Z covers points added since."""
    X, Y = _data(1, 120, seed=1)
    cold_small = SVGP.fit(X[:, :100], Y[:, :100], num_inducing=16)
    warm = SVGP.fit(X, Y, num_inducing=16, warm_start=cold_small)
    cold = SVGP.fit(X, Y, num_inducing=16)
    torch.testing.assert_close(warm.inducing_points, cold.inducing_points)
    torch.testing.assert_close(warm.theta, cold.theta, atol=1e-3, rtol=1e-3)  # same MAP from another start


def test_inducing_points_capped_at_n():
    X, Y = _data(2, 8)
    assert SVGP.fit(X, Y, num_inducing=50, steps=5).inducing_points.shape == (2, 8, 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_data_rejected(bad):
    X, Y = _data(1, 10)
    Y[0, 3] = bad
    with pytest.raises(InvalidArgumentError, match="Y must be finite.*index \\(0, 3\\)"):
        SVGP.fit(X, Y)
    X[0, 2, 1] = bad
    with pytest.raises(InvalidArgumentError, match="X must be finite"):
        SVGP.fit(X, Y)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_inducing": 0}, "num_inducing"), ({"steps": 1.5}, "steps"), ({"steps": -1}, "steps"),
     ({"noise": "x"}, "noise"), ({"hyper_subset": 1}, "hyper_subset")],
)
def test_bad_options_rejected(kwargs, match):
    X, Y = _data(1, 10)
    with pytest.raises(InvalidArgumentError, match=match):
        SVGP.fit(X, Y, **kwargs)
    with pytest.raises(InvalidArgumentError, match="shape"):
        SVGP.fit(X, Y[:, :5])


def test_divergence_falls_back_with_warning():
    """A step size that no chunk survives, even halved at each retry: every
    chunk is undone, the fit warns and keeps its initial state."""
    X, Y = _data(1, 30)
    with pytest.warns(RuntimeWarning, match=r"diverged \d+ times; keeping the state after 0 of 10 steps"):
        model = SVGP.fit(X, Y, **FAST, lr=1e300)
    assert bool(model.posterior(X.unsqueeze(-2).transpose(0, 1)).mean.isfinite().all())


def test_huge_step_size_never_crashes():
    X, Y = _data(1, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = SVGP.fit(X, Y, num_inducing=16, steps=20, lr=1e8)
    assert bool(model.posterior(torch.rand(3, 1, 1, 3, dtype=X.dtype)).mean.isfinite().all())


def test_switching_threshold(monkeypatch):
    t = select.SVGP_THRESHOLD
    assert select.choose_model("auto", t) == "exact" and select.choose_model("auto", t + 1) == "svgp"
    assert select.choose_model("exact", 10**6) == "exact" and select.choose_model("svgp", 3) == "svgp"
    X, Y = _data(1, 20)
    monkeypatch.setattr(select, "SVGP_THRESHOLD", 19)
    assert isinstance(suggest(X, Y, settings={"n_raw": 32, "n_restarts": 2}).model, SVGP)
    monkeypatch.setattr(select, "SVGP_THRESHOLD", 20)
    assert isinstance(suggest(X, Y, settings={"n_raw": 32, "n_restarts": 2}).model, ExactGP)
    with pytest.raises(InvalidArgumentError, match="model must be one of"):
        suggest(X, Y, settings={"model": "sparse"})


@pytest.mark.parametrize(
    "acquisition", ["log_ei", "log_aei", "ucb", "log_aei_ucb", "log_pi", "posterior_mean", "qlog_nei", "thompson"]
)
def test_every_acquisition_runs_on_svgp(acquisition):
    X, Y = _data(2, 40)
    pending = torch.rand(2, 1, 3, dtype=X.dtype)
    out = suggest(X, Y, q=2, pending=pending,
                  settings={"acquisition": acquisition, "model": "svgp", "n_raw": 64, "n_restarts": 2})
    assert isinstance(out.model, SVGP)
    assert out.candidates.shape == (2, 2, 3)
    assert bool(((out.candidates >= 0) & (out.candidates <= 1)).all())
    assert bool(out.acq_values.isfinite().all())


def test_thompson_paths_follow_the_svgp_posterior():
    """Mean and variance of many SVGP Thompson paths match the posterior."""
    from gpbo.acquisition.protocol import AcquisitionContext
    from gpbo.acquisition.thompson import ThompsonSampling

    X, Y = _data(1, 40)
    model = SVGP.fit(X, Y, **FAST)
    x = torch.rand(1, 1, 3, dtype=X.dtype).expand(1, 400, 3)  # one point, 400 paths
    ctx = AcquisitionContext(model=model, X=X, Y=Y, best_f=Y.max(-1).values, pending=None,
                             generator=torch.Generator().manual_seed(0))
    f = ThompsonSampling(num_features=2048).paths(ctx)(x)[0]  # (400,)
    post = model.posterior(x[:, :1])
    assert abs(f.mean() - post.mean[0, 0]) < 4 * post.variance[0, 0].sqrt() / 20 + 1e-3
    assert 0.6 < f.var() / post.variance[0, 0] < 1.6


def test_whitened_elbo_equals_gpytorch_variational_elbo():
    """gpbo's ELBO on the module's parameters equals GPyTorch's VariationalELBO."""
    import gpytorch

    from gpbo.models.kernel import Matern52
    from gpbo.models.variational import _build_modules

    X, Y = _data(2, 30)
    g = torch.Generator().manual_seed(0)
    theta = torch.tensor([[-1.0, -1.2, -0.8, -3.0], [-0.5, -1.0, -1.5, -4.0]], dtype=X.dtype)
    module, likelihood = _build_modules(X[:, :8], theta, (), Matern52())
    dist = module.variational_strategy._variational_distribution
    with torch.no_grad():
        dist.variational_mean.copy_(torch.randn(2, 8, generator=g, dtype=X.dtype))
        dist.chol_variational_covar.copy_(torch.eye(8, dtype=X.dtype) + 0.1 * torch.randn(2, 8, 8, generator=g, dtype=X.dtype))
    module.variational_strategy.variational_params_initialized.fill_(1)
    ours = vtrain.whitened_elbo(
        module.variational_strategy.inducing_points, dist.variational_mean, dist.chol_variational_covar,
        X[:, :20], Y[:, :20], lengthscale=module.covar_module.lengthscale.squeeze(-2),
        noise=likelihood.noise.squeeze(-1), categorical=(), jitter=module.variational_strategy.jitter_val,
        num_data=30,
    )
    module.train(), likelihood.train()
    with gpytorch.settings.fast_computations(False, False, False):
        ref = gpytorch.mlls.VariationalELBO(likelihood, module, num_data=30)(module(X[:, :20]), Y[:, :20])
    assert torch.allclose(ours, ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("M", [1, 7, 64])
def test_the_block_upper_gram_mirrored_equals_the_full_product(M: int) -> None:
    from gpbo.models.variational import _add_upper_gram

    g = torch.Generator().manual_seed(M)
    k = torch.randn(3, 50, M, generator=g, dtype=torch.float64)
    gram = torch.zeros(3, M, M, dtype=torch.float64)
    _add_upper_gram(gram, k[:, :20])
    _add_upper_gram(gram, k[:, 20:])
    gram = gram.triu() + gram.triu(1).transpose(-1, -2)
    torch.testing.assert_close(gram, k.transpose(-1, -2) @ k, rtol=1e-12, atol=1e-12)
