"""What an early-stopping rule sees and decides.

A rule looks at the learning curves of a study, in the engine's convention
(values to *maximise*; the facade negates a minimised objective), and says
whether one running trial should stop. Rules are stateless between calls:
everything they decide from is in `Curves`, so a resumed study (its curves
come back from storage) decides exactly as the uninterrupted one would.

Shapes: T trials, d encoded dims. ``steps[i]`` and ``values[i]`` are the
reports of trial i in the order they were made (steps strictly increasing).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["Curves", "StoppingRule"]


@dataclass(frozen=True)
class Curves:
    """The learning curves of a study at one moment.

    Attributes:
        X: (T, d) encoded configurations in the unit cube, float64.
        steps: T tensors (k_i,) of reported steps, strictly increasing.
        values: T tensors (k_i,) of reported values, to maximise.
        running: (T,) bool, the trial is still running (may be stopped).
        stopped: (T,) bool, the trial was stopped early.
        max_step: the step at which a trial is complete (full fidelity).
    """

    X: Tensor
    steps: tuple[Tensor, ...]
    values: tuple[Tensor, ...]
    running: Tensor
    stopped: Tensor
    max_step: float

    @property
    def n_trials(self) -> int:
        """T."""
        return self.X.shape[0]

    @functools.cached_property
    def last_reports(self) -> tuple[tuple[float, float] | None, ...]:
        """Each trial's last ``(step, value)``, None for a trial without reports (computed once)."""
        return tuple((float(s[-1]), float(v[-1])) if len(s) else None for s, v in zip(self.steps, self.values))


@runtime_checkable
class StoppingRule(Protocol):
    """Decides whether a running trial should stop, from the curves seen so far."""

    def should_stop(self, curves: Curves, index: int) -> bool:
        """True if trial ``index`` (a running trial with at least one report) should stop now."""
        ...
