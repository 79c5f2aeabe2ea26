"""Monotone output warping: a batched Yeo-Johnson transform of the outcomes.

Objectives such as Rosenbrock or a training loss that diverges in part of the
space have heavy tails: a few bad values, orders of magnitude away from the
rest, dominate the standardised outcomes, and a GP fitted to them learns a
huge noise or a tiny lengthscale. Warping the outcomes first with a power
transform fixes that (HEBO's finding: Cowen-Rivers et al., 2022, "HEBO:
Pushing the limits of sample-efficient hyperparameter optimisation", JAIR 74).

The transform, per problem (P independent ones, outcomes to be *maximised*):

    y' = y, or y with its far-out values pulled in:     (chosen, see below)
         lo - s log(1 + (lo - y) / s)     y < lo
         hi + s log(1 + (y - hi) / s)     y > hi
    z = (y' - mean) / std                               standardise
    psi(z; lam) = ((1 + z)^lam - 1) / lam              z >= 0
                = -((1 - z)^(2 - lam) - 1) / (2 - lam)  z <  0
    (the lam = 0 and lam = 2 branches are log(1 + z) and -log(1 - z))

(Yeo and Johnson, 2000, Biometrika 87(4)), with lam chosen per problem by
maximising the Gaussian profile log-likelihood on a grid,

    ll(lam) = -n/2 log var(psi(z; lam)) + (lam - 1) sum sign(z) log(1 + |z|).

lam is searched in [-1, 3] (step 0.05). A one-sided search, lam in [1, 3]
(compress only the bad tail, never the good one), was measured too and not
adopted (docs/decisions/0002-output-warp-yeo-johnson.md).

**Far-out outcomes.** With mean and std alone, one diverged outcome sets
the scale: -1e6 among outcomes in [-1, 0] leaves the others within ~1e-6 of
each other, which no power transform separates again. lo and hi are Tukey's
far-out fences, the quartiles -/+ 3 s, with s the interquartile range (the
std where over half the outcomes tie); beyond them outcomes are pulled in
logarithmically. Whether to pull is decided per problem by the same
likelihood: the best ll of each version, in y's units (plus the
standardisation's Jacobian, -n log std, and for the pulled version the
pull's, -sum log(1 + excess / s)); the more likely version is warped. So a
tail the power transform models well is left alone, and a divergence of
many orders of magnitude is pulled in. Pulling in always, and fences at
10 IQR instead of 3, were measured and not adopted
(docs/decisions/0012-warp-fences-at-3-iqr.md).

The map is strictly increasing, so the maximiser, the ranking of the
observations and the incumbent are unchanged; the engine fits and runs the
acquisition on the warped values.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gpbo.models.standardise import constant_rows

WARPS = ("yeo-johnson", "none")
LAM_MIN, LAM_MAX, LAM_STEP = -1.0, 3.0, 0.05
FENCE = 3.0  # default fences: Tukey's far-out ones, the quartiles -/+ 3 interquartile ranges


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
    """Per-problem lam (P,) in [lam_min, lam_max] for outcomes Y (P, n) as given, by profile likelihood on a grid.

    A problem with fewer than 3 observations or constant outcomes gets lam = 1.
    """
    return _profile_fit(Y, lam_min, lam_max)[1]


def warp_outcomes(
    Y: Tensor, *, fence: float | None = FENCE, lam_min: float = LAM_MIN, lam_max: float = LAM_MAX
) -> Tensor:
    """Y (P, n) -> warped outcomes (P, n), increasing in Y per problem.

    Per problem, the outcomes are used as they are or with those beyond the
    fences pulled in, whichever the fitted model makes more likely.

    Args:
        Y: (P, n) outcomes.
        fence: the fences are the quartiles -/+ ``fence`` interquartile ranges
            (``gpbo.Settings.warp_fence``); None pulls nothing in: the
            outcomes are warped as they are.
        lam_min, lam_max: range of the Yeo-Johnson lam grid.
    """
    if fence is None:
        _, lam, z = _profile_fit(Y, lam_min, lam_max)  # (P,), (P, n)
        return yeo_johnson(z, lam.unsqueeze(-1))
    pulled, log_jac = pull_in_far_outcomes(Y, fence)  # (P, n), (P,)
    ll, lam, z = _profile_fit(torch.stack([Y, pulled]), lam_min, lam_max)  # (2, P), (2, P), (2, P, n)
    use = ll[1] + log_jac > ll[0]  # (P,)
    return yeo_johnson(torch.where(use.unsqueeze(-1), z[1], z[0]), torch.where(use, lam[1], lam[0]).unsqueeze(-1))


def pull_in_far_outcomes(Y: Tensor, fence: float = FENCE) -> tuple[Tensor, Tensor]:
    """Y (P, n) -> (Y', log_jac (P,)): the outcomes beyond the fences pulled in logarithmically.

    The fences are the quartiles -/+ ``fence`` interquartile ranges (by
    default Tukey's far-out fences).

    Y' is increasing in Y and equal to it within the fences; ``log_jac`` is
    the sum over outcomes of log dY'/dY, for comparing likelihoods with Y's.
    """
    q1, q3, s = _fences(Y)
    return _pull(Y, q1, q3, s, fence)


def warp_outcomes_at(
    Y: Tensor, at: Tensor, *, fence: float | None = FENCE, lam_min: float = LAM_MIN, lam_max: float = LAM_MAX
) -> tuple[Tensor, Tensor]:
    """The map of `warp_outcomes`, fitted on Y (P, n) alone, applied to Y and to ``at`` (P, k).

    For values that must move with the outcomes: a hypervolume reference
    point, a constraint's threshold. Y and ``at`` go through the same
    elementwise operations, so equal values stay equal and the order of the
    values of a row is kept (the map is increasing).

    Returns:
        (warped Y (P, n), warped at (P, k)).
    """
    n = Y.shape[-1]
    both = torch.cat([Y, at], -1)  # (P, n + k)
    if fence is None:
        _, lam, _ = _profile_fit(Y, lam_min, lam_max)  # (P,)
        base, source = Y, both
    else:
        q1, q3, s = _fences(Y)
        pulled, log_jac = _pull(Y, q1, q3, s, fence)
        ll, lams, _ = _profile_fit(torch.stack([Y, pulled]), lam_min, lam_max)  # (2, P)
        use = ll[1] + log_jac > ll[0]  # (P,) as warp_outcomes decides
        lam = torch.where(use, lams[1], lams[0])
        base = torch.where(use.unsqueeze(-1), pulled, Y)
        source = torch.where(use.unsqueeze(-1), _pull(both, q1, q3, s, fence)[0], both)
    mean = base.mean(-1, keepdim=True)
    std = base.std(-1, keepdim=True, correction=0) if n > 1 else torch.zeros_like(mean)
    std = torch.where(constant_rows(mean, std), 1.0, std)
    warped = yeo_johnson((source - mean) / std, lam.unsqueeze(-1))  # (P, n + k)
    return warped[..., :n], warped[..., n:]


def _fences(Y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(q1, q3, s), each (P, 1): the quartiles of Y (P, n) and its interquartile range (the std where they tie)."""
    quartiles = torch.tensor([0.25, 0.75], dtype=Y.dtype, device=Y.device)
    q1, q3 = torch.quantile(Y, quartiles, dim=-1, keepdim=True)  # (P, 1) each
    std = Y.std(-1, keepdim=True, correction=0) if Y.shape[-1] > 1 else torch.zeros_like(q1)
    s = torch.where(q3 > q1, q3 - q1, std).clamp_min(torch.finfo(Y.dtype).tiny)  # (P, 1)
    return q1, q3, s


def _pull(Y: Tensor, q1: Tensor, q3: Tensor, s: Tensor, fence: float) -> tuple[Tensor, Tensor]:
    """Values Y (P, m) beyond the fences of (q1, q3, s) pulled in; and the log Jacobian (P,)."""
    below = (q1 - fence * s - Y).clamp_min(0) / s  # (P, m) distance beyond a fence, in units of s
    above = (Y - q3 - fence * s).clamp_min(0) / s
    pulled = Y + s * (below - below.log1p()) - s * (above - above.log1p())
    return pulled, -(below.log1p() + above.log1p()).sum(-1)


def _profile_fit(Y: Tensor, lam_min: float, lam_max: float) -> tuple[Tensor, Tensor, Tensor]:
    """(ll (...,), lam (...,), z (..., n)) for outcomes Y (..., n), one fit per row.

    ll is the best Yeo-Johnson profile log-likelihood on the lam grid and lam
    where it is reached; z is Y standardised. ll is in Y's own units (the
    standardisation's Jacobian, -n log std, included), so that two versions
    of the outcomes can be compared.
    """
    n = Y.shape[-1]
    z, std = _standardise(Y)  # (..., n), (...,)
    grid = torch.arange(lam_min, lam_max + LAM_STEP / 2, LAM_STEP, dtype=Y.dtype, device=Y.device)  # (L,)
    psi = yeo_johnson(z.unsqueeze(-2), grid.unsqueeze(-1))  # (..., L, n)
    var = psi.var(-1, correction=0).clamp_min(torch.finfo(Y.dtype).tiny)  # (..., L)
    jac = (z.sign() * z.abs().log1p()).sum(-1, keepdim=True)  # (..., 1)
    best, at = (-0.5 * n * var.log() + (grid - 1.0) * jac).max(-1)  # (...,)
    degenerate = (z.abs().amax(-1) == 0) | (n < 3)
    return best - n * std.log(), torch.where(degenerate, torch.ones_like(best), grid[at]), z


def _standardise(Y: Tensor) -> tuple[Tensor, Tensor]:
    """(z, std): z = (Y - mean) / std per row of Y (..., n), std (...,); a constant row maps to zeros (std 1)."""
    mean = Y.mean(-1, keepdim=True)
    std = Y.std(-1, keepdim=True, correction=0) if Y.shape[-1] > 1 else torch.zeros_like(mean)
    constant = constant_rows(mean, std)
    std = torch.where(constant, 1.0, std)
    return torch.where(constant, torch.zeros_like(Y), (Y - mean) / std), std.squeeze(-1)
