"""BoTorch acquisitions on a gpbo surrogate agree with gpbo's own."""

from __future__ import annotations

import pytest
import torch
from botorch.acquisition import (
    LogExpectedImprovement,
    qLogNoisyExpectedImprovement,
    qUpperConfidenceBound,
)
from botorch.acquisition import (
    PosteriorMean as BoTorchPosteriorMean,
)
from botorch.posteriors import GPyTorchPosterior
from botorch.sampling import SobolQMCNormalSampler

from gpbo.acquisition import UCB, BoTorchAcquisition, GpboBoTorchModel, LogEI, qLogNEI
from gpbo.errors import InvalidArgumentError


def _points(P: int, q: int, lead: tuple[int, ...] = (5,), dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.rand(*lead, P, q, 2, generator=g, dtype=torch.float64).to(dtype)


def test_model_posterior_shapes(make_gp) -> None:
    gp = make_gp(P=3)
    model = GpboBoTorchModel(gp)
    X = _points(3, 4)
    post = model.posterior(X)
    assert isinstance(post, GPyTorchPosterior)
    assert model.num_outputs == 1 and model.batch_shape == torch.Size([3])
    assert post.mean.shape == (5, 3, 4, 1) and post.variance.shape == (5, 3, 4, 1)
    ref = gp.posterior(X)
    torch.testing.assert_close(post.mean.squeeze(-1), ref.mean)
    torch.testing.assert_close(post.mvn.covariance_matrix, ref.covariance)


def test_model_observation_noise(make_gp) -> None:
    gp = make_gp(P=2, noise=0.01)
    model = GpboBoTorchModel(gp)
    X = _points(2, 3)
    extra = (model.posterior(X, observation_noise=True).variance
             - model.posterior(X).variance).squeeze(-1)  # (5, P, q)
    expected = (gp.noise * gp.y_std**2)[:, None].expand(5, 2, 3)
    torch.testing.assert_close(extra, expected)
    given = torch.full((5, 2, 3, 1), 0.5, dtype=torch.float64)
    extra = (model.posterior(X, observation_noise=given).variance
             - model.posterior(X).variance)
    torch.testing.assert_close(extra, given)


def test_model_rejects_other_outputs(make_gp) -> None:
    with pytest.raises(InvalidArgumentError, match="one output"):
        GpboBoTorchModel(make_gp()).posterior(_points(2, 1), output_indices=[1])


@pytest.mark.parametrize("lead", [(), (5,), (4, 3)])
def test_log_ei_matches_gpbo(lead: tuple[int, ...], dtype: torch.dtype,
                             make_gp, make_ctx) -> None:
    gp = make_gp(P=2, dtype=dtype)
    ctx = make_ctx(gp)
    # BoTorch's analytic functions want a batched best_f as (b, 1): here (P, 1)
    acq = BoTorchAcquisition(
        lambda model, c: LogExpectedImprovement(model, best_f=c.best_f.unsqueeze(-1)), joint=False
    )
    X = _points(2, 1, lead, dtype)
    value = acq(ctx)(X)
    assert value.shape == (*lead, 2) and value.dtype == dtype
    torch.testing.assert_close(value, LogEI()(ctx)(X))


def test_qucb_matches_ucb(make_gp, make_ctx) -> None:
    # BoTorch: qUCB = E[mean + sqrt(beta pi / 2) |f - mean|], and E|f - mean| = sigma
    # sqrt(2 / pi) for q = 1, so qUCB(beta) ~ UCB(beta) (no rescaling of beta).
    gp = make_gp(P=2)
    ctx = make_ctx(gp)

    def factory(model, c):
        sampler = SobolQMCNormalSampler(torch.Size([256]), seed=0)
        return qUpperConfidenceBound(model, beta=0.1, sampler=sampler)

    X = _points(2, 1)
    value = BoTorchAcquisition(factory)(ctx)(X)
    expected = UCB(beta=0.1)(ctx)(X)
    sigma = gp.posterior(X).variance.squeeze(-1).sqrt()
    assert value.shape == (5, 2)
    torch.testing.assert_close(value, expected, atol=float(0.01 * sigma.max()), rtol=0)


def test_qlognei_matches_gpbo(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, n=8, noise=1e-4, seed=3)
    ctx = make_ctx(gp)

    def factory(model, c):
        sampler = SobolQMCNormalSampler(torch.Size([2048]), seed=0)
        return qLogNoisyExpectedImprovement(model, X_baseline=c.X, sampler=sampler,
                                            prune_baseline=False, cache_root=False)

    X = _points(2, 2)
    value = BoTorchAcquisition(factory)(ctx)(X)
    ours = qLogNEI(num_samples=2048)(ctx)(X)
    big = ours > -6.0  # compare where the improvement is not vanishingly small
    assert big.sum() >= 3
    torch.testing.assert_close(value[big].exp(), ours[big].exp(), rtol=0.05, atol=0)


def test_model_is_not_registered_as_submodule(make_gp) -> None:
    model = GpboBoTorchModel(make_gp())
    assert list(model.children()) == [] and model.surrogate is not None


def test_adapter_rejects_bad_factories(make_gp, make_ctx) -> None:
    with pytest.raises(InvalidArgumentError, match="callable factory"):
        BoTorchAcquisition("qUCB")  # type: ignore[arg-type]
    acq = BoTorchAcquisition(lambda model, ctx: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidArgumentError, match="AcquisitionFunction, got int"):
        acq(make_ctx(make_gp()))


def test_adapter_is_joint_by_default() -> None:
    assert BoTorchAcquisition(lambda m, c: BoTorchPosteriorMean(m)).joint is True
