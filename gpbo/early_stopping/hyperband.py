"""Hyperband with asynchronous brackets (Li et al. 2018; Optuna's ``HyperbandPruner``).

Several ASHA brackets run side by side; bracket s starts its rungs ``s`` rungs
up (``early_stopping_rate = s``), so low brackets stop aggressively and high
ones let trials run longer. There are ``floor(log_eta(max_step / min_step)) + 1``
brackets. Each trial is assigned to one deterministically from its index, as
Optuna does: ``crc32(str(index))`` modulo the total allocation budget, with
bracket s getting ``ceil(n * eta ** (n - 1 - s) / (n - s))`` shares (more
trials to the aggressive brackets). Trials compete only within their bracket.

Defaults follow Optuna's ``HyperbandPruner`` (``min_step=1``, ``eta=3``).
"""

from __future__ import annotations

import binascii
import math

from gpbo.early_stopping.asha import rung_steps, stops_at_rungs
from gpbo.early_stopping.protocol import Curves
from gpbo.validation import check_real

__all__ = ["Hyperband"]


class Hyperband:
    """Hyperband over asynchronous successive-halving brackets, a `StoppingRule`.

    Args:
        min_step: Step of the first rung of the most aggressive bracket, > 0.
        eta: Reduction factor, > 1.

    Raises:
        InvalidArgumentError: If a parameter is out of range.
    """

    def __init__(self, min_step: float = 1.0, eta: float = 3.0) -> None:
        self.min_step = check_real("min_step", min_step)
        self.eta = check_real("eta", eta, low=1.0)

    def __repr__(self) -> str:
        return f"Hyperband(min_step={self.min_step:g}, eta={self.eta:g})"

    def n_brackets(self, max_step: float) -> int:
        """Number of brackets for a study whose trials end at ``max_step`` (1 if it is unbounded)."""
        if not math.isfinite(max_step) or max_step <= self.min_step:
            return 1
        return int(math.floor(math.log(max_step / self.min_step, self.eta) + 1e-9)) + 1

    def bracket(self, index: int, max_step: float) -> int:
        """The bracket of trial ``index`` (deterministic)."""
        n = self.n_brackets(max_step)
        budgets = [math.ceil(n * self.eta ** (n - 1 - s) / (n - s)) for s in range(n)]
        left = binascii.crc32(str(index).encode()) % sum(budgets)
        for s, budget in enumerate(budgets):
            left -= budget
            if left < 0:
                return s
        return n - 1  # not reached

    def should_stop(self, curves: Curves, index: int) -> bool:
        """ASHA's decision within the trial's bracket."""
        s = self.bracket(index, curves.max_step)
        peers = [j for j in range(curves.n_trials) if self.bracket(j, curves.max_step) == s]
        rungs = rung_steps(self.min_step, self.eta, s, curves.max_step, curves.steps[index])
        return stops_at_rungs(curves, index, peers, rungs, self.eta)
