"""Fit options that are settings values: prior mean, noise, warp fence, solver path, SVGP Adam steps; FitError."""

from __future__ import annotations

import pytest
import torch

import gpbo
from gpbo.engine import fit_model
from gpbo.errors import FitError, InvalidArgumentError
from gpbo.models import exact
from gpbo.models.exact import SOLVER_PATHS, ExactGP
from gpbo.models.standardise import standardisation
from gpbo.models.variational import SVGP
from gpbo.models.warping import fit_yeo_johnson, pull_in_far_outcomes, warp_outcomes, yeo_johnson


def _data(P: int = 2, n: int = 10, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    return X, torch.sin(5 * X).sum(-1) + 0.05 * torch.randn(P, n, generator=g, dtype=torch.float64)


# prior_mean ---------------------------------------------------------------------------------------


def test_average_prior_mean_is_the_average_observation():
    X, Y = _data()
    model = ExactGP.fit(X, Y, prior_mean="average", max_iter=5)
    torch.testing.assert_close(model.y_mean, Y.mean(-1))
    torch.testing.assert_close(model.y_std, Y.std(-1))
    torch.testing.assert_close(model.Y_train.mean(-1), torch.zeros(2, dtype=torch.float64))
    worst = ExactGP.fit(X, Y, max_iter=5)
    torch.testing.assert_close(worst.y_mean, Y.min(-1).values)


def test_prior_mean_setting_reaches_the_model():
    X, Y = _data()
    average = fit_model(X, Y, settings={"prior_mean": "average", "warp": "none"})
    torch.testing.assert_close(average.y_mean, Y.mean(-1))
    svgp = fit_model(X, Y, settings={"prior_mean": "average", "warp": "none", "model": "svgp"})
    torch.testing.assert_close(svgp.y_mean, Y.mean(-1))


def test_constant_outcomes_get_unit_scale():
    Y = torch.tensor([[2.0, 2.0, 2.0], [1.0, 2.0, 3.0]], dtype=torch.float64)
    for prior_mean in ("worst", "average"):
        y_mean, y_std = standardisation(Y, prior_mean)
        assert y_std.tolist() == [1.0, 1.0] and y_mean[0] == 2.0
    with pytest.raises(InvalidArgumentError, match="prior_mean must be one of .*'median'"):
        standardisation(Y, "median")


# noise ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", [ExactGP.fit, SVGP.fit])
def test_unknown_noise_is_refused_by_the_fit(fit):
    X, Y = _data()
    with pytest.raises(InvalidArgumentError, match=r"noise must be one of \('learned', 'deterministic'\), got 'learnt'"):
        fit(X, Y, noise="learnt")


# warp fence (the nofence and fence10 ablations, as settings values) --------------------------------


def test_no_fence_warps_the_outcomes_as_they_are():
    y = torch.cat([-torch.linspace(0.0, 1.0, 29, dtype=torch.float64), torch.tensor([-1e6], dtype=torch.float64)])
    assert float(pull_in_far_outcomes(y[None])[0][0, -1]) > -100.0  # the default fences pull it in
    z = (y - y.mean()) / y.std(correction=0)
    lam = fit_yeo_johnson(y[None])
    torch.testing.assert_close(warp_outcomes(y[None], fence=None), yeo_johnson(z, lam)[None])
    assert not torch.allclose(warp_outcomes(y[None]), warp_outcomes(y[None], fence=None))


def test_fence_10_moves_the_fences():
    y = torch.cat([torch.zeros(10), torch.ones(10), torch.tensor([6.0])]).double()[None]  # IQR 1, 5 beyond q3
    assert float(pull_in_far_outcomes(y)[1]) < 0.0
    assert float(pull_in_far_outcomes(y, 10.0)[1]) == 0.0


@pytest.mark.parametrize("fence", [None, 10.0, 3.0])
def test_warp_fence_setting_reaches_the_warp(fence):
    X, _ = _data(P=1, n=12)
    Y = torch.cat([-torch.linspace(0.0, 1.0, 11, dtype=torch.float64), torch.tensor([-1e4], dtype=torch.float64)])[None]
    model = fit_model(X, Y, settings={"warp_fence": fence, "prior_mean": "average"})
    expected = warp_outcomes(Y, fence=fence)
    torch.testing.assert_close(model.Y_train * model.y_std[:, None] + model.y_mean[:, None], expected)


# solver path ----------------------------------------------------------------------------------------


def test_accelerator_solver_path_takes_the_gpu_code_path(monkeypatch):
    seen = []
    original = exact.minimize_lbfgsb

    def spy(*args, **kwargs):
        seen.append({k: kwargs.get(k) for k in ("check_every", "unit_first")})
        return original(*args, **kwargs)

    monkeypatch.setattr(exact, "minimize_lbfgsb", spy)  # the public solver, as the model module sees it
    X, Y = _data()
    fit_model(X, Y, settings={"solver_path": "accelerator"})
    fit_model(X, Y)
    assert seen == [{"check_every": 10, "unit_first": False}, {"check_every": None, "unit_first": None}]
    assert SOLVER_PATHS["accelerator"] == {"check_every": 10, "unit_first": False}
    with pytest.raises(InvalidArgumentError, match="solver_path must be one of"):
        ExactGP.fit(X, Y, solver_path="gpu")


def test_accelerator_fit_is_a_valid_fit():
    X, Y = _data()
    auto, accel = ExactGP.fit(X, Y), ExactGP.fit(X, Y, solver_path="accelerator")
    torch.testing.assert_close(accel.theta, auto.theta, rtol=0.05, atol=0.05)


# SVGP Adam steps ------------------------------------------------------------------------------------


def test_svgp_adam_steps_run_end_to_end():
    X, Y = _data(P=1, n=40)
    settings = {"model": "svgp", "n_raw": 32, "n_restarts": 2}
    closed_form = gpbo.suggest(X, Y, settings=settings)
    trained = gpbo.suggest(X, Y, settings={**settings, "svgp_adam_steps": 5})
    assert isinstance(trained.model, SVGP) and trained.candidates.shape == (1, 1, 3)
    # Adam moved the inducing points away from the k-means++ seeds (rows of X)
    assert not torch.equal(trained.model.inducing_points, closed_form.model.inducing_points)
    torch.testing.assert_close(trained.model.theta, closed_form.model.theta)  # hyperparameters: same subset fit


# FitError -------------------------------------------------------------------------------------------


def test_outcomes_whose_standardisation_overflows_raise_fit_error():
    X, _ = _data(P=2, n=4)
    Y = torch.tensor([[1e308, -1e308, 1e308, 0.0], [0.0, 1.0, 2.0, 3.0]], dtype=torch.float64)
    with pytest.raises(FitError, match=r"problem\(s\) \[0\] are not finite.*overflows torch.float64"):
        ExactGP.fit(X, Y)
    with pytest.raises(FitError, match=r"problem\(s\) \[0\]"):
        SVGP.fit(X, Y)
    with pytest.raises(FitError):  # the default output warp does not rescue it
        gpbo.suggest(X, Y)


def test_a_covariance_no_jitter_repairs_raises_fit_error():
    X, Y = _data()
    theta = ExactGP.fit(X, Y).theta.clone()
    theta[1, 0] = float("nan")
    with pytest.raises(FitError, match=r"problem\(s\) \[1\] is not positive definite.*non-finite hyperparameters"):
        ExactGP.at_theta(X, Y, theta)


def test_at_theta_rebuilds_a_fit():
    X, Y = _data()
    model = ExactGP.fit(X, Y, kernel="rbf")
    again = ExactGP.at_theta(X, Y, model.theta, kernel="rbf")
    torch.testing.assert_close(again.alpha, model.alpha)
    torch.testing.assert_close(again.chol_inv, model.chol_inv)
