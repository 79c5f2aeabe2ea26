"""How far off the curve model was on the complete curves: a scale for its predictive std.

The stopping rule acts on the upper tail of a trial's predicted final value,
``P(y(max_step) > y*)``, so a model that is too sure of itself stops trials
that would have won. Measured on LCBench (development tasks 7593, 3945,
34539, 126026; 20 complete curves, the others predicted from their first 6,
10 or 20 epochs) the freeze-thaw model's standardised errors had an upper-tail
scale of 1.5 to 4, not 1 (docs/decisions/0049-recalibrated-stopping.md).

:func:`upper_tail_scale` measures it on the curves the study already has,
as a leave-one-out backtest of the prediction the rule is about to make: each
complete trial ``c`` is predicted from its own reports up to the decision's
step fraction ``τ`` and the other complete trials' whole curves, and

    k(τ) = max(1, sqrt(2 · mean_c max(z_c, 0)²)),   z_c = (y_c(1) - μ_c(τ)) / σ_c(τ),

which is 1 for a calibrated Gaussian (``2 E[max(z, 0)²] = 1``) and counts
only the errors that matter for stopping: a final better than predicted. The
rule divides its z-score by ``k``. This is the recalibration of regression
uncertainty by held-out errors (Kuleshov, Fenner & Ermon 2018, "Accurate
Uncertainties for Deep Learning Using Calibrated Regression"), reduced to one
scale per step fraction.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gpbo.early_stopping.freeze_thaw import curve_blocks, predict_from_blocks
from gpbo.errors import FitError

__all__ = ["tail_scale", "upper_tail_scale"]


def tail_scale(z: Tensor) -> float:
    """``max(1, sqrt(2 mean max(z, 0)²))`` of standardised errors z (n,): 1 for a calibrated Gaussian."""
    return max(1.0, math.sqrt(2.0 * float(z.clamp_min(0.0).pow(2).mean())))


def upper_tail_scale(theta: Tensor, X: Tensor, tau: Tensor, y: Tensor, mask: Tensor, fraction: float) -> float:
    """The scale ``k(τ) >= 1`` for the curve model's predictive std at step fraction ``fraction``.

    Args:
        theta: (D,) the curve model's hyperparameters.
        X: (n, d) the complete trials' configurations.
        tau, y, mask: (n, K) their padded step fractions, standardised values
            and real-report mask; each trial's last real report is its value
            at ``τ = 1``.
        fraction: the decision's step fraction ``τ``; a trial's prefix is its
            reports at ``τ' <= fraction``.

    Returns:
        k; 1.0 with fewer than 3 trials.

    Raises:
        FitError: if a covariance cannot be factored.
    """
    n = X.shape[0]
    if n < 3:
        return 1.0
    with torch.no_grad():
        G_full, _, ok_full = curve_blocks(theta, tau, y, mask)  # (n, 4, 4)
        G_prefix, _, ok_prefix = curve_blocks(theta, tau, y, mask & (tau <= fraction))  # (n, 4, 4)
        if not bool(ok_full.all() & ok_prefix.all()):
            raise FitError("a trial's curve covariance is not positive definite")
        rows = torch.arange(n)
        G = G_full.expand(n, n, 4, 4).clone()  # (n, n, 4, 4): batch c holds trial c's prefix
        G[rows, rows] = G_prefix
        mean, std = predict_from_blocks(theta, X, G)  # (n, n)
        last = mask.to(torch.int64).cumsum(-1).argmax(-1)  # (n,) index of each trial's last real report
        z = (y[rows, last] - mean.diagonal()) / std.diagonal()  # (n,)
    return tail_scale(z)
