"""The trial handle that `minimize` passes to an objective taking two parameters.

::

    def train(params, trial):
        model = build(params)
        for epoch in range(1, 53):
            val_acc = train_one_epoch(model)
            trial.report(val_acc, epoch)      # value, step
            if trial.should_stop():
                break
        return val_acc

`minimize` inspects the objective's signature once: it passes a `TrialHandle`
as the second argument when the objective has at least two positional
parameters and the second has no default (``def train(params, trial)``);
otherwise it calls ``fn(params)`` as always. The handle talks to the
optimizer in the driver process (it is thread-safe), so it works inline, with
``n_workers`` threads and with thread-based executors. On
`gpbo.integrations.ray_executor.RayExecutor` the task gets a picklable proxy
whose calls the driver's handle answers (`gpbo.integrations.ray_relay`). The
handle itself cannot be pickled, so an objective that takes it cannot run on
a process pool (a clear error says so before the study starts).

**Resumed trials.** A trial handed out again after a crash, or continued
after it was stopped early (``gpbo.Settings(resume_stopped=True)``), keeps
the curve that was recorded before (`TrialHandle.steps`). An objective that restarts its
training replays those steps: reports at steps up to the stored last step
are checked (numbers, increasing) but not recorded again, so nothing is
stored twice; one that restores a checkpoint may start after
`TrialHandle.last_step`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, NoReturn

from gpbo.errors import InvalidArgumentError, InvalidTrialError
from gpbo.fidelity import steps_used
from gpbo.optimizer import Optimizer
from gpbo.trial import Trial, as_real

__all__ = ["StepBudget", "TrialHandle", "takes_trial"]


def takes_trial(fn: Callable[..., Any]) -> bool:
    """True if ``fn`` takes a trial handle: two positional parameters, the second without a default."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 and positional[1].default is inspect.Parameter.empty


class StepBudget:
    """The steps a `minimize` call may spend: spent once its trials' `steps_used` reach ``limit``."""

    def __init__(self, opt: Optimizer, limit: float) -> None:
        self._opt, self.limit = opt, limit
        self._ids: dict[int, None] = {}  # the trials of this call, each once (a continued trial comes back)

    def add(self, trial_id: int) -> None:
        """Counts trial ``trial_id`` as one of this call's (once, however often it is handed out)."""
        self._ids[trial_id] = None

    def used(self) -> float:
        """Steps used so far by this call's trials."""
        trials = self._opt.trials
        return steps_used([trials[i] for i in self._ids], self._opt.max_step)

    def spent(self) -> bool:
        """True once the budget is used up."""
        return self.used() >= self.limit


class TrialHandle:
    """A running trial as its objective sees it: ``report(value, step)`` and ``should_stop()``.

    Attributes:
        id: The trial id.
        params: Its parameters (a plain dict copy).
    """

    def __init__(self, opt: Optimizer, trial: Trial, budget: StepBudget | None = None) -> None:
        self._opt, self._budget = opt, budget
        self.id, self.params = trial.id, dict(trial.params)
        self._replay_until = trial.last_step  # a resumed or continued trial's recorded curve ends here
        self._last = -math.inf  # the last step reported by this run of the objective

    def __repr__(self) -> str:
        return f"TrialHandle(id={self.id}, params={self.params!r})"

    @property
    def steps(self) -> tuple[tuple[float, float], ...]:
        """The trial's curve as recorded: ``(step, value)`` pairs."""
        return self._opt.trials[self.id].steps

    @property
    def last_step(self) -> float | None:
        """The step of the last recorded report; None before the first."""
        return self._opt.trials[self.id].last_step

    def report(self, value: Any, step: Any) -> None:
        """Records ``value`` at ``step`` (see `gpbo.Optimizer.report`; a NaN or inf fails the trial).

        Raises:
            InvalidTrialError: If the step does not increase or is above
                ``max_step``, the value is not a number, or the trial has ended.
        """
        number = as_real(step)
        if self._replay_until is not None and number is not None and number <= self._replay_until:
            if number <= self._last:
                raise InvalidTrialError(f"trial {self.id}: step {step} does not increase (the last report was at step {self._last})")
            if as_real(value) is None:
                raise InvalidTrialError(f"trial {self.id}: a reported value must be a real number, got {value!r:.200}")
            self._last = number  # already stored before the study was resumed
            return
        self._opt.report(self.id, value, step)
        self._last = number if number is not None else self._last

    def should_stop(self) -> bool:
        """True if the trial should stop: the early-stopping rule says so, or the study's step budget is spent."""
        if self._budget is not None and self._budget.spent():
            return True
        return self._opt.should_stop(self.id)

    def __reduce__(self) -> NoReturn:
        raise InvalidArgumentError(
            "a gpbo trial handle cannot be pickled: an objective that takes (params, trial) runs in the "
            "driver process (inline, n_workers threads or a thread-based executor) or on gpbo's RayExecutor, "
            "which passes the task a proxy; not on a process pool")
