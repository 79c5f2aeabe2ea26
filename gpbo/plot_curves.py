"""Plots of learning curves: each trial's reported curve, and best-so-far against steps spent.

Re-exported by `gpbo.plot` (``gpbo.plot.learning_curves``,
``gpbo.plot.best_vs_steps``). Each function takes an `Optimizer`, a
`MinimizeResult` or a `StudyHistory` and returns a matplotlib ``Figure``;
values are shown in user units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpbo.errors import InvalidArgumentError
from gpbo.fidelity import steps_used
from gpbo.optimizer import Optimizer
from gpbo.plot_pareto import Study, _figure, _unpack
from gpbo.trial import TrialState

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["best_vs_steps", "learning_curves"]

COLOURS = {TrialState.COMPLETE: "C0", TrialState.PRUNED: "C7", TrialState.FAILED: "C3", TrialState.RUNNING: "C2"}
LABELS = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "stopped early", TrialState.FAILED: "failed",
          TrialState.RUNNING: "running"}


def _name(metric_name: object) -> str:
    if not isinstance(metric_name, str) or not metric_name:
        raise InvalidArgumentError(f"metric_name must be a non-empty str, got {metric_name!r:.200}")
    return metric_name


def learning_curves(study: Study, *, metric_name: str = "objective") -> Figure:
    """Every reported learning curve, coloured by the trial's outcome; stopped runs end in an ``x``.

    With constraints, a trial that ended violating one is dashed.

    Args:
        study: An `Optimizer`, `MinimizeResult` or `StudyHistory`.
        metric_name: What the reported value measures.

    Raises:
        InvalidArgumentError: If no trial reported a curve.
    """
    metric_name = _name(metric_name)
    metrics, trials = _unpack(study)
    reported = [t for t in trials if t.steps]
    if not reported:
        raise InvalidArgumentError("learning_curves needs trials that reported (trial.report(value, step)); none did")
    fig, ax = _figure()
    labelled: set[tuple[TrialState, bool]] = set()
    for t in reported:
        steps, values = zip(*t.steps, strict=True)
        infeasible = metrics.ended_infeasible(t)
        kind = (t.state, infeasible)
        label = None if kind in labelled else LABELS[t.state] + (", infeasible" if infeasible else "")
        labelled.add(kind)
        ax.plot(steps, values, color=COLOURS[t.state], ls="--" if infeasible else "-", alpha=0.7, lw=1.2, label=label)
        if t.state is TrialState.PRUNED:
            ax.plot(steps[-1:], values[-1:], "x", color=COLOURS[t.state], ms=6)
    ax.set(xlabel="step", ylabel=metric_name, title="Learning curves")
    ax.legend()
    return fig


def best_vs_steps(study: Study, *, metric_name: str = "objective") -> Figure:
    """The best COMPLETE value (full fidelity) against the steps spent, trials taken in id order.

    Args:
        study: An `Optimizer`, `MinimizeResult` or `StudyHistory`.
        metric_name: What the objective measures.

    Raises:
        InvalidArgumentError: With several objectives, or if no trial completed.
    """
    metric_name = _name(metric_name)
    metrics, trials = _unpack(study)
    if metrics.n_objectives > 1:
        raise InvalidArgumentError(f"best_vs_steps is for one objective; this study has {metrics.n_objectives}")
    max_step = study.optimizer.max_step if hasattr(study, "optimizer") else (
        study.max_step if isinstance(study, Optimizer) else None)
    if max_step is None:
        max_step = max((t.last_step for t in trials if t.steps), default=None)
    xs, ys, spent, best = [], [], 0.0, None
    for t in trials:
        spent += steps_used([t], max_step)
        if metrics.feasible(t):
            better = best is None or (t.value > best if metrics.maximizes else t.value < best)
            best = t.value if better else best
        if best is not None:
            xs.append(spent)
            ys.append(best)
    if not xs:
        raise InvalidArgumentError("best_vs_steps needs a COMPLETE trial; none has completed")
    fig, ax = _figure()
    ax.step(xs, ys, where="post", color="C1", label="best so far")
    ax.set(xlabel="cumulative steps", ylabel=metric_name, title="Best value against steps spent")
    ax.legend()
    return fig
