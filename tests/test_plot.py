"""Tests for gpbo.plot: every plot renders to a PNG with the expected axes."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from gpbo import plot
from gpbo.errors import InvalidArgumentError
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
    assert fig.axes[1].get_ylabel() == "objective (mean)"
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
    (lambda s: plot.convergence([1, 2]), "study must be a gpbo.Optimizer or a gpbo.MinimizeResult, got list"),
    (lambda s: plot.slice(s, ["depth"]), "params must name parameters of the space"),
    (lambda s: plot.partial_dependence(s, ("lr", "n", "act")), "one or two params"),
    (lambda s: plot.partial_dependence(s, "lr", n_grid=1), "n_grid=1"),
    (lambda s: plot.importances(s, method="shap"), "method must be one of ('lengthscale', 'sobol'), got 'shap'"),
    (lambda s: plot.fit_surrogate(Optimizer(SPACE)), "at least 2 COMPLETE trials, got 0"),
]


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_input_raises_gpbo_errors(study, call, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        call(study)
