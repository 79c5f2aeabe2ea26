"""Batched exact GP surrogate over P independent problems.

Model (per problem, on standardised outcomes):
``y = f(x) + eps``, ``f ~ GP(0, k)``, ``eps ~ N(0, noise)``, with ``k`` the
Matérn-5/2 ARD kernel of :mod:`gpbo.models.kernel` (unit outputscale, as in
BoTorch's SingleTaskGP since 0.12).

Standardisation ``Y_train = (Y - y_mean) / y_std``: ``y_std`` is the sample
standard deviation, and ``y_mean``, the GP's constant prior mean, is the
*worst* observation (the smallest Y: the engine maximises), not the average.
Far from the data the posterior then reverts to the worst value seen rather
than to a typical one, so the acquisition stops paying for the box's corners
and faces merely for being unexplored (De Ath, Fieldsend and Everson, GECCO
2020, "What do you mean? The role of the mean function in Bayesian
optimisation": the worst-observation mean was the best of eight mean
functions on their synthetic problems of 5+ dims). Measured against the
average on both benchmark suites: docs/decisions/0003-prior-mean-at-worst.md.

Priors are taken from BoTorch's own factories so they stay in step with it
(Hvarfner et al. 2024, "Vanilla Bayesian optimization performs great in high
dimensions"):

- lengthscale ~ LogNormal(√2 + log(d)/2, √3), bounded below by 0.025;
- noise ~ LogNormal(-4, 1), bounded below by a floor (1e-6 in float64,
  1e-4 in float32).

Hyperparameters ``theta = [log lengthscale (d), log noise]`` are fitted by
MAP with gpbo's batched L-BFGS-B, one independent optimisation per problem,
warm-started from the previous fit. After the fit the Cholesky factor, its
inverse and ``alpha = K^-1 y`` are cached, so ``posterior`` is two matmuls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gpbo.models.kernel import kernel_matrix
from gpbo.models.marginal import GPPriors, neg_log_posterior
from gpbo.models.per_problem import per_problem_matmul
from gpbo.models.pointwise import point_moments
from gpbo.models.protocol import Posterior
from gpbo.optim.lbfgsb import minimize_lbfgsb

NOISE_FLOOR = {torch.float64: 1e-6, torch.float32: 1e-4}
_MAX_NOISE = 2.0  # standardised units: noise above the signal variance is pointless
_MAX_LENGTHSCALE = 1e3
_JITTERS = (1e-8, 1e-6, 1e-4, 1e-2)
# L-BFGS-B iteration caps of the MAP fit. A batched call runs until its slowest
# element stops, so one straggler sets the cost of every problem's iterations
# (docs/decisions/0006-warm-fit-iteration-cap.md). A warm
# start stops at 20; an element not converged by then continues from its theta
# at the next fit. Per element, so a batched fit still equals the looped fits.
_MAX_ITER_COLD, _MAX_ITER_WARM = 100, 20
# Above this n a fit iteration on a GPU is bound by its O(n^3) kernels, not by
# launches, and capturing it as a CUDA graph (gpbo.optim.graphed) costs a fresh
# memory pool of several GB: at n = 5,000 the captured fit was slower than the
# eager one on an H200 (benchmarks/RESULTS.md, "GPU").
_GRAPH_MAX_N = 2000


@dataclass(frozen=True)
class ExactGP:
    """A fitted batched exact GP. Build it with :meth:`fit`.

    Attributes:
        X_train: (P, n, d) inputs in the unit cube.
        Y_train: (P, n) standardised outcomes.
        y_mean, y_std: (P,) standardisation, ``Y = Y_train * y_std + y_mean``;
            ``y_mean`` is the constant prior mean, the worst observation.
        lengthscale: (P, d); noise: (P,) in standardised units.
        outputscale: (P,) signal variance in standardised units (fixed at 1).
        categorical: encoded dims with the indicator distance.
        chol_inv: (P, n, n) inverse Cholesky factor of ``K + diag(point_noise)``.
        alpha: (P, n) ``(K + diag(point_noise))^-1 Y_train``.
        point_noise: (P, n) noise variance of each training point: ``noise``
            for observations, the floor for points added with
            ``condition(..., noiseless=True)`` (kriging-believer fantasies).
    """

    X_train: Tensor
    Y_train: Tensor
    y_mean: Tensor
    y_std: Tensor
    lengthscale: Tensor
    noise: Tensor
    outputscale: Tensor
    categorical: tuple[int, ...]
    chol_inv: Tensor
    alpha: Tensor
    point_noise: Tensor

    @classmethod
    def fit(
        cls,
        X: Tensor,
        Y: Tensor,
        *,
        categorical: tuple[int, ...] = (),
        noise: str = "learned",
        warm_start: ExactGP | Tensor | None = None,
        max_iter: int | None = None,
    ) -> ExactGP:
        """Fit hyperparameters by MAP and cache the posterior factors.

        Args:
            X: (P, n, d) inputs in [0, 1]^d.
            Y: (P, n) finite outcomes.
            categorical: encoded dims with the indicator distance.
            noise: ``"learned"`` or ``"deterministic"`` (fixed at the floor).
            warm_start: a previous fit of the same P and d to start from, or
                its ``theta`` (P, d + 1); ignored if the shape does not match.
            max_iter: L-BFGS-B iteration cap; None: 100 from the prior modes,
                20 from a usable warm start.
        """
        y_mean, y_std = _standardisation(Y)
        Y_std = (Y - y_mean.unsqueeze(-1)) / y_std.unsqueeze(-1)
        priors = GPPriors.for_dim(X.shape[-1], X)
        theta0, warm = _initial_theta(X, priors, warm_start)
        if max_iter is None:
            max_iter = _MAX_ITER_WARM if warm else _MAX_ITER_COLD
        lower, upper = _theta_bounds(X, noise, priors)
        fixed = torch.zeros_like(theta0, dtype=torch.bool)
        fixed[..., -1] = noise == "deterministic"

        def loss(theta: Tensor) -> Tensor:
            return neg_log_posterior(theta, X, Y_std, categorical, priors)

        result = minimize_lbfgsb(
            loss, theta0.clamp(lower, upper), lower, upper, fixed=fixed,
            max_iter=max_iter, pgtol=1e-3, ftol=1e-7, n_steps=8, max_step=4.0,
            graph=None if X.shape[-2] <= _GRAPH_MAX_N else False,
        )
        theta = result.x
        point_noise = theta[..., -1:].exp().expand(Y.shape)  # (P, n)
        return _build(X, Y_std, y_mean, y_std, theta, point_noise, categorical)

    def posterior(self, X: Tensor) -> Posterior:
        """Joint posterior of the latent f at ``X`` (..., P, q, d), in Y units."""
        ls = self.lengthscale
        if X.shape[-2] == 1:  # the acquisition ascent's hot path: closed-form gradient
            mean, var = point_moments(X, self.X_train, ls, self.alpha, self.chol_inv, self.categorical)
            cov = var.unsqueeze(-1)  # (..., P, 1, 1)
        else:
            k_star = kernel_matrix(X, self.X_train, ls, self.categorical)  # (..., P, q, n)
            k_xx = kernel_matrix(X, X, ls, self.categorical)  # (..., P, q, q)
            mean = per_problem_matmul(k_star, self.alpha.unsqueeze(-1)).squeeze(-1)  # (..., P, q)
            v = per_problem_matmul(k_star, self.chol_inv.transpose(-1, -2))  # (..., P, q, n)
            cov = k_xx - v @ v.transpose(-1, -2)  # (..., P, q, q)
        return Posterior.from_standardised(mean, cov, self.y_mean, self.y_std)

    def kernel(self, X1: Tensor, X2: Tensor) -> Tensor:
        """Prior covariance (standardised units) of (..., P, a, d) and (P, b, d)."""
        return kernel_matrix(X1, X2, self.lengthscale, self.categorical)

    def condition(self, X: Tensor, Y: Tensor, *, noiseless: bool = False) -> ExactGP:
        """Add observations (P, k, d), (P, k) in Y units, keeping hyperparameters.

        ``noiseless=True`` gives the new points the noise floor instead of the
        learned noise: a kriging-believer fantasy is believed exactly, so the
        posterior variance there collapses and a batch does not repeat it.
        """
        Y_std = (Y - self.y_mean.unsqueeze(-1)) / self.y_std.unsqueeze(-1)
        new_noise = torch.full_like(Y_std, NOISE_FLOOR[Y.dtype]) if noiseless else self.noise.unsqueeze(-1).expand_as(Y_std)
        return _build(
            torch.cat([self.X_train, X], dim=-2),
            torch.cat([self.Y_train, Y_std], dim=-1),
            self.y_mean, self.y_std, self.theta,
            torch.cat([self.point_noise, new_noise], dim=-1), self.categorical,
        )

    @property
    def theta(self) -> Tensor:
        """(P, d + 1) raw hyperparameters ``[log lengthscale, log noise]``."""
        return _theta(self.lengthscale, self.noise)


def _standardisation(Y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-problem prior mean (the worst, smallest, observation) and std (P,); a constant problem gets std 1."""
    mean = Y.mean(-1)  # only sets the tolerance of the constant-problem test
    std = Y.std(-1) if Y.shape[-1] > 1 else torch.zeros_like(mean)  # unbiased, as BoTorch
    tiny = torch.finfo(Y.dtype).tiny
    constant = std <= 1e-9 * mean.abs().clamp_min(tiny) + tiny
    return Y.min(-1).values, torch.where(constant, torch.ones_like(std), std)


