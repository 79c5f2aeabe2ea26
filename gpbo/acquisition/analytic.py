"""Closed-form one-point acquisitions: LogEI, LogAugmentedEI, LogPI, UCB, PosteriorMean.

All are ``joint = False``: the returned function takes ``X (..., P, 1, d)``
and returns ``(..., P)``. The engine builds q-batches greedily and folds
pending points into the model, so ``ctx.pending`` is not used here.

LogEI and LogPI are computed in log space with BoTorch's numerically careful
helpers (Ament et al. 2023, "Unexpected Improvements to Expected Improvement
for Bayesian Optimization"), so they stay finite with useful gradients far
from the incumbent, where EI itself underflows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import torch
from botorch.acquisition.analytic import _log_ei_helper
from botorch.utils.probability.utils import log_ndtr
from torch import Tensor

from gpbo.acquisition.protocol import AcquisitionContext, AcquisitionFn, check_single_point
from gpbo.errors import InvalidArgumentError
from gpbo.models.protocol import MeanOnly, NoiseAndScale, PointValueAndGrad, noise_variance

__all__ = ["LogEI", "LogAugmentedEI", "LogPI", "UCB", "PosteriorMean", "mean_and_sigma", "effective_best"]

MIN_VARIANCE = 1e-12  # as BoTorch's AnalyticAcquisitionFunction: sigma >= 1e-6
# Observed points per posterior call in effective_best (its ``chunk``
# default): the size of the ascent's raw-sample batch, so its memory
# (chunk x P x n) is no larger.
EFFECTIVE_BEST_CHUNK = 512


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

        def terms(mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            sigma = var.clamp_min(MIN_VARIANCE).sqrt()
            value, d_mean, d_sigma = _log_ei_terms(mean, sigma, best_f.to(mean))
            return value, d_mean, _d_var(d_sigma, sigma, var)

        return with_fused_gradient(ctx, log_ei, terms, "LogEI")


def effective_best(ctx: AcquisitionContext, c: float, *, chunk: int = EFFECTIVE_BEST_CHUNK) -> Tensor:
    """Huang et al.'s effective best: the posterior mean at the observed point
    whose lower bound ``mean - c * sigma`` is highest (maximisation).

    With noise the best observation is biased upwards (the luckiest draw);
    this incumbent is where the model is confident of a good value. Only the
    observations in ``ctx.incumbents`` count (the feasible ones under
    constraints), or all of a problem's where it marks none.

    With more than ``chunk`` observations and a model that gives its mean
    alone (`gpbo.models.protocol.MeanOnly`), the variance is computed only at
    the ``chunk`` points of highest mean: a point outside them has a lower
    bound below its mean, below theirs, so the result is the same whenever
    the best lower bound among them exceeds the ``chunk``-th highest mean
    (otherwise every point is scored). At n = 20,000 on the SVGP this skips
    nearly all of the O(n M^2) variance work.

    Args:
        ctx: acquisition context (``ctx.X`` (P, n, d) the observed points).
        c: weight of the posterior standard deviation (>= 0).
        chunk: observed points per posterior call (bounds the memory; the
            result does not depend on it).

    Returns:
        (P,) incumbent values, no gradient.
    """
    with torch.no_grad():
        at_data = ctx.X.transpose(0, 1).unsqueeze(-2)  # (n, P, 1, d)
        allowed = _incumbent_candidates(ctx)  # (n, P)
        if isinstance(ctx.model, MeanOnly) and at_data.shape[0] > chunk:
            best = _effective_best_among_top_means(ctx, at_data, allowed, c, chunk)
            if best is not None:
                return best
        return _effective_best_among(ctx, at_data, allowed, c, chunk)[0]


def _incumbent_candidates(ctx: AcquisitionContext) -> Tensor:
    """(n, P) bool: ``ctx.incumbents`` transposed, every observation of a problem where it marks none."""
    if ctx.incumbents is None:
        return torch.ones(ctx.X.shape[1], ctx.X.shape[0], dtype=torch.bool, device=ctx.X.device)
    mask = ctx.incumbents.transpose(0, 1)
    return mask | ~mask.any(0, keepdim=True)


def _effective_best_among(
    ctx: AcquisitionContext, points: Tensor, allowed: Tensor, c: float, chunk: int
) -> tuple[Tensor, Tensor]:
    """(P,) mean at the highest ``mean - c * sigma`` among the allowed (k, P) of ``points`` (k, P, 1, d), and (P,) that bound."""
    moments = [mean_and_sigma(ctx, block, "effective_best") for block in points.split(chunk)]
    mean = torch.cat([m for m, _ in moments])  # (k, P)
    lower = (mean - c * torch.cat([s for _, s in moments])).masked_fill(~allowed, -torch.inf)  # (k, P)
    pick = lower.argmax(0, keepdim=True)  # (1, P)
    return mean.gather(0, pick).squeeze(0), lower.gather(0, pick).squeeze(0)


def _effective_best_among_top_means(
    ctx: AcquisitionContext, at_data: Tensor, allowed: Tensor, c: float, k: int
) -> Tensor | None:
    """The effective best among the k allowed observed points (n, P, 1, d) of
    highest mean, or None where a point outside them might have a higher lower bound."""
    model: Any = ctx.model
    means = torch.cat([model.posterior_mean(block) for block in at_data.split(k)]).squeeze(-1)  # (n, P)
    top_means, index = means.masked_fill(~allowed, -torch.inf).topk(k, dim=0)  # (k, P), descending
    points = at_data.gather(0, index[..., None, None].expand(-1, -1, *at_data.shape[-2:]))  # (k, P, 1, d)
    best, bound = _effective_best_among(ctx, points, allowed.gather(0, index), c, k)
    return best if bool((bound > top_means[-1]).all()) else None


class LogAugmentedEI:
    """Log augmented expected improvement for noisy outcomes (Huang, Allen,
    Notz and Zeng 2006, "Global optimization of stochastic black-box systems
    via sequential kriging meta-models", J. Global Optim. 34).

    ``AEI(x) = EI(x; T) * (1 - sigma_eps / sqrt(s(x)^2 + sigma_eps^2))`` with
    ``T`` the :func:`effective_best` (weight ``c``), ``s(x)`` the posterior standard
    deviation and ``sigma_eps^2`` the model's noise variance. The incumbent
    stops a lucky noisy draw from making every well-explored point look
    hopeless (then EI only rewards variance: the box's corners), and the
    factor discounts points whose value the data already pin down to within
    the noise, so repeated evaluations spread out. Without noise both reduce
    to LogEI at the best observation. Computed in log space:
    ``log(1 - r) = log s^2 - log(s^2 + sigma_eps^2) - log1p(r)``,
    ``r = sigma_eps / sqrt(s^2 + sigma_eps^2)``, finite for any s > 0.

    Args:
        c: the incumbent's weight on the posterior standard deviation (>= 0;
            Huang et al.'s 1.0).
        discount: apply the noise discount; False is LogEI from the
            effective best (the ``nodiscount`` ablation of ``benchmarks/ablations.py``).

    Raises:
        InvalidArgumentError: if ``c`` is negative or not finite, ``discount``
            is not a bool, or (when built with the discount) the model lacks
            the NoiseAndScale capability.
    """

    joint = False

    def __init__(self, c: float = 1.0, discount: bool = True) -> None:
        self.c = _nonnegative(c, "LogAugmentedEI c")
        if not isinstance(discount, bool):
            raise InvalidArgumentError(f"LogAugmentedEI discount must be a bool, got {discount!r}")
        self.discount = discount
        self.requires = (NoiseAndScale,) if discount else ()  # the discount needs the noise

    def __repr__(self) -> str:
        return f"LogAugmentedEI(c={self.c})" if self.discount else f"LogAugmentedEI(c={self.c}, discount=False)"

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``."""
        if not self.discount:
            return LogEI()(dataclasses.replace(ctx, best_f=effective_best(ctx, self.c)))
        noise = noise_variance(ctx.model, "LogAugmentedEI")  # (P,); checks NoiseAndScale
        best_f = effective_best(ctx, self.c)  # (P,)

        def log_aei(X: Tensor) -> Tensor:
            mean, sigma = mean_and_sigma(ctx, X, "LogAugmentedEI")
            u = (mean - best_f.to(mean)) / sigma  # (..., P)
            var, eps2 = sigma.pow(2), noise.to(sigma)  # (..., P), (P,)
            total = var + eps2
            log_discount = var.log() - total.log() - torch.log1p((eps2 / total).sqrt())
            return _LogH.apply(u) + sigma.log() + log_discount

        def terms(mean: Tensor, var_in: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            sigma = var_in.clamp_min(MIN_VARIANCE).sqrt()
            value, d_mean, d_sigma = _log_ei_terms(mean, sigma, best_f.to(mean))
            var, eps2 = sigma.pow(2), noise.to(sigma)
            total = var + eps2
            ratio = (eps2 / total).sqrt()
            value = value + (var.log() - total.log() - torch.log1p(ratio))
            # d log_discount / d var = 1/var - 1/total + ratio / (2 (1 + ratio) total)
            d_disc = var.reciprocal() - total.reciprocal() + 0.5 * ratio / ((1.0 + ratio) * total)
            return value, d_mean, _d_var(d_sigma + 2.0 * sigma * d_disc, sigma, var_in)

        return with_fused_gradient(ctx, log_aei, terms, "LogAugmentedEI")


class FusedAcquisitionFn:
    """A one-point acquisition function with a closed-form value-and-gradient.

    Calling it is the plain function (autograd works through it);
    :meth:`value_and_grad` returns the values and their gradients without
    autograd, which the multi-start ascent uses where present
    (docs/decisions/0040-fused-one-point-acquisition-gradient.md).
    """

    def __init__(self, value: AcquisitionFn, value_and_grad: Callable[[Tensor], tuple[Tensor, Tensor]]) -> None:
        self._value = value
        self.value_and_grad = value_and_grad

    def __call__(self, X: Tensor) -> Tensor:
        """``X (..., P, 1, d) -> (..., P)``."""
        return self._value(X)


def with_fused_gradient(
    ctx: AcquisitionContext, value: AcquisitionFn,
    terms: Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]], name: str,
) -> AcquisitionFn:
    """``value`` with a fused value-and-gradient where the model offers one.

    Args:
        ctx: acquisition context.
        value: ``X (..., P, 1, d) -> (..., P)``.
        terms: ``(mean, var) (..., P)`` in Y units ``-> (value, d value/d mean,
            d value/d var)``, the same value as ``value`` computes.
        name: acquisition name for the error message.

    Returns:
        A :class:`FusedAcquisitionFn` if the model has the
        `gpbo.models.protocol.PointValueAndGrad` capability, else ``value``.
    """
    model = ctx.model
    if not isinstance(model, PointValueAndGrad):
        return value

    def value_and_grad(X: Tensor) -> tuple[Tensor, Tensor]:
        check_single_point(X, name)
        return model.point_value_and_grad(X, terms)

    return FusedAcquisitionFn(value, value_and_grad)


def _log_ei_terms(mean: Tensor, sigma: Tensor, best_f: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """LogEI ``log h(u) + log sigma`` and its partials w.r.t. mean and sigma.

    ``d/d mean = r / sigma``, ``d/d sigma = (1 - r u) / sigma``, ``r = h'(u)/h(u)``
    (see :class:`_LogH`).
    """
    u = (mean - best_f) / sigma  # (..., P)
    log_h = _log_ei_helper(u)
    r = torch.exp(log_ndtr(u) - log_h)
    return log_h + sigma.log(), r / sigma, (1.0 - r * u) / sigma


def _d_var(d_sigma: Tensor | float, sigma: Tensor, var: Tensor) -> Tensor:
    """Chain rule through ``sigma = sqrt(max(var, MIN_VARIANCE))``."""
    return torch.where(var >= MIN_VARIANCE, 0.5 * d_sigma / sigma, torch.zeros_like(sigma))


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
        self.beta = _nonnegative(beta, "UCB beta")

    def __repr__(self) -> str:
        return f"UCB(beta={self.beta})"

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``."""
        root_beta = math.sqrt(self.beta)

        def ucb(X: Tensor) -> Tensor:
            mean, sigma = mean_and_sigma(ctx, X, "UCB")
            return mean + root_beta * sigma

        def terms(mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            sigma = var.clamp_min(MIN_VARIANCE).sqrt()
            return mean + root_beta * sigma, torch.ones_like(mean), _d_var(root_beta, sigma, var)

        return with_fused_gradient(ctx, ucb, terms, "UCB")


def _nonnegative(value: object, name: str) -> float:
    """``value`` as a float if it is a finite number >= 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value >= 0
    ):
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class PosteriorMean:
    """The posterior mean (pure exploitation)."""

    joint = False

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``."""

        def posterior_mean(X: Tensor) -> Tensor:
            check_single_point(X, "PosteriorMean")
            return ctx.model.posterior(X).mean.squeeze(-1)

        return posterior_mean
