"""Exact-GP posterior mean and variance at single points, with a closed-form gradient.

The acquisition ascent evaluates the posterior at one point per (restart,
problem) some thirty times per suggestion, and autograd's backward pass
through the kernel and the two matmuls costs about twice the forward pass at
these sizes. The gradient has a short closed form (for the model's kernel
``k(r²)`` of :mod:`gpbo.models.kernel`, ``r² = Σ_j (x_j - x_ij)² / ℓ_j²``):

``d mean / dx = Σ_i alpha_i dk_i/dx``, ``d var / dx = -2 Σ_i (K⁻¹k)_i dk_i/dx``,
``dk_i/dx_j = k'(r_i²) · 2 (x_j - x_ij) / ℓ_j²``, zero on categorical dims
(the indicator distance is piecewise constant).

Checked against autograd through :func:`gpbo.models.kernel.kernel_matrix` in
tests/models/test_pointwise.py.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from gpbo.models.kernel import Kernel, continuous_mask, scaled_sq_dist
from gpbo.models.per_problem import fold, unfold


def point_moments(
    X: Tensor, X_train: Tensor, lengthscale: Tensor, alpha: Tensor, chol_inv: Tensor,
    categorical: tuple[int, ...], kernel: Kernel,
) -> tuple[Tensor, Tensor]:
    """Posterior mean and variance (standardised units) at single points.

    Args:
        X: (..., P, 1, d) points.
        X_train: (P, n, d); lengthscale: (P, d); alpha: (P, n) ``K⁻¹y``;
        chol_inv: (P, n, n) inverse Cholesky factor of ``K + noise I``.
        categorical: encoded dims with the indicator distance.
        kernel: the model's correlation of the squared scaled distance.

    Returns:
        mean (..., P, 1) and variance (..., P, 1), differentiable w.r.t. X.
    """
    # one (M, n) @ (n, n) product per problem, see gpbo.models.per_problem
    mean, var = _PointMoments.apply(
        fold(X), X_train, lengthscale, alpha, chol_inv, categorical, kernel
    )  # (P, M) each
    lead = X.shape[:-3]
    return unfold(mean.unsqueeze(-1), lead, 1).squeeze(-1), unfold(var.unsqueeze(-1), lead, 1).squeeze(-1)


class _PointMoments(torch.autograd.Function):
    """Mean and variance at (P, M, d) points, each row one point: (P, M) each."""

    @staticmethod
    def forward(
        ctx: Any, X: Tensor, X_train: Tensor, ls: Tensor, alpha: Tensor, chol_inv: Tensor,
        categorical: tuple[int, ...], kernel: Kernel,
    ) -> tuple[Tensor, Tensor]:
        sq = scaled_sq_dist(X, X_train, ls, categorical)  # (P, M, n)
        k = kernel(sq)
        mean = (k @ alpha.unsqueeze(-1)).squeeze(-1)  # (P, M)
        v = k @ chol_inv.transpose(-1, -2)  # (P, M, n)
        var = 1.0 - v.pow(2).sum(-1)  # (P, M)
        ctx.save_for_backward(X, X_train, ls, alpha, chol_inv, sq, v)
        ctx.categorical, ctx.kernel = categorical, kernel
        return mean, var

    @staticmethod
    def backward(ctx: Any, g_mean: Tensor, g_var: Tensor) -> tuple[Tensor | None, ...]:
        X, X_train, ls, alpha, chol_inv, sq, v = ctx.saved_tensors
        kinv_k = v @ chol_inv  # (P, M, n)
        d_k = g_mean.unsqueeze(-1) * alpha.unsqueeze(-2) - 2.0 * g_var.unsqueeze(-1) * kinv_k
        c = d_k * ctx.kernel.dsq(sq)  # dL/d(r²), (P, M, n)
        grad = 2.0 * (c.sum(-1, keepdim=True) * X - c @ X_train) / ls.pow(2).unsqueeze(-2)  # (P, M, d)
        if ctx.categorical:
            grad = grad * continuous_mask(ctx.categorical, X.shape[-1], X.dtype, X.device)
        return grad, None, None, None, None, None, None


Outer = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
"""``(mean, var) (..., P) -> (value, d value / d mean, d value / d var)``, each (..., P)."""


def point_value_and_grad(
    X: Tensor, X_train: Tensor, lengthscale: Tensor, alpha: Tensor, chol_inv: Tensor,
    categorical: tuple[int, ...], kernel: Kernel, outer: Outer, y_mean: Tensor, y_std: Tensor,
) -> tuple[Tensor, Tensor]:
    """A function of the posterior moments at single points and its gradient, fused.

    The acquisition ascent's hot path without autograd: one forward pass, and
    the chain rule through ``outer`` in closed form (``d mean / dx`` and
    ``d var / dx`` as in the module docstring, never formed separately:
    ``outer``'s two partials weight one kernel-derivative contraction).

    Args:
        X: (..., P, 1, d) points.
        X_train, lengthscale, alpha, chol_inv, categorical, kernel: as in :func:`point_moments`.
        outer: maps the mean and variance in Y units (``y_std * m + y_mean``,
            ``y_std² v``) to the value and its two partial derivatives.
        y_mean, y_std: (P,) the outcome standardisation.

    Returns:
        value (..., P) and its gradient (..., P, 1, d), no autograd graph.
    """
    with torch.no_grad():
        Xf = fold(X)  # (P, M, d)
        sq = scaled_sq_dist(Xf, X_train, lengthscale, categorical)  # (P, M, n)
        k = kernel(sq)
        mean = (k @ alpha.unsqueeze(-1)).squeeze(-1)  # (P, M)
        v = k @ chol_inv.transpose(-1, -2)  # (P, M, n)
        var = 1.0 - v.pow(2).sum(-1)  # (P, M)
        s = y_std.unsqueeze(-1)  # (P, 1)
        lead = X.shape[:-3]
        value, d_mean, d_var = outer(_unfold(mean * s + y_mean.unsqueeze(-1), lead), _unfold(var * s.pow(2), lead))
        d_mean, d_var = _fold(d_mean) * s, _fold(d_var) * s.pow(2)  # (P, M), w.r.t. the standardised moments
        # dL/dk_i = d_mean alpha_i - 2 d_var (K⁻¹k)_i; times dk/d(r²)
        c = (d_mean.unsqueeze(-1) * alpha.unsqueeze(-2) - (2.0 * d_var).unsqueeze(-1) * (v @ chol_inv))
        c = c * kernel.dsq(sq)  # (P, M, n)
        grad = 2.0 * (c.sum(-1, keepdim=True) * Xf - c @ X_train) / lengthscale.pow(2).unsqueeze(-2)  # (P, M, d)
        if categorical:
            grad = grad * continuous_mask(categorical, X.shape[-1], X.dtype, X.device)
        return value, unfold(grad, lead, 1)


def _unfold(t: Tensor, lead: torch.Size) -> Tensor:
    """(P, M) -> (..., P)."""
    return unfold(t.unsqueeze(-1), lead, 1).view(*lead, t.shape[0])


def _fold(t: Tensor) -> Tensor:
    """(..., P) -> (P, M)."""
    return fold(t.unsqueeze(-1).unsqueeze(-1)).squeeze(-1)