def _theta(lengthscale: Tensor, noise: Tensor) -> Tensor:
    return torch.cat([lengthscale.log(), noise.log().unsqueeze(-1)], dim=-1)


def _theta_bounds(X: Tensor, noise: str, priors: GPPriors) -> tuple[Tensor, Tensor]:
    """(d + 1,) lower and upper bounds on theta."""
    d = X.shape[-1]
    floor = math.log(NOISE_FLOOR[X.dtype])
    lower = torch.full((d + 1,), math.log(priors.min_lengthscale), dtype=X.dtype, device=X.device)
    upper = torch.full((d + 1,), math.log(_MAX_LENGTHSCALE), dtype=X.dtype, device=X.device)
    lower[-1], upper[-1] = floor, (floor if noise == "deterministic" else math.log(_MAX_NOISE))
    return lower, upper


def _initial_theta(X: Tensor, priors: GPPriors, warm_start: ExactGP | Tensor | None) -> tuple[Tensor, bool]:
    """(P, d + 1) starting point: the warm start if compatible (True), else the prior modes (False)."""
    P, _, d = X.shape
    theta = warm_start.theta if isinstance(warm_start, ExactGP) else warm_start
    if isinstance(theta, Tensor) and theta.shape == (P, d + 1) and bool(theta.isfinite().all()):
        return theta.to(X), True
    return priors.mode_theta.expand(P, d + 1).clone(), False


