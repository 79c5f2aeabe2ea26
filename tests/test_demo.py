"""python -m gpbo.demo at a tiny size: it prints the result and writes the study and the plot."""

from __future__ import annotations

import pytest

from gpbo import demo

pytest.importorskip("matplotlib")


def test_demo_writes_the_study_and_the_convergence_plot(tmp_path, capsys):
    demo.main(["--trials", "3", "--epochs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "best of 3 trials" in out and "held-out test: accuracy" in out
    assert (tmp_path / "convergence.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "study.db").stat().st_size > 0
    demo.main(["--trials", "1", "--epochs", "1", "--out", str(tmp_path)])  # continues the study
    assert "best of 4 trials (1 in this run" in capsys.readouterr().out


def test_search_space_has_the_seven_hyperparameters():
    assert demo.search_space().names == (
        "lr", "weight_decay", "width", "depth", "dropout", "batch_size", "activation")


def test_the_convergence_plot_names_the_metric():
    import gpbo

    result = gpbo.minimize(lambda p: 1.0 + p["x"], {"x": gpbo.Real(0.0, 1.0)}, 2, seed=0)
    ax = demo.convergence_plot(result).axes[0]
    assert ax.get_ylabel() == "validation log-loss" and ax.get_yscale() == "log"


def test_demo_with_early_stopping_reports_every_epoch_and_keeps_only_full_runs_as_best(tmp_path, capsys):
    with pytest.raises(SystemExit):
        demo.main(["--epoch-budget", "10"])  # the budget needs --early-stopping
    demo.main(["--trials", "8", "--epochs", "6", "--out", str(tmp_path), "--early-stopping"])
    out = capsys.readouterr().out
    assert "19 epochs of trials that stop early" in out  # 40 % of 8 trials x 6 epochs and "held-out test: accuracy" in out
    history = __import__("gpbo").load_study(tmp_path / "study.db", demo.STUDY_NAME)
    trials = history.trials
    assert f"epochs trained: {sum(t.last_step for t in trials)} in {len(trials)} trials" in out
    assert 19 <= sum(t.last_step for t in trials) < 19 + 6  # the budget: no trial starts once it is spent
    assert all(t.steps and [s for s, _ in t.steps] == list(range(1, len(t.steps) + 1)) for t in trials)
    best = min((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert best.last_step == 6 and f"val_loss={best.value:.4f}" in out
