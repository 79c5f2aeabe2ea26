"""Tests for gpbo.plot_pareto (re-exported as gpbo.plot.pareto_front / hypervolume), on the Agg backend."""

from __future__ import annotations

import re

import pytest

import gpbo
from gpbo.errors import InvalidArgumentError
from gpbo.optimizer import Optimizer
from gpbo.space import Real

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

BOX = {"x": Real(0.0, 1.0), "y": Real(0.0, 1.0)}
TOLD = [  # error, latency, memory: 0 and 1 on the front, 2 dominated, 3 infeasible, 4 dominated
    (0.1, 5.0, 8.0), (0.3, 2.0, 12.0), (0.2, 6.0, 4.0), (0.05, 1.0, 17.0), (0.4, 2.0, 1.0)]


def study(n_objectives: int = 2, told=TOLD) -> Optimizer:
    names = ["error", "latency_ms", "size"][:n_objectives]
    opt = Optimizer(BOX, objectives=dict.fromkeys(names, "minimize"), constraints={"memory_gb": ("<=", 16.0)}, seed=0)
    params = [{"x": i / 10, "y": i / 10} for i in range(len(told))]
    values = [{"error": e, "latency_ms": lat, "memory_gb": m, "size": 10 - i}
              for i, (e, lat, m) in enumerate(told)]
    opt.tell_many(params, [{k: v[k] for k in [*names, "memory_gb"]} for v in values])
    return opt


def offsets(ax, label):
    (coll,) = [c for c in ax.collections if c.get_label() == label]
    return coll


def test_two_objectives_tell_feasible_infeasible_and_front_apart():
    fig = gpbo.plot.pareto_front(study())
    (ax,) = fig.axes
    assert offsets(ax, "Pareto front").get_offsets().tolist() == [[0.1, 5.0], [0.3, 2.0]]
    assert offsets(ax, "infeasible").get_offsets().tolist() == [[0.05, 1.0]]
    assert sorted(offsets(ax, "feasible").get_offsets().tolist()) == [[0.2, 6.0], [0.4, 2.0]]
    assert ax.get_xlabel() == "error (minimize)" and ax.get_ylabel() == "latency_ms (minimize)"
    (stairs,) = ax.get_lines()
    assert list(stairs.get_xdata()) == [0.1, 0.3] and list(stairs.get_ydata()) == [5.0, 2.0]
    assert stairs.get_drawstyle() == "steps-post"  # the boundary of the region the front dominates
    assert ax.get_title() == "Pareto front: 2 of 5 complete trials"


def test_three_objectives_are_drawn_in_3d():
    fig = gpbo.plot.pareto_front(study(3))
    (ax,) = fig.axes
    assert ax.name == "3d" and ax.get_zlabel() == "size (minimize)"
    assert len(offsets(ax, "Pareto front").get_offsets()) == 4  # with size, 2 and 4 are no longer dominated
    assert len(offsets(ax, "infeasible").get_offsets()) == 1 and "feasible" not in [c.get_label() for c in ax.collections]
    fig2 = gpbo.plot.pareto_front(study(3), objectives=["latency_ms", "error"])
    assert fig2.axes[0].name != "3d" and fig2.axes[0].get_xlabel() == "latency_ms (minimize)"


def test_hypervolume_against_trials():
    opt = study()
    fig = gpbo.plot.hypervolume(opt)
    (ax,) = fig.axes
    (line,) = ax.get_lines()
    ref = opt.reference_point
    assert ref == pytest.approx({"error": 0.32, "latency_ms": 5.3})
    ys = list(line.get_ydata())
    assert list(line.get_xdata()) == [1, 2, 3, 4, 5] and ys == sorted(ys)
    assert ys[0] == pytest.approx((0.32 - 0.1) * (5.3 - 5.0))
    assert ys[-1] == pytest.approx(opt.metrics.hypervolume(opt.trials, ref))
    assert ax.get_title().startswith("reference point error=0.32, latency_ms=5.3")


@pytest.mark.parametrize("call,message", [
    (lambda: gpbo.plot.pareto_front(Optimizer(BOX, objectives={"e": "minimize"})), "draws 2 or 3 objectives"),
    (lambda: gpbo.plot.pareto_front(study(3), objectives=["error"]), "2 or 3 distinct names among"),
    (lambda: gpbo.plot.pareto_front(study(2), objectives=["error", "nope"]), "got ['error', 'nope']"),
    (lambda: gpbo.plot.pareto_front(study(2), objectives=[["error"], "latency_ms"]), "got [['error'], 'latency_ms']"),
    (lambda: gpbo.plot.pareto_front(Optimizer(BOX, objectives={"a": "minimize", "b": "minimize"})),
     "needs at least one COMPLETE trial"),
    (lambda: gpbo.plot.hypervolume(Optimizer(BOX)), "hypervolume needs a study with 2 or more objectives"),
    (lambda: gpbo.plot.hypervolume(study(told=[(0.1, 1.0, 20.0)])), "no trial satisfies the constraints yet"),
    (lambda: gpbo.plot.hypervolume(Optimizer(BOX, objectives={"a": "minimize", "b": "minimize"})),
     "no trial is COMPLETE yet"),
    (lambda: gpbo.plot.hypervolume(5), "study must be a gpbo.Optimizer"),
])
def test_bad_input(call, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        call()
