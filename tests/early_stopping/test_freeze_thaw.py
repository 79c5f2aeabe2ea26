"""The freeze-thaw curve model against a dense GP built from its definition."""

from __future__ import annotations

import dataclasses
import math

import torch

from gpbo.early_stopping.freeze_thaw import CurveData, FreezeThaw, _log_prior, fit_theta, neg_log_posterior
from gpbo.models.kernel import kernel_matrix
from gpbo.models.marginal import GPPriors

C0, S_A = 1.0, 4.0


def _data() -> CurveData:
    gen = torch.Generator().manual_seed(3)
    X = torch.rand(5, 2, generator=gen, dtype=torch.float64)
    lengths = [4, 0, 2, 6, 1]
    steps = [torch.arange(1, k + 1, dtype=torch.float64) * 2 for k in lengths]
    values = [torch.randn(k, generator=gen, dtype=torch.float64) for k in lengths]
    return CurveData.pad(X, steps, values, 12.0)


def _dense(theta: torch.Tensor, data: CurveData) -> tuple[torch.Tensor, ...]:
    """Covariance of the reports, their covariance with each y_n(1), and the prior variances of y_n(1)."""
    ls, (s_f, s_g, noise, a, b, am, bm) = theta[:2].exp(), theta[2:].exp()
    X, mask, tau, y = data.X[0], data.mask[0], data.tau[0], data.y[0]  # the one study
    n_idx, t_idx = mask.nonzero(as_tuple=True)
    tau, y = tau[n_idx, t_idx], y[n_idx, t_idx]

    def decay(s: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return (beta / (s + beta)) ** alpha

    Kf = C0 + s_f * kernel_matrix(X, X, ls, ()) + 1e-6 * torch.eye(X.shape[0], dtype=torch.float64)
    phi = decay(tau, am, bm) - decay(torch.tensor(1.0, dtype=torch.float64), am, bm)
    same = n_idx.unsqueeze(1) == n_idx.unsqueeze(0)
    K = Kf[n_idx][:, n_idx] + S_A * phi.outer(phi) + same * s_g * decay(tau.unsqueeze(1) + tau.unsqueeze(0), a, b)
    K = K + noise * torch.eye(len(y), dtype=torch.float64)
    N = X.shape[0]
    own = n_idx.unsqueeze(0) == torch.arange(N).unsqueeze(1)  # (N, n)
    k_star = Kf[:, n_idx] + own * s_g * decay(1.0 + tau.unsqueeze(0), a, b)  # (N, n)
    prior_var = Kf.diagonal() + s_g * decay(torch.tensor(2.0, dtype=torch.float64), a, b)
    return K, y, k_star, prior_var


THETA = torch.tensor([-1.0, -0.5, 0.3, -1.2, -3.0, 0.2, -0.7, 0.4, 0.1], dtype=torch.float64)


def test_likelihood_equals_dense_gp() -> None:
    data = _data()
    K, y, _, _ = _dense(THETA, data)
    dense_nll = -torch.distributions.MultivariateNormal(torch.zeros_like(y), K).log_prob(y)
    loss = neg_log_posterior(THETA.unsqueeze(0), data)[0]
    nll = loss * data.n_obs[0] + _log_prior(THETA, GPPriors.for_dim(2, data.X), 2)
    torch.testing.assert_close(nll, dense_nll, rtol=1e-9, atol=1e-9)


def test_posterior_equals_dense_gp() -> None:
    data = _data()
    K, y, k_star, prior_var = _dense(THETA, data)
    mean = k_star @ torch.linalg.solve(K, y)
    var = prior_var - (k_star * torch.linalg.solve(K, k_star.T).T).sum(-1)
    post = FreezeThaw.condition(THETA, data)
    torch.testing.assert_close(post.mean[0], mean * data.y_std + data.y_mean, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(post.std[0], var.sqrt() * data.y_std, rtol=1e-8, atol=1e-8)


def test_batched_theta_equals_loop() -> None:
    data = _data()
    thetas = torch.stack([THETA, THETA + 0.2, THETA - 0.3])
    batched = neg_log_posterior(thetas, data)
    looped = torch.stack([neg_log_posterior(t.unsqueeze(0), data)[0] for t in thetas])
    torch.testing.assert_close(batched, looped, rtol=1e-10, atol=1e-10)


def _studies() -> list[CurveData]:
    """Three studies of 5, 3 and 8 trials, up to 6, 9 and 4 reports, on their own standardisations."""
    out = []
    for seed, n, k_max in ((3, 5, 6), (4, 3, 9), (5, 8, 4)):
        gen = torch.Generator().manual_seed(seed)
        X = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        lengths = torch.randint(0, k_max + 1, (n,), generator=gen).tolist()
        steps = [torch.arange(1, k + 1, dtype=torch.float64) for k in lengths]
        values = [X[i].sum() - torch.exp(-s / 3) + 0.05 * torch.randn(len(s), generator=gen, dtype=torch.float64)
                  for i, s in enumerate(steps)]
        out.append(CurveData.pad(X, steps, values, 12.0))
    return out


def test_studies_stacked_equal_each_alone() -> None:
    """Padding studies to one (N, K) changes nothing: the likelihood (at per-study theta, and under a
    leading line-search dim), the MAP fit and the posterior of the stack equal each study's alone."""
    studies = _studies()
    stacked = CurveData.stack(studies)
    assert stacked.X.shape == (3, 8, 2) and stacked.tau.shape == (3, 8, max(s.tau.shape[-1] for s in studies))
    assert stacked.trials.sum(-1).tolist() == [5, 3, 8]
    thetas = torch.stack([THETA, THETA + 0.2, THETA - 0.3])  # (P, D)
    line = torch.stack([thetas, thetas + 0.1])  # (2, P, D)
    for p, data in enumerate(studies):
        torch.testing.assert_close(neg_log_posterior(thetas, stacked)[p], neg_log_posterior(thetas[p : p + 1], data)[0],
                                   rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(neg_log_posterior(line, stacked)[:, p], neg_log_posterior(line[:, p : p + 1], data)[:, 0],
                                   rtol=1e-12, atol=1e-12)
    theta, ok = fit_theta(stacked)
    assert bool(ok.all())
    post = FreezeThaw.condition(theta, stacked)
    for p, data in enumerate(studies):
        alone, _ = fit_theta(data)
        torch.testing.assert_close(theta[p], alone[0], rtol=1e-6, atol=1e-6)
        n = data.X.shape[1]
        one = FreezeThaw.condition(theta[p : p + 1], data)
        torch.testing.assert_close(post.mean[p, :n], one.mean[0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(post.std[p, :n], one.std[0], rtol=1e-10, atol=1e-10)


def test_a_study_whose_start_is_not_finite_does_not_stop_the_others() -> None:
    studies = _studies()
    bad = dataclasses.replace(studies[1], y=studies[1].y * math.nan)
    theta, ok = fit_theta(CurveData.stack([studies[0], bad, studies[2]]))
    assert ok.tolist() == [True, False, True]
    alone, _ = fit_theta(studies[2])
    torch.testing.assert_close(theta[2], alone[0], rtol=1e-6, atol=1e-6)
