"""gpbo.suggest with several outcomes: layouts, q, pending, warm starts, the warp and the settings."""

from __future__ import annotations

import pytest
import torch

import gpbo
from gpbo.engine import _fit_outcomes, fit_model, suggest
from gpbo.errors import InvalidArgumentError
from gpbo.outcomes import Outcomes

FAST = {"n_raw": 64, "n_restarts": 2}


def _data(P=2, n=10, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    a, b = -(X - 0.25).pow(2).sum(-1), -(X - 0.75).pow(2).sum(-1)
    c = X.sum(-1) - 1.0
    return X, torch.stack([a, b, c], -1)


@pytest.mark.parametrize(("q", "q_batch"), [(1, "sequential"), (4, "sequential"), (4, "joint")])
@pytest.mark.parametrize(("columns", "outcomes"), [
    ([0, 1], Outcomes(2, 0)), ([0, 1, 2], Outcomes(2, 1)), ([0, 2], Outcomes(1, 1)),
])
def test_suggest_every_layout(columns, outcomes, q, q_batch):
    X, Y = _data()
    pending = torch.rand(2, 1, 2, dtype=torch.float64)
    s = suggest(X, Y[..., columns], q=q, pending=pending, settings={"outcomes": outcomes, "q_batch": q_batch, **FAST})
    assert s.candidates.shape == (2, q, 2) and bool(((s.candidates >= 0) & (s.candidates <= 1)).all())
    assert s.acq_values.shape == (2,) and bool(s.acq_values.isfinite().all())
    theta = s.model.theta
    assert theta.shape == (2, len(columns), 3)
    again = suggest(X, Y[..., columns], q=1, warm_start=torch.tensor(theta.tolist(), dtype=torch.float64),
                    settings={"outcomes": outcomes, **FAST})
    assert again.candidates.shape == (2, 1, 2)


def test_one_objective_as_p_n_1_is_the_single_objective_path():
    X, Y = _data(P=1)
    a = suggest(X, Y[..., 0], settings=FAST)
    b = suggest(X, Y[..., :1], settings=FAST)
    assert torch.equal(a.candidates, b.candidates)


def test_warp_keeps_feasibility_and_maps_the_reference_point():
    X, Y = _data(P=3, n=12)
    Y = Y.clone()
    Y[0, 0, 0] = -1e4  # a far-out objective value: the warp pulls it in
    Y[1, 3, 2] = 0.0  # exactly on the threshold: feasible
    model, Y_w, ref = _fit_outcomes(X, Y, gpbo.dims.DimSpec.continuous(2), gpbo.Settings(outcomes=Outcomes(2, 1)), 0, None)
    assert torch.equal(Y_w[..., 2] <= 0, Y[..., 2] <= 0)
    raw_ref = gpbo.pareto.infer_reference_point(Y[..., :2], Y[..., 2] <= 0)
    for j in range(2):  # the warp is increasing: the order of the points and of the reference point is kept
        assert torch.equal(Y_w[..., j] > ref[:, j:j + 1], Y[..., j] > raw_ref[:, j:j + 1])
        assert torch.equal(Y_w[..., j].argsort(-1), Y[..., j].argsort(-1))


def test_settings_resolve_and_refuse():
    assert isinstance(gpbo.acquisition.resolve("auto", Outcomes(2, 0)), gpbo.acquisition.qLogNEHVI)
    assert isinstance(gpbo.acquisition.resolve("auto", Outcomes(5, 0)), gpbo.acquisition.qLogNParEGO)
    mix = gpbo.acquisition.resolve("auto", Outcomes(2, 1))  # constraints: a qLogNParEGO turn every third point
    assert [type(a).__name__ for a in mix.members] == ["qLogNEHVI", "qLogNEHVI", "qLogNParEGO"]
    assert isinstance(gpbo.acquisition.resolve("auto", Outcomes(5, 1)), gpbo.acquisition.qLogNParEGO)
    assert isinstance(gpbo.acquisition.resolve("auto", Outcomes(1, 2)), gpbo.acquisition.Constrained)
    assert isinstance(gpbo.acquisition.resolve("qlog_nei", Outcomes(1, 1)), gpbo.acquisition.qLogNEIConstrained)
    with pytest.raises(InvalidArgumentError, match="'log_ei' is single-objective and cannot serve 2 objectives"):
        gpbo.Settings(acquisition="log_ei", outcomes=Outcomes(2, 0))
    with pytest.raises(InvalidArgumentError, match="'qlog_nehvi' is multi-objective"):
        gpbo.Settings(acquisition="qlog_nehvi")
    with pytest.raises(InvalidArgumentError, match="'thompson' does not handle constraints"):
        gpbo.Settings(acquisition="thompson", outcomes=Outcomes(1, 1))
    import json
    json.dumps(gpbo.Settings(outcomes=Outcomes(2, 1)).to_dict())


def test_y_with_the_wrong_number_of_outcomes_is_named():
    X, Y = _data()
    with pytest.raises(InvalidArgumentError, match=r"Y must have shape \(P, n, O\) with O = 3"):
        suggest(X, Y[..., :2], settings={"outcomes": Outcomes(2, 1)})


@pytest.mark.parametrize(("columns", "outcomes"), [([0, 1], Outcomes(2, 0)), ([0, 2], Outcomes(1, 1))])
def test_sequential_q_batch_is_one_pick_at_a_time_with_the_picks_pending(columns, outcomes):
    X, Y = _data()
    pending = torch.rand(2, 1, 2, dtype=torch.float64)
    settings = {"outcomes": outcomes, "q_batch": "sequential", **FAST}
    s = suggest(X, Y[..., columns], q=3, pending=pending, seed=5, settings=settings)
    assert s.candidates.shape == (2, 3, 2) and s.acq_values.shape == (2,)
    # the second pick is the one-point suggestion with the first pick pending (same model, the loop's seed)
    first = suggest(X, Y[..., columns], q=1, pending=pending, seed=5, settings=settings)
    assert torch.equal(first.candidates[:, 0], s.candidates[:, 0])
    second = suggest(X, Y[..., columns], q=1, pending=torch.cat([pending, s.candidates[:, :1]], -2), seed=6,
                     settings=settings)
    assert torch.allclose(second.candidates[:, 0], s.candidates[:, 1], atol=1e-6)
    # batched over P equals the loop of single problems
    for p in range(2):
        one = suggest(X[p:p + 1], Y[p:p + 1][..., columns], q=3, pending=pending[p:p + 1], seed=5, settings=settings)
        assert torch.allclose(one.candidates[0], s.candidates[p], atol=1e-6)


def test_q_batch_is_validated():
    with pytest.raises(InvalidArgumentError, match="q_batch"):
        gpbo.Settings(q_batch="greedy")


def _fit_and_predict(X: torch.Tensor, Y: torch.Tensor, at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """fit_model on Y (P, n) or (P, n, O) objectives: theta (P, O, d + 1), mean (P, q, O), covariance (P, O, q, q) at `at`."""
    if Y.dim() == 2:
        model = fit_model(X, Y)
        post = model.posterior(at)
        return model.theta.unsqueeze(1), post.mean.unsqueeze(-1), post.covariance.unsqueeze(1)
    model = fit_model(X, Y, settings={"outcomes": Outcomes(Y.shape[-1], 0)})
    post = model.posterior(at)
    return model.theta, post.mean, post.covariance


def test_each_metric_gets_the_gp_it_would_get_alone():
    """fit_model on metrics (m1, m2) against fit_model on each metric alone (the single-objective path).

    Hyperparameters and the joint posterior (mean, covariance) at 5 new points
    per problem agree to 1e-9: the (P, O) GPs share a batch, not a fit.
    """
    X, Y = _data(P=2, n=12)
    Y = Y[..., [0, 2]]  # a bowl and a plane: different lengthscales
    at = torch.rand(2, 5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    theta, mean, cov = _fit_and_predict(X, Y, at)
    assert not torch.allclose(theta[:, 0], theta[:, 1], atol=0.1)  # the two metrics' GPs do differ
    for j in range(2):
        theta_j, mean_j, cov_j = _fit_and_predict(X, Y[..., j], at)
        torch.testing.assert_close(theta[:, j:j + 1], theta_j, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(mean[..., j:j + 1], mean_j, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(cov[:, j:j + 1], cov_j, rtol=1e-9, atol=1e-9)


def test_swapping_the_metrics_swaps_their_gps_and_changes_nothing_else():
    """fit_model on (m1, m2) against fit_model on (m2, m1): hyperparameters, mean and covariance swapped, to 1e-9."""
    X, Y = _data(P=2, n=12)
    Y = Y[..., [0, 2]]
    at = torch.rand(2, 5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    theta, mean, cov = _fit_and_predict(X, Y, at)
    theta_s, mean_s, cov_s = _fit_and_predict(X, Y[..., [1, 0]], at)
    assert not torch.allclose(mean[..., 0], mean[..., 1], atol=0.1)  # a swap is visible
    torch.testing.assert_close(theta_s, theta[:, [1, 0]], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(mean_s, mean[..., [1, 0]], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(cov_s, cov[:, [1, 0]], rtol=1e-9, atol=1e-9)
