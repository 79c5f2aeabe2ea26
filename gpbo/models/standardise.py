"""Per-problem outcome standardisation of the GP models, and the constant-outcome test.

Both surrogates (:class:`gpbo.models.exact.ExactGP`, :class:`gpbo.models.variational.SVGP`)
are fitted to ``Y_train = (Y - y_mean) / y_std``. ``y_std`` is the sample
standard deviation (unbiased, as BoTorch's ``Standardize``) and ``y_mean``,
the GP's constant prior mean, is chosen by ``prior_mean``:

- ``"worst"`` (default): the worst observation (the smallest Y: the engine
  maximises). Far from the data the posterior then reverts to the worst value
  seen rather than to a typical one, so the acquisition stops paying for the
  box's corners and faces merely for being unexplored (De Ath, Fieldsend and
  Everson, GECCO 2020, "What do you mean? The role of the mean function in
  Bayesian optimisation"; docs/decisions/0003-prior-mean-at-worst.md).
- ``"average"``: the mean observation (BoTorch's ``Standardize``).

A problem whose outcomes are all equal (to a relative 1e-9,
:func:`constant_rows`) gets ``y_std = 1``; the output warp
(:mod:`gpbo.models.warping`) uses the same test.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gpbo.errors import FitError
from gpbo.validation import check_choice

__all__ = ["PRIOR_MEANS", "constant_rows", "standardisation", "standardise"]

PRIOR_MEANS = ("worst", "average")


def constant_rows(mean: Tensor, std: Tensor) -> Tensor:
    """True where a row's outcomes are constant: ``std <= 1e-9 |mean| + tiny``.

    Args:
        mean, std: (...) mean and standard deviation of each row (any shape, broadcast).

    Returns:
        (...) bool.
    """
    tiny = torch.finfo(std.dtype).tiny
    return std <= 1e-9 * mean.abs().clamp_min(tiny) + tiny


def standardisation(Y: Tensor, prior_mean: str = "worst") -> tuple[Tensor, Tensor]:
    """Per-problem prior mean and scale of outcomes Y (P, n).

    Args:
        Y: (P, n) finite outcomes.
        prior_mean: ``"worst"`` (the smallest outcome) or ``"average"``.

    Returns:
        ``y_mean`` (P,) and ``y_std`` (P,), the sample std or 1 for a constant problem.

    Raises:
        InvalidArgumentError: for an unknown ``prior_mean``.
    """
    check_choice("prior_mean", prior_mean, PRIOR_MEANS)
    mean = Y.mean(-1)
    std = Y.std(-1) if Y.shape[-1] > 1 else torch.zeros_like(mean)  # unbiased, as BoTorch
    std = torch.where(constant_rows(mean, std), torch.ones_like(std), std)
    return (Y.min(-1).values if prior_mean == "worst" else mean), std


def standardise(Y: Tensor, prior_mean: str = "worst") -> tuple[Tensor, Tensor, Tensor]:
    """``(Y_train, y_mean, y_std)``: Y (P, n) standardised by :func:`standardisation`.

    Raises:
        FitError: if the standardised outcomes are not finite (the outcomes
            are not, e.g. after an output warp that overflowed, or they span
            more than the dtype can represent), so that no GP can be fitted.
    """
    y_mean, y_std = standardisation(Y, prior_mean)
    Y_train = (Y - y_mean.unsqueeze(-1)) / y_std.unsqueeze(-1)  # (P, n)
    bad = ~Y_train.isfinite().all(-1)  # (P,)
    if bool(bad.any()):  # one host check per fit
        problems = bad.nonzero().flatten().tolist()[:10]
        if not bool(Y[bad].isfinite().all()):
            raise FitError(f"the outcomes given to the GP of problem(s) {problems} are not finite (NaN or inf)")
        raise FitError(
            f"the standardised outcomes of problem(s) {problems} are not finite: their range "
            f"(min {Y[bad].min().item():.3g}, max {Y[bad].max().item():.3g}) overflows {Y.dtype}; "
            "no GP can be fitted to them (rescale the objective)"
        )
    return Y_train, y_mean, y_std
