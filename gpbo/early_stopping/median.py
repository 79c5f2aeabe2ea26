"""The median stopping rule, with the semantics of Optuna's ``MedianPruner``.

At a report at step t (once t >= ``n_warmup_steps`` and at least
``n_startup_trials`` trials have finished), a trial stops if the best value it
has reported so far is worse than the median of the values that *finished*
trials (not running, not stopped early) reported at exactly step t. Fewer than
``n_min_trials`` such values: it continues. The median interpolates linearly
between the two middle values, as ``numpy.nanpercentile`` does.
"""

from __future__ import annotations

import torch

from gpbo.early_stopping.protocol import Curves
from gpbo.validation import check_int

__all__ = ["Median"]


class Median:
    """Median stopping rule, a `StoppingRule` (Optuna's ``MedianPruner`` defaults).

    Args:
        n_startup_trials: Finished trials needed before any trial stops, >= 0.
        n_warmup_steps: Steps below this never stop, >= 0.
        n_min_trials: Finished trials reporting at the step needed to compare, >= 1.

    Raises:
        InvalidArgumentError: If a parameter is out of range.
    """

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0, n_min_trials: int = 1) -> None:
        self.n_startup_trials = check_int("n_startup_trials", n_startup_trials, 0)
        self.n_warmup_steps = check_int("n_warmup_steps", n_warmup_steps, 0)
        self.n_min_trials = check_int("n_min_trials", n_min_trials, 1)

    def __repr__(self) -> str:
        return (f"Median(n_startup_trials={self.n_startup_trials}, n_warmup_steps={self.n_warmup_steps}, "
                f"n_min_trials={self.n_min_trials})")

    def should_stop(self, curves: Curves, index: int) -> bool:
        """True if the trial's best value so far is below the finished trials' median at its last step."""
        steps, values = curves.steps[index], curves.values[index]
        if len(steps) == 0:
            return False
        step = float(steps[-1])
        finished = (~curves.running & ~curves.stopped).nonzero().flatten().tolist()
        if step < self.n_warmup_steps or len(finished) < self.n_startup_trials:
            return False
        at = [curves.values[j][curves.steps[j].to(torch.float64) == step] for j in finished if j != index]
        peers = torch.cat([v[:1].to(torch.float64) for v in at] + [torch.empty(0, dtype=torch.float64)])
        if len(peers) < self.n_min_trials:
            return False
        return bool(values.to(torch.float64).max() < torch.quantile(peers, 0.5))
