"""Monotone output warping: a batched Yeo-Johnson transform of the outcomes.

Objectives such as Rosenbrock or a training loss that diverges in part of the
space have heavy tails: a few bad values, orders of magnitude away from the
rest, dominate the standardised outcomes, and a GP fitted to them learns a
huge noise or a tiny lengthscale. Warping the outcomes first with a power
transform fixes that (HEBO's finding: Cowen-Rivers et al., 2022, "HEBO:
Pushing the limits of sample-efficient hyperparameter optimisation", JAIR 74).

The transform, per problem (P independent ones, outcomes to be *maximised*):

    z = (Y - mean) / std                               standardise
    psi(z; lam) = ((1 + z)^lam - 1) / lam              z >= 0
                = -((1 - z)^(2 - lam) - 1) / (2 - lam)  z <  0
    (the lam = 0 and lam = 2 branches are log(1 + z) and -log(1 - z))

(Yeo and Johnson, 2000, Biometrika 87(4)), with lam chosen per problem by
maximising the Gaussian profile log-likelihood on a grid,

    ll(lam) = -n/2 log var(psi(z; lam)) + (lam - 1) sum sign(z) log(1 + |z|).

lam is searched in [-1, 3] (step 0.05). A one-sided search, lam in [1, 3]
(compress only the bad tail, never the good one), was measured too: over
the 10 synthetic problems at 6 seeds each it was better on 4 and worse on 5
(Hartmann6-noisy: median log10 regret -1.16 against -1.97), so the plain
maximum-likelihood fit stays (benchmarks/RESULTS.md, "Output warping").

The map is strictly increasing, so the maximiser, the ranking of the
observations and the incumbent are unchanged; the engine fits and runs the
acquisition on the warped values.
"""

from __future__ import annotations

import torch
from torch import Tensor

WARPS = ("yeo-johnson", "none")
LAM_MIN, LAM_MAX, LAM_STEP = -1.0, 3.0, 0.05


def yeo_johnson(z: Tensor, lam: Tensor) -> Tensor:
    """psi(z; lam) for z (..., n) and lam broadcastable to (..., 1)."""
    pos = z >= 0
    zp = torch.where(pos, z, torch.zeros_like(z)).log1p()  # log(1 + z) on the z >= 0 side
    zn = torch.where(pos, torch.zeros_like(z), -z).log1p()  # log(1 - z) on the z < 0 side
    a, b = lam, 2.0 - lam
    small_a, small_b = a.abs() < 1e-8, b.abs() < 1e-8
    up = torch.where(small_a, zp, torch.expm1(a * zp) / torch.where(small_a, 1.0, a))
    down = torch.where(small_b, -zn, -torch.expm1(b * zn) / torch.where(small_b, 1.0, b))
    return torch.where(pos, up, down)


def fit_yeo_johnson(Y: Tensor, lam_min: float = LAM_MIN, lam_max: float = LAM_MAX) -> Tensor:
    """Per-problem lam (P,) in [lam_min, lam_max] for outcomes Y (P, n), by profile likelihood on a grid.

    A problem with fewer than 3 observations or constant outcomes gets lam = 1.
    """
    P, n = Y.shape
    z = _standardise(Y)  # (P, n)
    grid = torch.arange(lam_min, lam_max + LAM_STEP / 2, LAM_STEP, dtype=Y.dtype, device=Y.device)  # (L,)
    psi = yeo_johnson(z.unsqueeze(-2), grid.unsqueeze(-1))  # (P, L, n)
    var = psi.var(-1, correction=0).clamp_min(torch.finfo(Y.dtype).tiny)  # (P, L)
    jac = (z.sign() * z.abs().log1p()).sum(-1, keepdim=True)  # (P, 1)
    ll = -0.5 * n * var.log() + (grid - 1.0) * jac  # (P, L)
    lam = grid[ll.argmax(-1)]  # (P,)
    degenerate = (z.abs().amax(-1) == 0) | (n < 3)
    return torch.where(degenerate, torch.ones_like(lam), lam)


def warp_outcomes(Y: Tensor, lam_min: float = LAM_MIN, lam_max: float = LAM_MAX) -> Tensor:
    """Y (P, n) -> warped outcomes (P, n), increasing in Y per problem."""
    lam = fit_yeo_johnson(Y, lam_min, lam_max)
    return yeo_johnson(_standardise(Y), lam.unsqueeze(-1))


def _standardise(Y: Tensor) -> Tensor:
    """(Y - mean) / std per problem; a constant problem maps to zeros."""
    mean = Y.mean(-1, keepdim=True)
    std = Y.std(-1, keepdim=True, correction=0) if Y.shape[-1] > 1 else torch.zeros_like(mean)
    tiny = torch.finfo(Y.dtype).tiny
    constant = std <= 1e-9 * mean.abs().clamp_min(tiny) + tiny
    return torch.where(constant, torch.zeros_like(Y), (Y - mean) / torch.where(constant, 1.0, std))
