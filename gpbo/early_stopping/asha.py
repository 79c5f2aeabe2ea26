"""Asynchronous successive halving (ASHA; Li et al. 2020, "A system for massively
parallel hyperparameter tuning", MLSys).

Rungs lie at ``min_step * eta ** (early_stopping_rate + k)`` for k = 0, 1, ...
below ``max_step``. When a trial's report first reaches a rung (its first
step ``>=`` the rung), its value there is compared with the values recorded at
that rung so far (its own included: each trial's value at its first step
``>=`` the rung). It continues only if it is in the top ``1 / eta`` of them; as
in Optuna's ``SuccessiveHalvingPruner``, while fewer than ``eta`` values are
recorded it continues only if it is the best. Between rungs it never stops.
Promotion is implicit: a trial that is not stopped goes on to the next rung,
so the rule is asynchronous (no trial waits for a rung to fill).

It decides as Optuna's ``SuccessiveHalvingPruner`` (tested against it), with
two differences: a rung at ``max_step`` is skipped (nothing is left to
save there), and a trial stopped by a report that passed several rungs at
once still counts at the higher ones (its value there is known), where
Optuna records it only at the rung that stopped it.

Defaults follow Ray Tune's ``ASHAScheduler`` and Optuna's
``SuccessiveHalvingPruner`` (``eta=4``, first rung at step 1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gpbo.early_stopping.protocol import Curves
from gpbo.validation import check_int, check_real

__all__ = ["ASHA", "rung_steps", "stops_at_rungs"]


class ASHA:
    """Asynchronous successive halving, a `StoppingRule`.

    Args:
        min_step: Step of the first rung (Ray's ``grace_period``, Optuna's
            ``min_resource``), > 0.
        eta: Reduction factor: the top ``1 / eta`` of each rung continue, > 1.
        early_stopping_rate: Rungs skipped at the bottom (Optuna's
            ``min_early_stopping_rate``), >= 0.

    Raises:
        InvalidArgumentError: If a parameter is out of range.
    """

    def __init__(self, min_step: float = 1.0, eta: float = 4.0, early_stopping_rate: int = 0) -> None:
        self.min_step = check_real("min_step", min_step)
        self.eta = check_real("eta", eta, low=1.0)
        self.early_stopping_rate = check_int("early_stopping_rate", early_stopping_rate, 0)

    def __repr__(self) -> str:
        return f"ASHA(min_step={self.min_step:g}, eta={self.eta:g}, early_stopping_rate={self.early_stopping_rate})"

    def should_stop(self, curves: Curves, index: int) -> bool:
        """True if trial ``index`` just reached a rung outside that rung's top ``1 / eta``."""
        rungs = rung_steps(self.min_step, self.eta, self.early_stopping_rate, curves.max_step, curves.steps[index])
        return stops_at_rungs(curves, index, range(curves.n_trials), rungs, self.eta)


def rung_steps(min_step: float, eta: float, rate: int, max_step: float, steps: Tensor) -> list[float]:
    """The rungs below ``max_step`` that reach no further than the trial's last step (increasing)."""
    if len(steps) == 0:
        return []
    last, out, k = float(steps[-1]), [], rate
    while True:
        rung = min_step * eta**k
        if rung >= max_step or rung > last:
            return out
        out.append(rung)
        k += 1


def _value_at(steps: Tensor, values: Tensor, rung: float) -> float | None:
    """The value at the first step ``>= rung``; None if the curve does not reach it."""
    at = int(torch.searchsorted(steps.to(torch.float64), torch.tensor([rung], dtype=torch.float64)))
    return None if at == len(steps) else float(values[at])


def stops_at_rungs(curves: Curves, index: int, peers: range | list[int], rungs: list[float], eta: float) -> bool:
    """ASHA's decision for trial ``index`` at the rungs its last report just reached.

    Args:
        curves: The study's curves (values to maximise).
        index: The trial deciding.
        peers: The trials whose values compete at a rung (its own included).
        rungs: The rungs up to the trial's last step.
        eta: Reduction factor.
    """
    steps, values = curves.steps[index], curves.values[index]
    previous = float(steps[-2]) if len(steps) > 1 else -math.inf
    for rung in rungs:
        if rung <= previous:  # reached at an earlier report: decided then
            continue
        mine = _value_at(steps, values, rung)
        others = [_value_at(curves.steps[j], curves.values[j], rung) for j in peers if j != index]
        competing = sorted([v for v in others if v is not None] + [mine], reverse=True)
        k = max(len(competing) // int(eta) if eta == int(eta) else math.floor(len(competing) / eta), 1)
        if mine < competing[k - 1]:
            return True
    return False
