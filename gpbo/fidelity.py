"""Learning curves in the facade: checking reports, the rule's `Curves`, stopped trials in the GP.

An objective reports ``(value, step)`` pairs while it trains
(`gpbo.Optimizer.report`); the study's early-stopping rule
(`gpbo.Settings.early_stopping`) reads every trial's curve as
`gpbo.early_stopping.Curves` (values to maximise: a minimised objective is
negated) and decides whether a running trial should stop.

**Stopped trials in the GP.** A trial stopped early (`TrialState.PRUNED`)
enters the surrogate at its configuration with the rule's prediction of its
value at ``max_step`` when the rule has ``predict_final(curves) -> (T,)``,
else with its last reported value; either way never above the median of the
COMPLETE trials (in the maximisation convention), so a run stopped early
never looks like a good full-fidelity result. With constraints, its
constraint values enter as told. (Learning curves mostly
improve with steps, so the last report is already pessimistic; the cap
guards against the rest.)

**Step budget.** `steps_used` counts a trial's last reported step, or
``max_step`` for a COMPLETE trial that never reported (a full training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from gpbo.early_stopping import Curves, StoppingRule
from gpbo.errors import FitError, InvalidArgumentError, InvalidTrialError
from gpbo.trial import Trial, TrialState, as_real
from gpbo.validation import is_finite_real

__all__ = ["as_step", "check_max_step", "curves", "pruned_values", "report_value", "steps_used"]


def check_max_step(max_step: Any) -> int | float | None:
    """``max_step`` (None, or a finite number > 0; an int when whole)."""
    if max_step is None:
        return None
    if not is_finite_real(max_step) or max_step <= 0:
        raise InvalidArgumentError(f"max_step must be None or a finite number > 0, got {type(max_step).__name__} {max_step!r:.200}")
    return _plain_step(max_step)


def _plain_step(step: float) -> int | float:
    """An int when whole and exact in float64 (below 2**53, which storage's INTEGER also holds), else a float."""
    return int(step) if float(step).is_integer() and abs(step) < 2**53 else float(step)


def as_step(step: Any, trial: Trial, max_step: float | None) -> int | float:
    """A reported step, checked: a finite number >= 0, above the trial's last step, at most ``max_step``.

    Raises:
        InvalidTrialError: Naming the trial, the step and what was expected.
    """
    number = as_real(step)
    if number is None or not math.isfinite(number) or number < 0:
        raise InvalidTrialError(f"trial {trial.id}: step must be a finite number >= 0, got {step!r:.200}")
    last = trial.last_step
    if last is not None and number <= last:
        what = "repeats" if number == last else "goes backwards"
        raise InvalidTrialError(
            f"trial {trial.id}: step {_plain_step(number)} {what}; steps must increase (the last report was at step {last})")
    if max_step is not None and number > max_step:
        raise InvalidTrialError(f"trial {trial.id}: step {_plain_step(number)} is above max_step={max_step}")
    return _plain_step(number)


def report_value(value: Any, trial: Trial) -> float:
    """A reported value as a float (NaN and ±inf pass: they end the trial).

    Raises:
        InvalidTrialError: If it is not one real number.
    """
    number = as_real(value)
    if number is None:
        raise InvalidTrialError(
            f"trial {trial.id}: a reported value must be a real number, got {value!r:.200} of type {type(value).__name__}")
    return number


def curves(trials: Sequence[Trial], X: Tensor, *, sign: float, max_step: float | None,
           stop_requested: set[int], hidden: frozenset[int] = frozenset()) -> Curves:
    """The rule's view of the study: every trial in id order (index = trial id).

    Args:
        trials: All trials, in id order.
        X: (T, d) their encoded configurations.
        sign: +1.0 if the objective is maximised, -1.0 if minimised.
        max_step: The study's max_step; None is ``inf``.
        stop_requested: Ids of running trials the rule already told to stop.
        hidden: Ids of ended trials shown as FAILED ones are (a study with
            constraints hides those that ended infeasible: no bar to beat).

    A FAILED trial's curve is left empty (it ended on an error or a non-finite report).
    """
    def gone(trial: Trial) -> bool:
        return trial.state is TrialState.FAILED or trial.id in hidden

    def tensor(trial: Trial, column: int) -> Tensor:
        pairs = [] if gone(trial) else trial.steps
        return torch.tensor([p[column] for p in pairs], dtype=torch.float64)

    steps = tuple(tensor(t, 0) for t in trials)
    values = tuple(sign * tensor(t, 1) for t in trials)
    running = torch.tensor([t.state is TrialState.RUNNING for t in trials], dtype=torch.bool)
    stopped = torch.tensor([not gone(t) and (t.state is TrialState.PRUNED or t.id in stop_requested) for t in trials],
                           dtype=torch.bool)
    return Curves(X=X, steps=steps, values=values, running=running, stopped=stopped,
                  max_step=math.inf if max_step is None else float(max_step))


def pruned_values(rule: StoppingRule | None, study: Curves, pruned: list[int], complete_Y: Tensor) -> Tensor:
    """Engine values (to maximise) of the PRUNED trials ``pruned`` (see the module docstring).

    Args:
        rule: The study's rule (its ``predict_final`` is used when it has one).
        study: `curves` of every trial.
        pruned: Ids of PRUNED trials (each with at least one report).
        complete_Y: (c,) engine values of the COMPLETE trials (may be empty).

    Returns:
        (p,) float64.
    """
    last = torch.stack([study.values[i][-1].to(torch.float64) for i in pruned]) if pruned else torch.empty(0, dtype=torch.float64)
    values = last
    predict = getattr(rule, "predict_final", None)
    if callable(predict) and pruned:
        try:
            predicted = predict(study)  # (mean (T,), std (T,)), or the mean alone
        except FitError:  # the curve model could not be fitted: the last reports stand in
            predicted = None
        if predicted is not None:
            mean = predicted[0] if isinstance(predicted, tuple) else predicted
            mean = torch.as_tensor(mean, dtype=torch.float64).cpu()[pruned]  # (p,)
            values = torch.where(mean.isfinite(), mean, last)
    if len(complete_Y):
        values = values.clamp(max=float(torch.quantile(complete_Y.to(torch.float64), 0.5)))
    return values


def steps_used(trials: Sequence[Trial], max_step: float | None) -> float:
    """Steps spent by ``trials``: each one's last reported step; ``max_step`` for a COMPLETE one that never reported."""
    total = 0.0
    for t in trials:
        if t.steps:
            total += t.steps[-1][0]
        elif t.state is TrialState.COMPLETE and max_step is not None:
            total += max_step
    return total
