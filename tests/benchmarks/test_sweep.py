"""The sweep runner: batched engine calls, resume after a kill, Bayesmark scoring."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks import hpo, report, sweep

ARGS = ["--problems", "branin,branin_noisy", "--seeds", "3", "--budget", "9", "--no-report"]


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_gpbo_runs_one_engine_call_per_iteration(tmp_path, monkeypatch):
    from gpbo import engine

    shapes = []
    real = engine.suggest

    def counting(X, Y, **kw):
        shapes.append((tuple(X.shape), kw["q"]))
        return real(X, Y, **kw)

    monkeypatch.setattr(engine, "suggest", counting)
    sweep.main([*ARGS, "--methods", "gpbo", "--batch-size", "2", "--out", str(tmp_path)])
    # branin and branin_noisy share one space: P = 3 seeds x 2 problems; n_init = q = 2,
    # then batches of 2, 2, 2 and a last one of 1 -> 4 calls, never one per seed.
    assert shapes == [((6, 2, 2), 2), ((6, 4, 2), 2), ((6, 6, 2), 2), ((6, 8, 2), 1)]
    recs = _lines(tmp_path / "results.jsonl")
    assert len(recs) == 6 * 9
    assert {(r["problem"], r["seed"]) for r in recs} == {(p, s) for p in ("branin", "branin_noisy")
                                                         for s in range(3)}


def test_resume_after_kill_continues_without_redoing(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = sweep.evaluate

    def dying(problem, params, seed, idx):
        calls["n"] += 1
        if calls["n"] > 25:
            raise KeyboardInterrupt  # the kill
        return real(problem, params, seed, idx)

    monkeypatch.setattr(sweep, "evaluate", dying)
    argv = [*ARGS, "--methods", "gpbo,random", "--out", str(tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        sweep.main(argv)
    before = _lines(tmp_path / "results.jsonl")
    assert len(before) == 25
    with open(tmp_path / "results.jsonl", "a") as fh:  # a line cut by the kill
        fh.write('{"method": "gpbo", "prob')
    monkeypatch.setattr(sweep, "evaluate", real)
    counted = {"n": 0}

    def counting(problem, params, seed, idx):
        counted["n"] += 1
        return real(problem, params, seed, idx)

    monkeypatch.setattr(sweep, "evaluate", counting)
    sweep.main(argv)
    after = [r for r in report.load(tmp_path).values()]
    assert counted["n"] == 2 * 6 * 9 - 25  # only the missing evaluations were run
    assert sum(len(r) for r in after) == 2 * 6 * 9
    assert all(sorted(r) == list(range(9)) for r in after)
    kept = {(r["method"], r["problem"], r["seed"], r["idx"]): r["value"] for r in before}
    again = report.load(tmp_path)
    for (m, p, s, i), v in kept.items():
        assert again[(m, p, s, 9, 1)][i]["value"] == v


def test_random_search_resume_is_exact(tmp_path):
    out1, out2 = tmp_path / "a", tmp_path / "b"
    base = ["--problems", "hartmann6", "--methods", "random", "--seeds", "2", "--no-report"]
    sweep.main([*base, "--budget", "10", "--out", str(out1)])
    lines = (out1 / "results.jsonl").read_text().splitlines()
    out2.mkdir()
    (out2 / "results.jsonl").write_text("\n".join(lines[:4]) + "\n")
    sweep.main([*base, "--budget", "10", "--out", str(out2)])
    a = {(r["seed"], r["idx"]): r["params"] for r in _lines(out1 / "results.jsonl")}
    b = {(r["seed"], r["idx"]): r["params"] for r in _lines(out2 / "results.jsonl")}
    assert a == b


def test_first_seed_runs_later_seeds_identically(tmp_path):
    """--first-seed 1 --seeds 1 runs seed 1 alone, exactly as the 2-seed run does."""
    base = ["--problems", "hartmann6", "--methods", "random", "--budget", "6", "--no-report"]
    sweep.main([*base, "--seeds", "2", "--out", str(tmp_path / "both")])
    sweep.main([*base, "--seeds", "1", "--first-seed", "1", "--out", str(tmp_path / "later")])
    both = {(r["seed"], r["idx"]): r["params"] for r in _lines(tmp_path / "both" / "results.jsonl")}
    later = {(r["seed"], r["idx"]): r["params"] for r in _lines(tmp_path / "later" / "results.jsonl")}
    assert {s for s, _ in later} == {1}
    assert later == {k: v for k, v in both.items() if k[0] == 1}


def test_bayesmark_normalised_loss_and_score_by_hand():
    # opt = 1, clip = 3: best 2 -> 0.5; best 5 -> clipped at clip -> 1; best 1 -> 0;
    # best 0 (below opt) -> -0.5
    nl = hpo.normalised_loss(np.array([2.0, 5.0, 1.0, 0.0]), opt=1.0, clip=3.0)
    assert np.allclose(nl, [0.5, 1.0, 0.0, -0.5])
    # clipped to [-1, 1]: best -10 -> (-10 - 1) / 2 = -5.5 -> -1
    assert hpo.normalised_loss(np.array([-10.0]), 1.0, 3.0)[0] == -1.0
    assert math.isclose(hpo.score(nl), 100 * (1 - (0.5 + 1.0 + 0.0 - 0.5) / 4))  # 75.0


def test_report_names_the_problems_of_significant_differences(tmp_path):
    """8 seeds of branin where gpbo is always better than random: a win, listed by problem."""
    rows = []
    for m, offset in {"gpbo": 0.0, "random": 10.0}.items():
        for s in range(8):
            v = 1.0 + offset + 0.01 * s
            rows.append({"method": m, "problem": "branin", "seed": s, "idx": 0, "budget": 1, "q": 1,
                         "params": {}, "value": v, "true": v, "holdout": None})
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    s = report.write(tmp_path, methods=["gpbo", "random"], problems=["branin"], seeds=list(range(8)),
                     budget_of={"branin": 1}, q=1)
    assert s["wtl"]["random"]["win"] == 1 and s["significant"] == {"random": ["win branin"]}
    assert "significant differences: random: win branin" in (tmp_path / "summary.md").read_text()


def test_paired_test_sees_a_consistent_shift_that_mann_whitney_misses() -> None:
    base = np.array([1.0, 5.0, 2.0, 9.0, 3.0, 7.0, 4.0, 8.0])  # seeds differ far more than methods
    gpbo, other = base - 0.1, base  # gpbo better on every seed (lower is better)
    assert report.compare(gpbo, other, higher_better=False) == "tie"
    assert report.compare(gpbo, other, higher_better=False, paired=True) == "win"
    assert report.compare(other, gpbo, higher_better=False, paired=True) == "loss"
    assert report.compare(gpbo, other, higher_better=True, paired=True) == "loss"
    assert report.compare(base, base.copy(), higher_better=False, paired=True) == "tie"


def test_report_pairs_only_methods_complete_on_every_seed(tmp_path):
    rows = []
    for m, shift, seeds in (("gpbo", -0.1, 8), ("random", 0.0, 8), ("tpe", 0.0, 7)):
        for s in range(seeds):
            v = 10.0 + 3.0 * ((5 * s) % 8) + shift  # lower is better
            rows.append({"method": m, "problem": "branin", "seed": s, "idx": 0, "budget": 1, "q": 1,
                         "params": {}, "value": v, "true": v, "holdout": None})
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    s = report.write(tmp_path, methods=["gpbo", "random", "tpe"], problems=["branin"], seeds=list(range(8)),
                     budget_of={"branin": 1}, q=1, paired=True)
    assert s["significant"] == {"random": ["win branin"]}  # tpe lacks seed 7: Mann-Whitney, a tie
    assert "Wilcoxon signed-rank, paired by seed" in (tmp_path / "summary.md").read_text()


def test_report_scores_runs_with_cached_baselines(tmp_path, monkeypatch):
    cache = tmp_path / "baselines.json"
    cache.write_text(json.dumps({"knn-iris-nll": {"opt": 0.2, "clip": 0.6}}))
    monkeypatch.setattr(report, "BASELINES", cache)
    path = tmp_path / "results.jsonl"
    rows = []
    for m, vals in {"gpbo": [0.5, 0.4], "random": [0.7, 0.6]}.items():
        for s in range(2):
            for i, v in enumerate(vals):
                rows.append({"method": m, "problem": "knn-iris-nll", "seed": s, "idx": i, "budget": 2,
                             "q": 1, "params": {}, "value": v + 0.1 * s, "true": v, "holdout": None})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    s = report.write(tmp_path, methods=["gpbo", "random"], problems=["knn-iris-nll"], seeds=[0, 1],
                     budget_of={"knn-iris-nll": 2}, q=1)
    # gpbo finals 0.4, 0.5 -> normalised (0.2/0.4, 0.3/0.4) -> scores 50, 25 -> mean 37.5
    # random finals 0.6, 0.7 -> min with clip 0.6 -> normalised 1, 1 -> score 0
    assert math.isclose(s["bayesmark_mean_score"]["gpbo"], 37.5)
    assert math.isclose(s["bayesmark_mean_score"]["random"], 0.0)
    assert (tmp_path / "plots" / "knn-iris-nll.png").exists()
    assert "37.50" in (tmp_path / "summary.md").read_text()


def test_quick_sweep_writes_its_outputs(tmp_path):  # `python -m benchmarks.sweep --quick`, run in CI (~15 s)
    pytest.importorskip("optuna")  # --quick includes TPE (a dev extra; not on the GPU machine)
    sweep.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "summary.md").exists() and (tmp_path / "summary.json").exists()
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["table"]) == set(sweep.QUICK["problems"].split(","))
    assert len(list((tmp_path / "plots").glob("*.png"))) == 4


@pytest.mark.parametrize("args,message", [
    (["--batch-size", "-2"], "--batch-size: expected an int >= 1, got -2"),
    (["--seeds", "0"], "--seeds: expected an int >= 1, got 0"),
    (["--budget", "0"], "--budget: expected an int >= 1, got 0"),
    (["--first-seed", "-5"], "--first-seed: expected an int >= 0, got -5"),
    (["--workers", "4,x"], "--workers: expected an int >= 1, got 'x'"),
    (["--problems", "nosuch"], "unknown problem 'nosuch'"),
])
def test_bad_command_lines_exit_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sweep.parse(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_sweep_with_nothing_to_run_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no run to do: none of the methods \\['gpbo'\\] applies"):
        sweep.main(["--problems", "dtlz2", "--methods", "gpbo", "--seeds", "1", "--out", str(tmp_path)])
