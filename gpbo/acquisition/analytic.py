"""Closed-form one-point acquisitions: LogEI, LogPI, UCB, PosteriorMean.

All are ``joint = False``: the returned function takes ``X (..., P, 1, d)``
and returns ``(..., P)``. The engine builds q-batches greedily and folds
pending points into the model, so ``ctx.pending`` is not used here.

LogEI and LogPI are computed in log space with BoTorch's numerically careful
helpers (Ament et al. 2023, "Unexpected Improvements to Expected Improvement
for Bayesian Optimization"), so they stay finite with useful gradients far
from the incumbent, where EI itself underflows.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from botorch.acquisition.analytic import _log_ei_helper
from botorch.utils.probability.utils import log_ndtr
from torch import Tensor

from gpbo.acquisition.protocol import AcquisitionContext, AcquisitionFn, check_single_point
from gpbo.errors import InvalidArgumentError

__all__ = ["LogEI", "LogPI", "UCB", "PosteriorMean", "mean_and_sigma"]

MIN_VARIANCE = 1e-12  # as BoTorch's AnalyticAcquisitionFunction: sigma >= 1e-6


def mean_and_sigma(ctx: AcquisitionContext, X: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Posterior mean and standard deviation at single points.

    Args:
        ctx: acquisition context.
        X: (..., P, 1, d) points.
        name: acquisition name for the error message.

    Returns:
        mean (..., P) and sigma (..., P), sigma >= sqrt(MIN_VARIANCE).
    """
    check_single_point(X, name)
    post = ctx.model.posterior(X)
    mean = post.mean.squeeze(-1)  # (..., P)
    sigma = post.variance.squeeze(-1).clamp_min(MIN_VARIANCE).sqrt()  # (..., P)
    return mean, sigma


class LogEI:
    """Log expected improvement over ``ctx.best_f``.

    ``log E[max(f(x) - best_f, 0)] = log(sigma) + log h(u)``,
    ``u = (mean - best_f) / sigma``, ``h(u) = phi(u) + u Phi(u)``.
    """

    joint = False

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``."""
        best_f = ctx.best_f  # (P,)

        def log_ei(X: Tensor) -> Tensor:
            mean, sigma = mean_and_sigma(ctx, X, "LogEI")
            u = (mean - best_f.to(mean)) / sigma  # (..., P)
            return _LogH.apply(u) + sigma.log()

        return log_ei


class _LogH(torch.autograd.Function):
    """``log h(u)``, ``h(u) = phi(u) + u Phi(u)``, with a closed-form gradient.

    The value is BoTorch's ``_log_ei_helper``. Its derivative is
    ``h'(u) / h(u) = Phi(u) / h(u) = exp(log Phi(u) - log h(u))``; using it
    replaces the backward pass through the helper's two masked branches (about
    a third of an acquisition call's cost at restart-sized batches).
    """

    @staticmethod
    def forward(ctx: Any, u: Tensor) -> Tensor:
        log_h = _log_ei_helper(u)
        ctx.save_for_backward(u, log_h)
        return log_h

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> Tensor:
        u, log_h = ctx.saved_tensors
        return grad_out * torch.exp(log_ndtr(u) - log_h)


class LogPI:
    """Log probability of improvement: ``log Phi((mean - best_f) / sigma)``."""

    joint = False

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``."""
        best_f = ctx.best_f  # (P,)

        def log_pi(X: Tensor) -> Tensor:
            mean, sigma = mean_and_sigma(ctx, X, "LogPI")
            return log_ndtr((mean - best_f.to(mean)) / sigma)

        return log_pi


class UCB:
    """Upper confidence bound ``mean + sqrt(beta) * sigma``.

    Args:
        beta: exploration weight (>= 0) on the variance, as in BoTorch's
            ``UpperConfidenceBound``. The default 2.0 puts the bound about
            1.41 standard deviations above the mean; larger values explore
            more.

    Raises:
        InvalidArgumentError: if ``beta`` is negative or not finite.
    """

    joint = False

    def __init__(self, beta: float = 2.0) -> None:
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (
            math.isfinite(beta) and beta >= 0
        ):
            raise InvalidArgumentError(f"UCB beta must be a finite number >= 0, got {beta!r}")
        self.beta = float(beta)

    def __repr__(self) -> str:
        return f"UCB(beta={self.beta})"

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``."""
        root_beta = math.sqrt(self.beta)

        def ucb(X: Tensor) -> Tensor:
            mean, sigma = mean_and_sigma(ctx, X, "UCB")
            return mean + root_beta * sigma

        return ucb


class PosteriorMean:
    """The posterior mean (pure exploitation)."""

    joint = False

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``."""

        def posterior_mean(X: Tensor) -> Tensor:
            check_single_point(X, "PosteriorMean")
            return ctx.model.posterior(X).mean.squeeze(-1)

        return posterior_mean
