"""Learning-curve plots, asserted on matplotlib objects (Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

import gpbo
import gpbo.plot
from gpbo.errors import InvalidArgumentError

SPACE = {"x": gpbo.Real(0.0, 1.0)}


def study() -> gpbo.Optimizer:
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=3, settings={"early_stopping": None})
    for values, told in (([0.9, 0.5, 0.3], 0.3), ([0.8, 0.6, 0.2], 0.2), ([0.95], 0.95)):
        t = opt.ask()
        for step, v in enumerate(values, start=1):
            opt.report(t, v, step)
        opt.tell(t, told)
    return opt


def test_learning_curves_colour_by_outcome_and_mark_stopped_runs():
    fig = gpbo.plot.learning_curves(study(), metric_name="loss")
    (ax,) = fig.axes
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() != "None"]
    assert [list(ln.get_ydata()) for ln in lines] == [[0.9, 0.5, 0.3], [0.8, 0.6, 0.2], [0.95]]
    assert [ln.get_color() for ln in lines] == ["C0", "C0", "C7"]
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["complete", "stopped early"]
    assert ax.get_ylabel() == "loss"


def test_failed_and_running_curves_have_their_own_colours():
    opt = study()
    diverged, running = opt.ask(), opt.ask()
    opt.report(diverged, 0.7, 1)
    opt.report(diverged, float("nan"), 2)  # fails the trial, keeps its first report
    opt.report(running, 0.4, 1)
    (ax,) = gpbo.plot.learning_curves(opt).axes
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() != "None"]
    assert [ln.get_color() for ln in lines] == ["C0", "C0", "C7", "C3", "C2"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["complete", "stopped early", "failed", "running"]


def test_learning_curves_dash_the_trials_that_ended_infeasible():
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=2, settings={"early_stopping": None},
                         objectives={"err": "minimize"}, constraints={"mem": ("<=", 16.0)})
    for values, mem in (([0.9, 0.5], 8.0), ([0.8, 0.2], 20.0), ([0.7], 30.0), ([0.6], 1.0)):
        t = opt.ask()
        for step, v in enumerate(values, start=1):
            opt.report(t, v, step)
        opt.tell(t, {"err": values[-1], "mem": mem})
    (ax,) = gpbo.plot.learning_curves(opt).axes
    lines = [ln for ln in ax.get_lines() if ln.get_marker() != "x"]
    assert [(ln.get_color(), ln.get_linestyle()) for ln in lines] == [("C0", "-"), ("C0", "--"), ("C7", "--"), ("C7", "-")]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "complete", "complete, infeasible", "stopped early, infeasible", "stopped early"]


def test_best_vs_steps_counts_every_trials_steps():
    opt = study()
    res_fig = gpbo.plot.best_vs_steps(opt)
    (ax,) = res_fig.axes
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [3.0, 6.0, 7.0] and list(line.get_ydata()) == [0.3, 0.2, 0.2]
    assert ax.get_xlabel() == "cumulative steps"


def test_curve_plots_reject_studies_without_curves():
    opt = gpbo.Optimizer(SPACE, seed=0)
    with pytest.raises(InvalidArgumentError, match="learning_curves needs trials that reported"):
        gpbo.plot.learning_curves(opt)
    with pytest.raises(InvalidArgumentError, match="best_vs_steps needs a COMPLETE trial"):
        gpbo.plot.best_vs_steps(opt)
