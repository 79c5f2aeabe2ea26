"""Matérn-5/2 ARD kernel with categorical (indicator-distance) dimensions.

The kernel is the same as BoTorch's ``get_covar_module_with_dim_scaled_prior(
use_rbf_kernel=False)``, a GPyTorch ``MaternKernel(nu=2.5)`` with one
lengthscale per dimension, extended to categorical dimensions the way
Optuna's ``_gp`` does: on a categorical dimension the squared distance is
``1[x != x'] / lengthscale**2`` (a Hamming-type distance). Encoded categorical
values are level indices scaled to [0, 1], so only equality matters.

It is written as a plain function rather than called through a GPyTorch
module because GPyTorch's lazy-tensor dispatch costs milliseconds per call at
small n, and the fit and the acquisition ascent call the kernel hundreds of
times per suggestion (benchmarks/RESULTS.md, "Suggestion latency").
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

_SQRT5 = math.sqrt(5.0)
_MIN_SQ_DIST = 1e-30  # keeps d sqrt(r2) finite at r2 = 0


def scaled_sq_dist(
    x1: Tensor, x2: Tensor, lengthscale: Tensor, categorical: tuple[int, ...]
) -> Tensor:
    """Squared ARD distance, with indicator distance on categorical dims.

    Args:
        x1: (..., P, a, d) points.
        x2: (..., P, b, d) points (leading dims broadcast against ``x1``).
        lengthscale: (..., P, d) positive lengthscales.
        categorical: encoded dims compared by equality only.

    Returns:
        (..., P, a, b) squared scaled distances, clamped at zero.
    """
    inv_ls = lengthscale.reciprocal().unsqueeze(-2)  # (..., P, 1, d)
    if categorical:
        inv_ls_cont = inv_ls * continuous_mask(categorical, x1.shape[-1], x1.dtype, x1.device)
        s1, s2 = x1 * inv_ls_cont, x2 * inv_ls_cont  # categorical coordinates zeroed
    else:
        s1, s2 = x1 * inv_ls, x2 * inv_ls
    sq = (
        s1.pow(2).sum(-1, keepdim=True)
        + s2.pow(2).sum(-1).unsqueeze(-2)
        - 2.0 * s1 @ s2.transpose(-1, -2)
    )  # (..., P, a, b)
    if categorical:
        cat = dim_index(categorical, x1.device)
        differ = x1[..., cat].unsqueeze(-2) != x2[..., cat].unsqueeze(-3)  # (..., P, a, b, c)
        weights = inv_ls[..., cat].pow(2).unsqueeze(-2)  # (..., P, 1, 1, c)
        sq = sq + (differ.to(x1.dtype) * weights).sum(-1)
    return sq.clamp_min(0.0)


@functools.lru_cache(maxsize=64)
def continuous_mask(categorical: tuple[int, ...], d: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(d,)`` 1.0 on continuous dims, 0.0 on ``categorical`` ones (cached).

    Cached, like :func:`dim_index`, so that the acquisition ascent neither copies
    from the host nor syncs per call (boolean-mask indexing would), and can be
    replayed from a CUDA graph (:mod:`gpbo.optim.graphed`).
    """
    mask = torch.ones(d, dtype=dtype)
    mask[list(categorical)] = 0.0
    return mask.to(device)


@functools.lru_cache(maxsize=64)
def dim_index(dims: tuple[int, ...], device: torch.device) -> Tensor:
    """``(c,)`` int64 index tensor of ``dims`` on ``device`` (cached: no host copy per call)."""
    return torch.tensor(dims, dtype=torch.int64).to(device)


def matern52(sq_dist: Tensor) -> Tensor:
    """Matérn-5/2 correlation ``(1 + √5 r + 5 r²/3) exp(-√5 r)`` of ``r² = sq_dist``.

    Args:
        sq_dist: (...) squared scaled distances.

    Returns:
        (...) correlations in (0, 1].
    """
    r = sq_dist.clamp_min(_MIN_SQ_DIST).sqrt()
    return (1.0 + _SQRT5 * r + (5.0 / 3.0) * sq_dist) * torch.exp(-_SQRT5 * r)


def matern52_dsq(sq_dist: Tensor) -> Tensor:
    """Derivative of :func:`matern52` w.r.t. ``r² = sq_dist``: ``-(5/6)(1 + √5 r) exp(-√5 r)``.

    Args:
        sq_dist: (...) squared scaled distances.

    Returns:
        (...) derivatives, finite at r = 0.
    """
    r = sq_dist.clamp_min(_MIN_SQ_DIST).sqrt()
    return -(5.0 / 6.0) * (1.0 + _SQRT5 * r) * torch.exp(-_SQRT5 * r)


def kernel_matrix(
    x1: Tensor, x2: Tensor, lengthscale: Tensor, categorical: tuple[int, ...]
) -> Tensor:
    """Matérn-5/2 ARD covariance (unit outputscale) between two point sets.

    Args:
        x1: (..., P, a, d); x2: (..., P, b, d); lengthscale: (..., P, d).
        categorical: encoded dims compared by equality only.

    Returns:
        (..., P, a, b) covariance matrix.
    """
    return matern52(scaled_sq_dist(x1, x2, lengthscale, categorical))
