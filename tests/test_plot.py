"""Tests for gpbo.plot: every plot renders to a PNG with the expected axes.

Each behaviour is asserted on the matplotlib objects (Agg backend).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import gpbo
from gpbo import plot
from gpbo.errors import InvalidArgumentError
from gpbo.models.warping import warp_outcomes
from gpbo.optimizer import Optimizer
from gpbo.space import Categorical, Integer, Real

SPACE = {
    "lr": Real(1e-3, 10.0, log=True),
    "n": Integer(1, 8),
    "act": Categorical(["relu", "gelu", "tanh"]),
    "noise": Real(0.0, 1.0),
}


def objective(p: dict) -> float:
    """Dominated by lr; n and act matter a little, noise barely."""
    return ((math.log10(p["lr"]) + 1.0) ** 2 + 0.05 * p["n"]
            + {"relu": 0.0, "gelu": 0.2, "tanh": 0.4}[p["act"]] + 1e-3 * p["noise"])


@pytest.fixture(scope="module")
def study() -> Optimizer:
    """25 told random trials (one failed), no BO step needed."""
    rng = np.random.default_rng(0)
    params = [{"lr": float(10 ** rng.uniform(-3, 1)), "n": int(rng.integers(1, 9)),
               "act": str(rng.choice(["relu", "gelu", "tanh"])), "noise": float(rng.uniform())}
              for _ in range(25)]
    values = [objective(p) for p in params]
    values[3] = RuntimeError("diverged")
    opt = Optimizer(SPACE, seed=0)
    opt.tell_many(params, values)
    return opt


def _save(fig, tmp_path, name: str):
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000
    return path


def test_convergence_draws_values_best_so_far_and_failures(study, tmp_path):
    fig = plot.convergence(study)
    _save(fig, tmp_path, "convergence")
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("trial", "objective", "Convergence")
    best = ax.lines[0].get_ydata()
    assert np.all(np.diff(best) <= 0) and best[-1] == pytest.approx(study.best.value)
    failed = ax.lines[1]
    assert list(failed.get_xdata()) == [3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trial", "best so far", "failed"]


def test_convergence_accepts_a_minimize_result_and_maximisation():
    import gpbo

    result = gpbo.minimize(lambda p: -(p["x"] - 0.5) ** 2, {"x": Real(0.0, 1.0)}, 3, seed=0,
                           maximize=True)
    best = plot.convergence(result).axes[0].lines[0].get_ydata()
    assert np.all(np.diff(best) >= 0) and best[-1] == result.best_value
    with pytest.raises(InvalidArgumentError, match=re.escape("log_y=True needs objective values > 0, got -")):
        plot.convergence(result, log_y=True)


def test_convergence_log_y(study):
    assert plot.convergence(study, log_y=True).axes[0].get_yscale() == "log"


def test_a_study_with_objectives_is_drawn_in_its_direction_its_best_so_far_feasible():
    opt = Optimizer({"x": Real(0.0, 1.0)}, seed=0, objectives={"acc": "maximize"}, constraints={"mem": ("<=", 1.0)})
    opt.tell_many([{"x": x} for x in (0.1, 0.2, 0.3, 0.4)],
                  [{"acc": 0.5, "mem": 0.5}, {"acc": 0.9, "mem": 2.0}, {"acc": 0.7, "mem": 0.5}, {"acc": 0.6, "mem": 0.5}])
    best = plot.convergence(opt).axes[0].lines[0].get_ydata()
    assert list(best) == [0.5, 0.5, 0.7, 0.7] and best[-1] == opt.best.value  # trial 1 breaks the constraint
    assert plot.fit_surrogate(opt).sign == 1.0


def test_the_one_objective_plots_refuse_a_study_with_several_objectives():
    opt = Optimizer({"x": Real(0.0, 1.0)}, seed=0, objectives={"a": "minimize", "b": "minimize"})
    opt.tell_many([{"x": x} for x in (0.1, 0.5, 0.9)], [{"a": x, "b": 1 - x} for x in (0.1, 0.5, 0.9)])
    message = re.escape("this plot is for one objective; this study has 2 objectives ['a', 'b']: use gpbo.plot.pareto_front")
    for draw in (plot.convergence, plot.slice, plot.fit_surrogate, plot.importance, plot.importances,
                 lambda s: plot.partial_dependence(s, "x")):
        with pytest.raises(InvalidArgumentError, match=message):
            draw(opt)


def test_slice_has_one_panel_per_param_with_scales_and_choice_labels(study, tmp_path):
    fig = plot.slice(study)
    _save(fig, tmp_path, "slice")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_xlabel() for ax in panels] == ["lr", "n", "act", "noise"]
    assert panels[0].get_xscale() == "log" and panels[3].get_xscale() == "linear"
    assert [t.get_text() for t in panels[2].get_xticklabels()] == ["relu", "gelu", "tanh"]
    assert len(panels[0].collections[0].get_offsets()) == 24  # COMPLETE trials only
    assert len(plot.slice(study, ["n"]).axes) == 2  # one panel and its colorbar


def test_partial_dependence_1d_follows_the_objective(study, tmp_path):
    fig = plot.partial_dependence(study, "lr", n_grid=30)
    _save(fig, tmp_path, "pd1")
    (ax,) = fig.axes
    x, mean = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    assert len(x) == 30 and ax.get_xscale() == "log" and ax.get_xlabel() == "lr"
    assert 10 ** -1.6 < x[np.argmin(mean)] < 10 ** -0.4  # the minimum is at lr = 0.1


def test_partial_dependence_2d_and_a_reused_surrogate(study, tmp_path):
    sur = plot.fit_surrogate(study)
    fig = plot.partial_dependence(study, ("lr", "act"), surrogate=sur)
    _save(fig, tmp_path, "pd2")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("lr", "act")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["relu", "gelu", "tanh"]
    assert fig.axes[1].get_ylabel() == "objective (warped scale), mean"
    _save(plot.partial_dependence(study, ("lr", "noise")), tmp_path, "pd2_continuous")


@pytest.mark.parametrize("method", ["sobol", "lengthscale"])
def test_importance_ranks_the_dominant_parameter_first(study, tmp_path, method):
    scores = plot.importances(study, method=method, n_samples=256)
    assert list(scores) == ["lr", "n", "act", "noise"]
    assert sum(scores.values()) == pytest.approx(1.0)
    assert max(scores, key=scores.get) == "lr"
    fig = plot.importance(study, method=method, n_samples=256)
    _save(fig, tmp_path, f"importance_{method}")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "lr"  # longest bar on top
    assert method.replace("sobol", "Sobol")[:5] in ax.get_xlabel().replace("ARD lengthscale", "lengthscale")


BAD = [
    (lambda s: plot.convergence([1, 2]),
     "study must be a gpbo.Optimizer, a gpbo.MinimizeResult or a gpbo.StudyHistory (from gpbo.load_study), got list"),
    (lambda s: plot.slice(s, metric_name=""), "metric_name must be a non-empty str, got ''"),
    (lambda s: plot.convergence(s, metric_name=3), "metric_name must be a non-empty str, got 3"),
    (lambda s: plot.slice(s, ["depth"]), "params must name parameters of the space"),
    (lambda s: plot.partial_dependence(s, ("lr", "n", "act")), "one or two params"),
    (lambda s: plot.partial_dependence(s, "lr", n_grid=1), "n_grid=1"),
    (lambda s: plot.importances(s, method="shap"), "method must be one of ('lengthscale', 'sobol'), got 'shap'"),
    (lambda s: plot.importance(s, n_samples=0), "n_samples must be an int >= 2, got int 0"),
    (lambda s: plot.fit_surrogate(Optimizer(SPACE)), "at least 2 COMPLETE trials, got 0"),
]


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_input_raises_gpbo_errors(study, call, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        call(study)


def _optimizer(**kwargs) -> Optimizer:
    """An Optimizer with the output warp off (settings= once the facade takes it, else warp=)."""
    try:
        return Optimizer(SPACE, seed=0, settings=gpbo.Settings(warp="none"), **kwargs)
    except TypeError:
        return Optimizer(SPACE, seed=0, warp="none", **kwargs)


@pytest.fixture(scope="module")
def history(study, tmp_path_factory) -> gpbo.StudyHistory:
    """The `study` trials, stored and read back with gpbo.load_study."""
    db = tmp_path_factory.mktemp("plot") / "study.db"
    with Optimizer(SPACE, seed=0, storage=db) as opt:
        done = [t for t in study.trials]
        opt.tell_many([t.params for t in done],
                      [t.value if t.value is not None else RuntimeError(t.error) for t in done])
    return gpbo.load_study(db)


def test_every_plot_takes_a_loaded_study(study, history, tmp_path):
    from_history, from_opt = plot.convergence(history).axes[0], plot.convergence(study).axes[0]
    assert list(from_history.lines[0].get_ydata()) == list(from_opt.lines[0].get_ydata())
    assert list(from_history.lines[1].get_xdata()) == [3]
    assert [ax.get_xlabel() for ax in plot.slice(history).axes[:4]] == ["lr", "n", "act", "noise"]
    _save(plot.partial_dependence(history, "lr", n_grid=20), tmp_path, "pd_history")
    assert max(plot.importances(history, n_samples=128), key=plot.importances(history, n_samples=128).get) == "lr"
    _save(plot.importance(history, n_samples=128), tmp_path, "importance_history")


def test_the_surrogate_is_the_engine_model_fitted_to_the_optimizer_data(study, monkeypatch):
    calls = []

    def spy(X, Y, **kwargs):
        calls.append((X, Y, kwargs))
        return fit_model(X, Y, **kwargs)

    from gpbo.engine import fit_model

    monkeypatch.setattr(plot, "fit_model", spy)
    sur = plot.fit_surrogate(study)
    ((X, Y, kwargs),) = calls
    values = [t.value for t in study.trials if t.value is not None]
    assert Y[0, :24].tolist() == [-v for v in values]  # minimised: the engine maximises -value
    assert Y[0, 24].item() == -max(values)  # the failed trial at the worst value, as the optimizer does
    assert X.shape == (1, 25, 4) and kwargs["dims"] == study.space.dims
    assert kwargs["settings"].warp == "yeo-johnson" and sur.warped and sur.sign == -1.0
    # shown in the objective's direction, on the warped scale the model was fitted to
    assert sur.Y.tolist() == pytest.approx((-warp_outcomes(Y))[0, :24].tolist())
    assert np.argsort(sur.Y.numpy()).tolist() == np.argsort(values).tolist()
    mean, _ = sur.predict(sur.X)
    assert np.corrcoef(mean.numpy(), sur.Y.numpy())[0, 1] > 0.95
    ax = plot.partial_dependence(study, "lr", surrogate=sur).axes[0]
    assert ax.get_ylabel() == "objective (warped scale)"


def test_without_warp_the_model_is_in_the_objective_units(study):
    opt = _optimizer()
    done = [t for t in study.trials if t.value is not None]
    opt.tell_many([t.params for t in done], [t.value for t in done])
    sur = plot.fit_surrogate(opt)
    assert not sur.warped and sur.Y.tolist() == [t.value for t in done]
    mean, _ = sur.predict(sur.X)
    assert mean.numpy() == pytest.approx(sur.Y.numpy(), abs=0.1)  # the objective's units and sign
    ax = plot.partial_dependence(opt, "lr", surrogate=sur, metric_name="validation error").axes[0]
    assert ax.get_ylabel() == "validation error"


def test_partial_dependence_of_a_categorical_draws_one_bar_per_choice(study, tmp_path):
    fig = plot.partial_dependence(study, "act")
    _save(fig, tmp_path, "pd_categorical")
    (ax,) = fig.axes
    bars = [c for c in ax.containers if type(c).__name__ == "BarContainer"]
    errors = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 1 and len(bars[0].patches) == 3 and len(errors) == 1
    assert set(ax.lines) <= set(errors[0].lines[1])  # no mean line: only the error bars' caps
    assert not any(type(c).__name__ == "PolyCollection" for c in ax.collections)  # no band
    assert [t.get_text() for t in ax.get_xticklabels()] == ["relu", "gelu", "tanh"]
    tops = [p.get_y() + p.get_height() for p in bars[0].patches]
    assert tops[0] < tops[2]  # relu is better (lower) than tanh
    assert len({p.get_y() for p in bars[0].patches}) == 1  # one common floor
    floor = bars[0].patches[0].get_y()
    segments = errors[0].lines[2][0].get_segments()  # the ±2 std whiskers, one per bar
    assert len(segments) == 3 and min(seg[:, 1].min() for seg in segments) >= floor
    assert ax.get_ylim()[0] == pytest.approx(floor)


def _visible_tick_labels(ax):
    lo, hi = sorted(ax.get_xlim())
    return [t for t, loc in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True)
            if t.get_text() and lo <= loc <= hi]


def test_slice_labels_a_log_integer_with_plain_integers_that_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    space = {"width": Integer(16, 256, log=True), "x": Real(0.0, 1.0)}
    opt = Optimizer(space, seed=0)
    rng = np.random.default_rng(1)
    widths = [16, 23, 40, 64, 100, 150, 200, 256]
    opt.tell_many([{"width": w, "x": float(rng.uniform())} for w in widths], list(rng.uniform(size=8)))
    fig = plot.slice(opt, ["width"])
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = _visible_tick_labels(ax)
    assert [t.get_text() for t in labels] == ["20", "50", "100", "200"]
    assert not [t for t in ax.xaxis.get_minorticklabels() if t.get_text()]
    boxes = [t.get_window_extent() for t in labels]
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))  # no overlap
    assert ax.get_xlim()[0] <= 16 and ax.get_xlim()[1] >= 256


@pytest.mark.parametrize("draw", [
    lambda s, m: plot.convergence(s, metric_name=m).axes[0].get_ylabel(),
    lambda s, m: plot.slice(s, ["lr"], metric_name=m).axes[0].get_ylabel(),
    lambda s, m: plot.partial_dependence(s, "lr", n_grid=10, metric_name=m).axes[0].get_ylabel(),
    lambda s, m: plot.partial_dependence(s, "act", metric_name=m).axes[0].get_ylabel(),
    lambda s, m: plot.partial_dependence(s, ("lr", "n"), n_grid=8, metric_name=m).axes[1].get_ylabel(),
])
def test_plots_name_the_metric(study, draw):
    assert draw(study, "validation error").startswith("validation error")
    assert draw(study, "objective").startswith("objective")


def test_gpbo_plot_is_an_attribute_and_import_gpbo_does_not_import_matplotlib():
    code = (
        "import sys, gpbo\n"
        "assert 'matplotlib' not in sys.modules and 'gpbo.plot' not in sys.modules\n"
        "opt = gpbo.Optimizer({'x': gpbo.Real(0.0, 1.0)}, seed=0)\n"
        "opt.tell_many([{'x': 0.2}, {'x': 0.7}], [1.0, 0.5])\n"
        "assert 'matplotlib' not in sys.modules\n"
        "fig = gpbo.plot.convergence(opt)\n"
        "assert fig.axes[0].get_ylabel() == 'objective' and 'plot' in gpbo.__all__\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