def _build(
    X: Tensor, Y_std: Tensor, y_mean: Tensor, y_std: Tensor, theta: Tensor, point_noise: Tensor,
    categorical: tuple[int, ...],
) -> ExactGP:
    """Cache the factors for ``theta`` (P, d + 1) and ``point_noise`` (P, n), adding jitter where needed."""
    n = X.shape[-2]
    ls, noise = theta[..., :-1].exp(), theta[..., -1].exp()
    eye = torch.eye(n, dtype=X.dtype, device=X.device)
    K = kernel_matrix(X, X, ls, categorical) + torch.diag_embed(point_noise)
    L, info = torch.linalg.cholesky_ex(K)
    for jitter in _JITTERS:  # one host check per fit, not per iteration
        if not bool((info > 0).any()):
            break
        L_j, info_j = torch.linalg.cholesky_ex(K + jitter * eye)
        failed = info > 0
        L, info = torch.where(failed[..., None, None], L_j, L), torch.where(failed, info_j, info)
        noise = torch.where(failed, noise + jitter, noise)
        point_noise = torch.where(failed.unsqueeze(-1), point_noise + jitter, point_noise)
    if bool((info > 0).any()):  # last resort: a very noisy but valid model
        bad = info > 0
        noise = torch.where(bad, torch.ones_like(noise), noise)
        point_noise = torch.where(bad.unsqueeze(-1), point_noise + 1.0, point_noise)
        L = torch.where(bad[..., None, None], torch.linalg.cholesky(K + eye), L)
    chol_inv = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)
    alpha = (chol_inv.transpose(-1, -2) @ (chol_inv @ Y_std.unsqueeze(-1))).squeeze(-1)
    return ExactGP(
        X_train=X, Y_train=Y_std, y_mean=y_mean, y_std=y_std,
        lengthscale=ls, noise=noise, outputscale=torch.ones_like(noise),
        categorical=categorical, chol_inv=chol_inv, alpha=alpha, point_noise=point_noise,
    )
