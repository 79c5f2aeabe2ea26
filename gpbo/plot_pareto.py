"""Plots of studies with several objectives: the Pareto front and hypervolume against trials.

Like `gpbo.plot` (which re-exports them as ``gpbo.plot.pareto_front`` and
``gpbo.plot.hypervolume``), each function takes an `Optimizer`, a
`MinimizeResult` or a `StudyHistory` and returns a matplotlib ``Figure``;
matplotlib is imported on first use. Values are shown in user units, each
objective in its own direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from gpbo.errors import InvalidArgumentError
from gpbo.loop import MinimizeResult
from gpbo.metrics import Metrics
from gpbo.optimizer import Optimizer
from gpbo.pareto import pareto_mask
from gpbo.storage import StudyHistory
from gpbo.trial import Trial, TrialState

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["hypervolume", "pareto_front", "study_source"]

Study = Optimizer | MinimizeResult | StudyHistory


def study_source(study: Any) -> Optimizer | StudyHistory:
    """The Optimizer or StudyHistory behind what a plot was given (a MinimizeResult's optimizer)."""
    if isinstance(study, MinimizeResult):
        study = study.optimizer
    if not isinstance(study, (Optimizer, StudyHistory)):
        raise InvalidArgumentError(
            "study must be a gpbo.Optimizer, a gpbo.MinimizeResult or a gpbo.StudyHistory "
            f"(from gpbo.load_study), got {type(study).__name__}")
    return study


def _unpack(study: Any) -> tuple[Metrics, list[Trial]]:
    study = study_source(study)
    return study.metrics, study.trials


def _figure(projection: str | None = None) -> tuple[Figure, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('gpbo.plot needs matplotlib: pip install "gpbo[plot]"') from exc
    fig = Figure(figsize=(5.5, 4.4), layout="constrained")
    return fig, fig.add_subplot(projection=projection)


def _chosen(metrics: Metrics, objectives: Sequence[str] | None) -> list[int]:
    """Indices of the objectives to draw: the given 2 or 3 names, or all of a 2- or 3-objective study."""
    names = [o.name for o in metrics.objectives or ()]
    if objectives is None:
        if len(names) not in (2, 3):
            raise InvalidArgumentError(
                f"pareto_front draws 2 or 3 objectives; this study has {len(names)} {names}: "
                "choose them with objectives=[...]")
        return list(range(len(names)))
    chosen = list(objectives) if isinstance(objectives, (list, tuple)) else None
    if chosen is not None and not all(isinstance(n, str) for n in chosen):
        chosen = None
    if chosen is None or len(chosen) not in (2, 3) or len(set(chosen)) != len(chosen) or not set(chosen) <= set(names):
        raise InvalidArgumentError(f"objectives must be 2 or 3 distinct names among {names}, got {objectives!r:.200}")
    return [names.index(n) for n in chosen]


def pareto_front(study: Study, *, objectives: Sequence[str] | None = None) -> Figure:
    """The COMPLETE trials in objective space, the Pareto front highlighted.

    Feasible trials are dots, infeasible ones grey crosses, and the front
    (the feasible trials no other feasible one dominates in the drawn
    objectives) is red, joined by its staircase in 2-D. With 3 objectives the
    axes are 3-D.

    Args:
        study: A study with ``objectives=``.
        objectives: The 2 or 3 objective names to draw; None draws all of
            a 2- or 3-objective study.

    Raises:
        InvalidArgumentError: If the study is not one, has fewer than 2
            objectives, no COMPLETE trial, or ``objectives`` is invalid.
    """
    metrics, trials = _unpack(study)
    cols = _chosen(metrics, objectives)
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    if not done:
        raise InvalidArgumentError("pareto_front needs at least one COMPLETE trial, got none")
    objs = [metrics.objectives[i] for i in cols]
    Y = metrics.objective_matrix(done)[:, cols]  # (k, m) maximisation units
    feasible = torch.tensor([metrics.feasible(t) for t in done])
    front = pareto_mask(Y, feasible)
    U = Y * torch.tensor([o.sign for o in objs], dtype=Y.dtype)  # (k, m) user units
    fig, ax = _figure("3d" if len(cols) == 3 else None)
    groups = (("feasible", feasible & ~front, dict(color="C0", marker="o", alpha=0.6)),
              ("infeasible", ~feasible, dict(color="0.6", marker="x")),
              ("Pareto front", front, dict(color="C3", marker="o", edgecolors="k", zorder=3)))
    for label, mask, style in groups:
        if bool(mask.any()):
            ax.scatter(*U[mask].T.tolist(), label=label, **style)
    if len(cols) == 2 and bool(front.any()):
        _staircase(ax, U[front], objs)
    for axis, o in zip("xyz", objs, strict=False):
        getattr(ax, f"set_{axis}label")(f"{o.name} ({o.direction})")
    ax.set_title(f"Pareto front: {int(front.sum())} of {len(done)} complete trials")
    ax.legend()
    return fig


def _staircase(ax: Any, U: torch.Tensor, objs: list[Any]) -> None:
    """Joins the 2-D front points ``U (k, 2)`` (user units) by the boundary of the region they dominate."""
    order = U[:, 0].argsort(descending=objs[0].sign > 0).tolist()  # best first objective first
    xs, ys = U[order, 0].tolist(), U[order, 1].tolist()
    ax.step(xs, ys, where="post", color="C3", linewidth=1.0)


def hypervolume(study: Study) -> Figure:
    """Hypervolume of the feasible COMPLETE trials among the first i trials, against i.

    The reference point is the study's (`Optimizer.reference_point`): the
    one given in ``objectives``, else inferred from all its feasible trials,
    so every point of the curve uses the same one.

    Raises:
        InvalidArgumentError: If the study is not one, has fewer than 2
            objectives, or no feasible COMPLETE trial.
    """
    metrics, trials = _unpack(study)
    if metrics.n_objectives < 2:
        raise InvalidArgumentError(f"hypervolume needs a study with 2 or more objectives, got {metrics.n_objectives}")
    ref = metrics.reference_point(trials)
    if ref is None:
        why = "no trial satisfies the constraints yet" if metrics.constraints else "no trial is COMPLETE yet"
        raise InvalidArgumentError(f"hypervolume needs a feasible COMPLETE trial; {why}")
    counts = list(range(1, len(trials) + 1))
    values = [metrics.hypervolume(trials[:n], ref) for n in counts]
    fig, ax = _figure()
    ax.step(counts, values, where="post", color="C0", label="hypervolume")
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume")
    ax.set_title("reference point " + ", ".join(f"{k}={v:.4g}" for k, v in ref.items()), fontsize="medium")
    ax.legend()
    return fig
