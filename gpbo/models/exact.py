"""Batched exact GP surrogate over P independent problems.

Model (per problem, on standardised outcomes):
``y = f(x) + eps``, ``f ~ GP(0, k)``, ``eps ~ N(0, noise)``, with ``k`` an
ARD kernel of :mod:`gpbo.models.kernel` held by the model (Matérn-5/2 by
default; unit outputscale, as in BoTorch's SingleTaskGP since 0.12).

Standardisation ``Y_train = (Y - y_mean) / y_std``: ``y_std`` is the sample
standard deviation, and ``y_mean``, the GP's constant prior mean, is by
default the *worst* observation (the smallest Y: the engine maximises), or
the average (``prior_mean="average"``); see :mod:`gpbo.models.standardise`
and docs/decisions/0003-prior-mean-at-worst.md.

Priors are taken from BoTorch's own factories so they stay in step with it
(Hvarfner et al. 2024, "Vanilla Bayesian optimization performs great in high
dimensions"):

- lengthscale ~ LogNormal(√2 + log(d)/2, √3), bounded below by 0.025;
- noise ~ LogNormal(-4, 1), bounded below by a floor (1e-6 in float64,
  1e-4 in float32).

Hyperparameters ``theta = [log lengthscale (d), log noise]`` are fitted by
MAP with gpbo's batched L-BFGS-B, one independent optimisation per problem,
warm-started from the previous fit. A fit that cannot be recovered (outcomes
whose standardisation overflows, or a covariance matrix that no jitter makes
positive definite) raises :class:`gpbo.errors.FitError`. After the fit the Cholesky factor, its
inverse and ``alpha = K^-1 y`` are cached, so ``posterior`` is two matmuls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gpbo.errors import FitError
from gpbo.models.base import NOISE_FLOOR, StationaryGP, check_noise
from gpbo.models.cross import ExactCross
from gpbo.models.kernel import Kernel, get_kernel, kernel_matrix
from gpbo.models.marginal import GPPriors, neg_log_posterior
from gpbo.models.per_problem import per_problem_matmul
from gpbo.models.pointwise import Outer, point_moments, point_value_and_grad
from gpbo.models.protocol import Posterior
from gpbo.models.standardise import standardise
from gpbo.optim.lbfgsb import minimize_lbfgsb
from gpbo.validation import check_choice

__all__ = ["NOISE_FLOOR", "SOLVER_PATHS", "ExactGP"]

# minimize_lbfgsb's options of each solver path (gpbo.Settings.solver_path): "auto"
# takes the path that suits the device; "accelerator" forces the GPU's (all
# line-search steps in one batched call, "all done" checked every 10
# iterations), so that its search quality can be measured on a CPU.
SOLVER_PATHS: dict[str, dict[str, Any]] = {"auto": {}, "accelerator": {"check_every": 10, "unit_first": False}}
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
class ExactGP(StationaryGP):
    """A fitted batched exact GP. Build it with :meth:`fit` (or :meth:`at_theta`).

    Attributes:
        X_train, Y_train, y_mean, y_std, lengthscale, noise, outputscale,
            categorical, base_kernel: as in :class:`gpbo.models.base.StationaryGP`.
        chol_inv: (P, n, n) inverse Cholesky factor of ``K + diag(point_noise)``.
        alpha: (P, n) ``(K + diag(point_noise))^-1 Y_train``.
        point_noise: (P, n) noise variance of each training point: ``noise``
            for observations, the floor for points added with
            ``condition(..., noiseless=True)`` (kriging-believer fantasies).
    """

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
        kernel: str | Kernel = "matern52",
        noise: str = "learned",
        prior_mean: str = "worst",
        warm_start: ExactGP | Tensor | None = None,
        max_iter: int | None = None,
        solver_path: str = "auto",
    ) -> ExactGP:
        """Fit hyperparameters by MAP and cache the posterior factors.

        Args:
            X: (P, n, d) inputs in [0, 1]^d.
            Y: (P, n) finite outcomes.
            categorical: encoded dims with the indicator distance.
            kernel: a name in :data:`gpbo.models.kernel.KERNELS` or a
                :class:`~gpbo.models.kernel.Kernel`.
            noise: ``"learned"`` or ``"deterministic"`` (fixed at the floor).
            prior_mean: ``"worst"`` or ``"average"`` observation (:mod:`gpbo.models.standardise`).
            warm_start: a previous fit of the same P and d to start from, or
                its ``theta`` (P, d + 1); ignored if the shape does not match.
            max_iter: L-BFGS-B iteration cap; None: 100 from the prior modes,
                20 from a usable warm start.
            solver_path: a key of :data:`SOLVER_PATHS`.

        Raises:
            InvalidArgumentError: for an unknown kernel, noise, prior_mean or solver_path.
            FitError: if no GP can be fitted (see :func:`_build`).
        """
        check_noise("ExactGP.fit", noise)
        base_kernel = get_kernel(kernel)
        solver = SOLVER_PATHS[check_choice("solver_path", solver_path, tuple(SOLVER_PATHS))]
        Y_std, y_mean, y_std = standardise(Y, prior_mean)
        priors = GPPriors.for_dim(X.shape[-1], X)
        theta0, warm = _initial_theta(X, priors, warm_start)
        if max_iter is None:
            max_iter = _MAX_ITER_WARM if warm else _MAX_ITER_COLD
        lower, upper = _theta_bounds(X, noise, priors)
        fixed = torch.zeros_like(theta0, dtype=torch.bool)
        fixed[..., -1] = noise == "deterministic"

        def loss(theta: Tensor) -> Tensor:
            return neg_log_posterior(theta, X, Y_std, categorical, priors, base_kernel)

        result = minimize_lbfgsb(
            loss, theta0.clamp(lower, upper), lower, upper, fixed=fixed,
            max_iter=max_iter, pgtol=1e-3, ftol=1e-7, n_steps=8, max_step=4.0,
            graph=None if X.shape[-2] <= _GRAPH_MAX_N else False, **solver,
        )
        theta = result.x
        point_noise = theta[..., -1:].exp().expand(Y.shape)  # (P, n)
        return _build(X, Y_std, y_mean, y_std, theta, point_noise, categorical, base_kernel)

    @classmethod
    def at_theta(
        cls, X: Tensor, Y: Tensor, theta: Tensor, *, categorical: tuple[int, ...] = (),
        kernel: str | Kernel = "matern52", prior_mean: str = "worst",
    ) -> ExactGP:
        """The exact GP with the given hyperparameters, without a fit.

        Args:
            X: (P, n, d) inputs; Y: (P, n) finite outcomes.
            theta: (P, d + 1) ``[log lengthscale, log noise]`` (standardised units).
            categorical, kernel, prior_mean: as in :meth:`fit`.

        Raises:
            FitError: as :meth:`fit`, e.g. for non-finite ``theta``.
        """
        Y_std, y_mean, y_std = standardise(Y, prior_mean)
        point_noise = theta[..., -1:].exp().expand(Y.shape)  # (P, n)
        return _build(X, Y_std, y_mean, y_std, theta, point_noise, categorical, get_kernel(kernel))

    def posterior(self, X: Tensor) -> Posterior:
        """Joint posterior of the latent f at ``X`` (..., P, q, d), in Y units."""
        ls = self.lengthscale
        if X.shape[-2] == 1:  # the acquisition ascent's hot path: closed-form gradient
            mean, var = point_moments(X, self.X_train, ls, self.alpha, self.chol_inv, self.categorical, self.base_kernel)
            cov = var.unsqueeze(-1)  # (..., P, 1, 1)
        else:
            mean, cov, _ = self.standardised_moments(X)
        return Posterior.from_standardised(mean, cov, self.y_mean, self.y_std)

    def posterior_mean(self, X: Tensor) -> Tensor:
        """(..., P, q) posterior mean at ``X`` (..., P, q, d), in Y units, at O(n) a point
        where `posterior` costs O(n^2) (the `gpbo.models.protocol.MeanOnly` capability)."""
        return self.in_y_units(self._standardised_mean(self.kernel(X, self.X_train)))

    def standardised_moments(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Joint posterior at X (..., P, q, d) in standardised units, and its projection.

        Returns:
            mean (..., P, q), covariance (..., P, q, q) and
            ``V = k(X, X_train) L^-T`` (..., P, q, n), so that
            ``covariance = k(X, X) - V V^T``.
        """
        k_star = self.kernel(X, self.X_train)  # (..., P, q, n)
        k_xx = self.kernel(X, X)  # (..., P, q, q)
        v = per_problem_matmul(k_star, self.chol_inv.transpose(-1, -2))  # (..., P, q, n)
        return self._standardised_mean(k_star), k_xx - v @ v.transpose(-1, -2), v

    def _standardised_mean(self, k_star: Tensor) -> Tensor:
        """(..., P, q) standardised posterior mean from ``k(X, X_train)`` (..., P, q, n)."""
        return per_problem_matmul(k_star, self.alpha.unsqueeze(-1)).squeeze(-1)

    def cross_posterior(self, X_b: Tensor) -> ExactCross:
        """The posterior at new points jointly with the baseline X_b (P, nb, d), its
        projection on the training data computed once (the
        `gpbo.models.protocol.CrossPosterior` capability)."""
        return ExactCross(self, X_b, self.standardised_moments(X_b)[2])

    def point_value_and_grad(self, X: Tensor, outer: Outer) -> tuple[Tensor, Tensor]:
        """``outer(mean, var)`` at single points ``X`` (..., P, 1, d) and its gradient,
        in closed form (the `gpbo.models.protocol.PointValueAndGrad` capability).

        Returns:
            value (..., P) and gradient (..., P, 1, d).
        """
        return point_value_and_grad(
            X, self.X_train, self.lengthscale, self.alpha, self.chol_inv, self.categorical, self.base_kernel,
            outer, self.y_mean, self.y_std,
        )

    def condition(self, X: Tensor, Y: Tensor, *, noiseless: bool = False) -> ExactGP:
        """Add observations (P, k, d), (P, k) in Y units, keeping hyperparameters.

        ``noiseless=True`` gives the new points the noise floor instead of the
        learned noise: a kriging-believer fantasy is believed exactly, so the
        posterior variance there collapses and a batch does not repeat it.
        """
        Y_std = self.standardised(Y)
        return _build(
            torch.cat([self.X_train, X], dim=-2),
            torch.cat([self.Y_train, Y_std], dim=-1),
            self.y_mean, self.y_std, self.theta,
            torch.cat([self.point_noise, self.new_point_noise(Y_std, noiseless)], dim=-1),
            self.categorical, self.base_kernel,
        )


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
    categorical: tuple[int, ...], base_kernel: Kernel,
) -> ExactGP:
    """Cache the factors for ``theta`` (P, d + 1) and ``point_noise`` (P, n), adding jitter where needed.

    Each jitter of ``_JITTERS`` is tried in turn where the factorisation
    fails, then a noise of 1 (a very noisy but valid model).

    Raises:
        FitError: if the covariance is not positive definite even then
            (non-finite hyperparameters or inputs).
    """
    n = X.shape[-2]
    ls, noise = theta[..., :-1].exp(), theta[..., -1].exp()
    eye = torch.eye(n, dtype=X.dtype, device=X.device)
    K = kernel_matrix(X, X, ls, categorical, base_kernel) + torch.diag_embed(point_noise)
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
        L_1, info_1 = torch.linalg.cholesky_ex(K + eye)
        if bool((bad & (info_1 > 0)).any()):
            raise _cholesky_failure(bad & (info_1 > 0), theta, X)
        L = torch.where(bad[..., None, None], L_1, L)
    chol_inv = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)
    alpha = (chol_inv.transpose(-1, -2) @ (chol_inv @ Y_std.unsqueeze(-1))).squeeze(-1)
    return ExactGP(
        X_train=X, Y_train=Y_std, y_mean=y_mean, y_std=y_std,
        lengthscale=ls, noise=noise, outputscale=torch.ones_like(noise),
        categorical=categorical, base_kernel=base_kernel, chol_inv=chol_inv, alpha=alpha, point_noise=point_noise,
    )


def _cholesky_failure(failed: Tensor, theta: Tensor, X: Tensor) -> FitError:
    """The FitError for problems ``failed`` (P,) whose covariance no jitter made positive definite."""
    causes = []
    for what, bad in (
        ("non-finite hyperparameters [log lengthscale, log noise]", ~theta.isfinite().all(-1)),  # (P,)
        ("non-finite inputs", ~X.isfinite().flatten(-2).all(-1)),  # (P,)
    ):
        if bool(bad.any()):
            causes.append(f"{what} in problem(s) {_first(bad)}")
    return FitError(
        f"the GP covariance of problem(s) {_first(failed)} is not positive definite even with jitters "
        f"{_JITTERS} and a noise of 1 ({'; '.join(causes) or 'no non-finite hyperparameter or input found'})"
    )


def _first(mask: Tensor, k: int = 10) -> list[int]:
    """The first ``k`` indices where ``mask`` (P,) is True."""
    return mask.nonzero().flatten().tolist()[:k]
