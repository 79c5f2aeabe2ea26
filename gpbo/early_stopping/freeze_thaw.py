"""Freeze-thaw learning-curve model: each trial's value at ``max_step`` from the partial curves.

Model (Swersky, Snoek & Adams 2014, "Freeze-Thaw Bayesian Optimization", §3,
with a mean trend shared by the curves), on standardised values and the step
fraction ``τ = t / max_step``:

    y_n(τ) = f(x_n) + a φ(τ) + g_n(τ) + ε

- ``f ~ GP(0, c0 + s_f k(x, x'))``: the value at ``τ = 1`` across
  configurations; ``k`` the Matérn-5/2 ARD kernel of :mod:`gpbo.models.kernel`
  (categorical dims by indicator distance), ``c0`` a constant-mean variance.
- ``φ(τ) = (β_m / (β_m + τ))^α_m - (β_m / (β_m + 1))^α_m``, ``a ~ N(0, s_a)``:
  the shape the curves share, zero at ``max_step``. It is the mean of a
  Gamma(α_m, β_m) mixture of exponential decays, the family of the
  freeze-thaw kernel.
- ``g_n ~ GP(0, s_g (β / (τ + τ' + β))^α)``, independent per trial: the
  freeze-thaw exponential-decay kernel, the trial's own deviation from its
  configuration's mean, which shrinks as it trains.
- ``ε ~ N(0, σ²)``.

Given the hyperparameters, the observations are linear in
``z = (f_1, ..., f_N, a)`` plus independent per-trial blocks, so the marginal
likelihood and the posterior cost ``O(N³ + Σ k_n³)`` (Woodbury and the
determinant lemma, the paper's §3.2), not ``O((Σ k_n)³)``: 200 trials × 52
steps are a (200, 52, 52) batched Cholesky and one of 201 × 201.

Hyperparameters ``theta = [log ℓ (d), log s_f, log s_g, log σ², log α,
log β, log α_m, log β_m]`` are fitted by MAP with gpbo's batched L-BFGS-B.
Everything is batched over P independent studies, one row of ``theta (..., P,
D)`` each, like the rest of the engine; studies with fewer trials or reports
are padded (`CurveData`). Leading dims left of P are the line search's step
sizes or a backtest's conditioning sets. See
docs/decisions/0030-model-based-early-stopping.md and
docs/decisions/0058-curve-model-over-studies.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import itemgetter

import torch
from torch import Tensor

from gpbo.errors import FitError
from gpbo.models.kernel import kernel_matrix
from gpbo.models.marginal import GPPriors
from gpbo.optim.lbfgsb import minimize_lbfgsb

__all__ = ["MIN_TAU", "CurveData", "FreezeThaw", "curve_blocks", "fit_theta", "n_theta", "pad_to", "predict_from_blocks"]

_C0, _S_A = 1.0, 4.0  # prior variances of the constant mean and of the trend coefficient (standardised)
_JITTER = 1e-6
_N_EXTRA = 7  # theta entries after the d lengthscales
# (loc, scale) of the Gaussian priors on log s_f, log s_g, log σ², log α, log β, log α_m, log β_m
_PRIOR_LOC = (0.0, -1.0, -4.0, 0.0, 0.0, 0.0, 0.0)
_PRIOR_SCALE = (1.0, 1.5, 1.0, 1.5, 1.5, 1.5, 1.5)
_LOWER = (1e-3, 1e-5, 1e-6, 1e-2, 1e-2, 1e-2, 1e-2)
_UPPER = (1e2, 1e2, 2.0, 1e2, 1e2, 1e2, 1e2)
_MAX_ITER = 60
MIN_TAU = 1e-6  # step fractions are clamped here (a step 0 report)


def n_theta(d: int) -> int:
    """Number of hyperparameters for d encoded dims."""
    return d + _N_EXTRA


def pad_to(t: Tensor, shape: tuple[int, ...], value: float | bool) -> Tensor:
    """``t`` in the leading corner of a new tensor of ``shape`` filled with ``value`` (each dim of t <= shape's)."""
    out = torch.full(shape, value, dtype=t.dtype, device=t.device)
    out[tuple(slice(0, n) for n in t.shape)] = t
    return out


@dataclass(frozen=True)
class CurveData:
    """Padded learning curves of P studies, on standardised values.

    Attributes:
        X: (P, N, d) configurations in the unit cube.
        tau: (P, N, K) step fractions ``t / max_step`` (1.0 where padded).
        y: (P, N, K) standardised values (0.0 where padded).
        mask: (P, N, K) bool, a real report.
        trials: (P, N) bool, a real trial. Studies of different N are padded
            with trials that have no reports and no covariance with the real
            ones, so they change nothing.
        y_mean, y_std: (P,) each study's standardisation, ``y = (value - y_mean) / y_std``.
    """

    X: Tensor
    tau: Tensor
    y: Tensor
    mask: Tensor
    trials: Tensor
    y_mean: Tensor
    y_std: Tensor

    @classmethod
    def pad(
        cls, X: Tensor, steps: list[Tensor], values: list[Tensor], max_step: float,
        standardisation: tuple[float, float] | None = None,
    ) -> CurveData:
        """One study (P = 1) from ragged curves (each (k_n,), possibly empty) of configurations X (N, d).

        The values are standardised together, or by ``standardisation = (y_mean, y_std)`` if given.
        """
        dtype = torch.float64
        lengths = torch.tensor([len(s) for s in steps], dtype=torch.int64)
        K = max(int(lengths.max()) if len(steps) else 0, 1)
        mask = torch.arange(K).unsqueeze(0) < lengths.unsqueeze(1)  # (N, K)
        tau = torch.ones(len(steps), K, dtype=dtype)
        y = torch.zeros(len(steps), K, dtype=dtype)
        if len(steps) and int(lengths.sum()) > 0:
            all_t = torch.cat([s.to(dtype) for s in steps]) / max_step
            all_y = torch.cat([v.to(dtype) for v in values])
            tau[mask], y[mask] = all_t, all_y
            y_mean = float(all_y.mean())
            y_std = float(all_y.std()) if all_y.numel() > 1 else 1.0
            y_std = y_std if math.isfinite(y_std) and y_std > 1e-12 else 1.0
            if standardisation is not None:
                y_mean, y_std = standardisation
            y = torch.where(mask, (y - y_mean) / y_std, 0.0)
        else:
            y_mean, y_std = standardisation or (0.0, 1.0)
        return cls(X.to(dtype).unsqueeze(0), tau.clamp_min(MIN_TAU).unsqueeze(0), y.unsqueeze(0), mask.unsqueeze(0),
                   torch.ones(1, len(steps), dtype=torch.bool), torch.tensor([y_mean], dtype=dtype),
                   torch.tensor([y_std], dtype=dtype))

    @classmethod
    def stack(cls, studies: list[CurveData]) -> CurveData:
        """The studies' data as one, each padded to the largest N and K (P = the sum of their P)."""
        N = max(s.X.shape[-2] for s in studies)
        K = max(s.tau.shape[-1] for s in studies)

        def cat(name: str, tail: tuple[int, ...], value: float | bool) -> Tensor:
            return torch.cat([pad_to(getattr(s, name), (s.X.shape[0], *tail), value) for s in studies])

        d = studies[0].X.shape[-1]
        return cls(cat("X", (N, d), 0.0), cat("tau", (N, K), 1.0), cat("y", (N, K), 0.0), cat("mask", (N, K), False),
                   cat("trials", (N,), False), torch.cat([s.y_mean for s in studies]),
                   torch.cat([s.y_std for s in studies]))

    @property
    def n_obs(self) -> Tensor:
        """(P,) number of reports of each study."""
        return self.mask.sum((-2, -1))


def _unpack(theta: Tensor, d: int) -> tuple[Tensor, ...]:
    """Lengthscales (..., d) and the seven positive scalars, each (..., 1, 1, 1)."""
    ls = theta[..., :d].exp()
    rest = theta[..., d:].exp()
    return (ls, *(rest[..., j, None, None, None] for j in range(_N_EXTRA)))


def _decay(tau_sum: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """``(β / (τ_sum + β))^α``, elementwise with broadcasting."""
    return torch.exp(alpha * (beta.log() - (tau_sum + beta).log()))


@dataclass(frozen=True)
class _Parts:
    """The factors that the likelihood and the posterior share (leading dims ``...``, then P)."""

    logdet: Tensor  # (..., P) log|K| of all observations
    quad: Tensor  # (..., P) y^T K^-1 y
    Lz: Tensor  # (..., P, N+1, N+1) Cholesky factor of the prior covariance of z
    LB: Tensor  # (..., P, N+1, N+1) Cholesky factor of I + Lz^T H Lz
    c: Tensor  # (..., P, N+1) A^T C^-1 y
    ok: Tensor  # (..., P) bool, every Cholesky succeeded


def curve_blocks(theta: Tensor, tau: Tensor, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each trial's own factor: ``G = [1, φ, y, k(., 1)]^T C^-1 [1, φ, y, k(., 1)]``.

    ``C = s_g k_decay(τ, τ) + σ² I`` is the covariance of trial n's reports
    given z; ``k(., 1)`` their covariance with ``g_n(1)``. Padded reports
    (``mask`` False) get an identity block and zero rows, so they count for
    nothing: a trial without reports has ``G = 0``.

    Args:
        theta: (..., P, D), one row per study; tau, y: (P, B, K) step
            fractions and standardised values of B trials per study; mask:
            (P, B, K) bool. (A single study may drop P from all of them.)

    Returns:
        G (..., P, B, 4, 4), log|C| (..., P, B), ok (..., P, B) (the Cholesky succeeded).
    """
    d = theta.shape[-1] - _N_EXTRA
    _, _, s_g, noise, alpha, beta, alpha_m, beta_m = _unpack(theta, d)
    K = tau.shape[-1]
    m = mask.to(theta.dtype)  # (P, B, K)
    eye_k = torch.eye(K, dtype=theta.dtype)
    C = s_g * _decay(tau.unsqueeze(-1) + tau.unsqueeze(-2), alpha, beta) + noise * eye_k  # (..., P, B, K, K)
    C = torch.where(mask.unsqueeze(-1) & mask.unsqueeze(-2), C, eye_k)
    L, info = torch.linalg.cholesky_ex(C)
    phi = (_decay(tau, alpha_m[..., 0], beta_m[..., 0]) - _decay(torch.ones_like(tau), alpha_m[..., 0],
                                                                beta_m[..., 0])) * m  # (..., P, B, K)
    k_end = s_g[..., 0] * _decay(tau + 1.0, alpha[..., 0], beta[..., 0]) * m  # (..., P, B, K)
    rhs = torch.stack(torch.broadcast_tensors(m, phi, y * m, k_end), dim=-1)  # (..., P, B, K, 4)
    W = torch.linalg.solve_triangular(L, rhs, upper=False)  # L^-1 rhs (cholesky_solve is slow on CPU)
    G = (W.unsqueeze(-1) * W.unsqueeze(-2)).sum(-3)  # (..., P, B, 4, 4), a reduction whose order ignores B
    logdet = 2.0 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return G, logdet, info == 0


def _global(theta: Tensor, X: Tensor, G: Tensor, trials: Tensor) -> _Parts:
    """Combine the trials' factors G (..., P, N, 4, 4) with the prior of z over configurations X (P, N, d).

    A padded trial (``trials`` (P, N) False) is a latent of unit variance
    independent of the others; it has no reports (G = 0), so it changes nothing.
    """
    N, d = X.shape[-2:]
    ls, s_f = _unpack(theta, d)[:2]
    eye_n = torch.eye(N, dtype=theta.dtype)
    Kf = _C0 + s_f[..., 0] * kernel_matrix(X, X, ls, ()) + _JITTER * eye_n  # (..., P, N, N)
    if not bool(trials.all()):  # (no padding: no where, whose backward would change the fit's last bits)
        Kf = torch.where(trials.unsqueeze(-1) & trials.unsqueeze(-2), Kf, eye_n)
    zeros_col = torch.zeros(*Kf.shape[:-1], 1, dtype=theta.dtype)
    Sz = torch.cat([torch.cat([Kf, zeros_col], -1),
                    torch.cat([zeros_col.transpose(-1, -2), torch.full_like(zeros_col[..., :1, :], _S_A)], -1)], -2)
    Lz, info_z = torch.linalg.cholesky_ex(Sz)  # (..., P, N+1, N+1)
    u, v, w = G[..., 0, 0], G[..., 0, 1], G[..., 1, 1]  # (..., P, N)
    H = torch.cat([torch.cat([torch.diag_embed(u), v.unsqueeze(-1)], -1),
                   torch.cat([v, w.sum(-1, keepdim=True)], -1).unsqueeze(-2)], -2)  # (..., P, N+1, N+1) A^T C^-1 A
    B = torch.eye(N + 1, dtype=theta.dtype) + Lz.transpose(-1, -2) @ H @ Lz
    LB, info_b = torch.linalg.cholesky_ex(B)
    c = torch.cat([G[..., 0, 2], G[..., 1, 2].sum(-1, keepdim=True)], -1)  # (..., P, N+1)
    h = torch.linalg.solve_triangular(LB, (Lz.transpose(-1, -2) @ c.unsqueeze(-1)), upper=False).squeeze(-1)
    quad = G[..., 2, 2].sum(-1) - h.pow(2).sum(-1)
    logdet = 2.0 * LB.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return _Parts(logdet, quad, Lz, LB, c, (info_z == 0) & (info_b == 0))


def _log_prior(theta: Tensor, priors: GPPriors, d: int) -> Tensor:
    """(...,) log density of theta (Gaussian in log space; the lengthscales' is BoTorch's)."""
    loc = torch.cat([priors.loc[:d], torch.tensor(_PRIOR_LOC, dtype=theta.dtype)])
    scale = torch.cat([priors.scale[:d], torch.tensor(_PRIOR_SCALE, dtype=theta.dtype)])
    return (-0.5 * ((theta - loc) / scale).pow(2)).sum(-1)


def neg_log_posterior(theta: Tensor, data: CurveData) -> Tensor:
    """(..., P) ``(-log p(y | theta) - log p(theta)) / n`` of each study at theta (..., P, D); +inf where a Cholesky fails."""
    d = data.X.shape[-1]
    G, logdet_c, ok_c = curve_blocks(theta, data.tau, data.y, data.mask)
    parts = _global(theta, data.X, G, data.trials)
    n = data.n_obs.clamp_min(1).to(theta.dtype)  # (P,)
    nll = 0.5 * (parts.quad + parts.logdet + logdet_c.sum(-1) + n * math.log(2 * math.pi))
    loss = (nll - _log_prior(theta, GPPriors.for_dim(d, data.X), d)) / n
    ok = parts.ok & ok_c.all(-1) & loss.isfinite()
    return torch.where(ok, loss, torch.full_like(loss, math.inf))


def _bounds(d: int, priors: GPPriors) -> tuple[Tensor, Tensor]:
    lower = torch.tensor([math.log(priors.min_lengthscale)] * d + [math.log(v) for v in _LOWER], dtype=torch.float64)
    upper = torch.tensor([math.log(1e3)] * d + [math.log(v) for v in _UPPER], dtype=torch.float64)
    return lower, upper


def fit_theta(data: CurveData, *, max_iter: int = _MAX_ITER) -> tuple[Tensor, Tensor]:
    """MAP hyperparameters of each study, from the prior modes (deterministic: no warm start).

    The P studies are independent problems of one batched L-BFGS-B.

    Returns:
        theta (P, D); ok (P,) bool, False where the likelihood is not finite
        at the starting point (that study's theta is meaningless).
    """
    P, d = data.X.shape[0], data.X.shape[-1]
    priors = GPPriors.for_dim(d, data.X)
    theta0 = torch.cat([priors.mode_theta[:d], torch.tensor(_PRIOR_LOC, dtype=torch.float64)])
    lower, upper = _bounds(d, priors)
    theta0 = theta0.clamp(lower, upper).expand(P, -1).clone()  # (P, D)
    result = minimize_lbfgsb(lambda th: neg_log_posterior(th, data), theta0, lower, upper,
                             max_iter=max_iter, pgtol=1e-4, ftol=1e-8, n_steps=8, max_step=4.0)
    return result.x, result.f.isfinite()  # f stays inf only where the start was not finite


def predict_from_blocks(theta: Tensor, X: Tensor, G: Tensor, trials: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Standardised posterior mean and std of each trial's latent value at ``τ = 1``.

    Args:
        theta: (P, D); X: (P, N, d); trials: (P, N) bool, a real trial;
            G: (..., P, N, 4, 4) the trials' factors of :func:`curve_blocks`
            at ``theta``, with any leading batch dims (one conditioning set
            each, sharing X).

    Returns:
        mean, std (..., P, N) (meaningless for padded trials); ok (..., P)
        bool, False where a covariance could not be factored.
    """
    p = _global(theta, X, G, trials)
    N, d = X.shape[-2:]
    s_g, alpha, beta = (v[..., 0, 0] for v in itemgetter(2, 4, 5)(_unpack(theta, d)))  # (P, 1) each
    S = torch.linalg.solve_triangular(p.LB, p.Lz.transpose(-1, -2), upper=False)  # (..., P, N+1, N+1) LB^-1 Lz^T
    cov_z = S.transpose(-1, -2) @ S  # (..., P, N+1, N+1) posterior covariance of z
    mean_z = (cov_z @ p.c.unsqueeze(-1)).squeeze(-1)  # (..., P, N+1)
    coef_f = 1.0 - G[..., 0, 3]  # (..., P, N) weight of f_n in the prediction
    coef_a = -G[..., 1, 3]  # (..., P, N) weight of a
    mean = coef_f * mean_z[..., :N] + coef_a * mean_z[..., N:] + G[..., 2, 3]
    v_end = s_g * _decay(torch.tensor(2.0, dtype=theta.dtype), alpha, beta)  # (P, 1) prior var of g_n(1)
    var = (coef_f.pow(2) * cov_z.diagonal(dim1=-2, dim2=-1)[..., :N] + 2 * coef_f * coef_a * cov_z[..., :N, N]
           + coef_a.pow(2) * cov_z[..., N, N:] + (v_end - G[..., 3, 3]))
    return mean, var.clamp_min(1e-12).sqrt(), p.ok


@dataclass(frozen=True)
class FreezeThaw:
    """The posterior of each trial's value at ``max_step`` under fixed hyperparameters.

    Attributes:
        mean, std: (P, N) posterior of the latent value at ``τ = 1``, in value units.
    """

    mean: Tensor
    std: Tensor

    @classmethod
    def condition(cls, theta: Tensor, data: CurveData) -> FreezeThaw:
        """Condition on every report in ``data`` at ``theta`` (P, D).

        Raises:
            FitError: if a covariance cannot be factored.
        """
        with torch.no_grad():
            G, _, ok = curve_blocks(theta, data.tau, data.y, data.mask)
            mean, std, ok_global = predict_from_blocks(theta, data.X, G, data.trials)
        if not bool(ok.all() & ok_global.all()):
            raise FitError("the freeze-thaw curve model's covariance is not positive definite")
        return cls(mean * data.y_std[:, None] + data.y_mean[:, None], std * data.y_std[:, None])
