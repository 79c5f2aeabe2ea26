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

import torch
from torch import Tensor

from gpbo.early_stopping.freeze_thaw import CurveData, curve_blocks, predict_from_blocks

__all__ = ["tail_scale", "tail_scales", "upper_tail_scale"]


def tail_scales(z: Tensor, real: Tensor) -> Tensor:
    """``max(1, sqrt(2 mean max(z, 0)²))`` over the ``real`` entries of each row of z (P, n); (P,)."""
    count = real.sum(-1).clamp_min(1).to(z.dtype)
    tail = torch.where(real, z.clamp_min(0.0), 0.0).pow(2).sum(-1)
    return (2.0 * tail / count).sqrt().clamp_min(1.0)


def tail_scale(z: Tensor) -> float:
    """`tail_scales` of one set of standardised errors z (n,): 1 for a calibrated Gaussian."""
    return float(tail_scales(z.unsqueeze(0), torch.ones_like(z, dtype=torch.bool).unsqueeze(0))[0])


def upper_tail_scale(theta: Tensor, data: CurveData, fraction: Tensor) -> tuple[Tensor, Tensor]:
    """The scale ``k(τ) >= 1`` for the curve model's predictive std, for P studies at once.

    Args:
        theta: (P, D) each study's hyperparameters.
        data: the P studies' complete trials (n of them, padded); each
            trial's last real report is its value at ``τ = 1``.
        fraction: (P,) each study's decision step fraction ``τ``; a trial's
            prefix is its reports at ``τ' <= τ``.

    Returns:
        k (P,), 1.0 for a study with fewer than 3 trials; ok (P,) bool, False
        where a covariance could not be factored (that k is meaningless).
    """
    P, n = data.trials.shape
    with torch.no_grad():
        G_full, _, ok_full = curve_blocks(theta, data.tau, data.y, data.mask)  # (P, n, 4, 4)
        prefix = data.mask & (data.tau <= fraction[:, None, None])  # (P, n, K)
        G_prefix, _, ok_prefix = curve_blocks(theta, data.tau, data.y, prefix)  # (P, n, 4, 4)
        rows = torch.arange(n)
        G = G_full.expand(n, P, n, 4, 4).clone()  # (n, P, n, 4, 4): batch c holds trial c's prefix
        G[rows, :, rows] = G_prefix.transpose(0, 1)
        mean, std, ok = predict_from_blocks(theta, data.X, G, data.trials)  # (n, P, n), ok (n, P)
        last = data.mask.to(torch.int64).cumsum(-1).argmax(-1, keepdim=True)  # (P, n, 1) each trial's last report
        y_end = data.y.gather(-1, last).squeeze(-1)  # (P, n)
        z = (y_end - mean.diagonal(dim1=0, dim2=2)) / std.diagonal(dim1=0, dim2=2)  # (P, n)
        k = torch.where(data.trials.sum(-1) >= 3, tail_scales(z, data.trials), 1.0)
    return k, ok_full.all(-1) & ok_prefix.all(-1) & ok.all(0)
