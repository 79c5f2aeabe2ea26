"""The measurement tools beside the sweep: profile_suggest, sync_check, kernel_evidence."""

from __future__ import annotations

import sys

import pytest
import torch

from benchmarks import kernel_evidence, profile_suggest, sweep, sync_check
from gpbo.search import multistart


def test_profile_splits_one_suggestion_and_leaves_the_profiler_off():
    previous = sys.getprofile()
    row = profile_suggest.profile_one(P=2, n=12, d=3, device="cpu", reps=1)
    assert sys.getprofile() is previous
    assert 0 < row["fit_s"] and 0 < row["acquisition_s"]
    assert row["fit_s"] + row["acquisition_s"] <= row["total_s"]
    iterations = row["lbfgs_iterations"]
    assert set(iterations) == {"fit", "acquisition"}
    for call in (c for calls in iterations.values() for c in calls):
        assert 0 <= call["p50"] <= call["p99"] <= call["max"] <= 100 and call["elements"] >= 1
    assert "kernel_launches" not in row  # CUDA only


def test_profile_accelerator_mode_checks_every_ten_iterations(monkeypatch):
    seen = []
    real = multistart.minimize_lbfgsb

    def spy(*args, **kwargs):
        seen.append((kwargs.get("check_every"), kwargs.get("unit_first")))
        return real(*args, **kwargs)

    monkeypatch.setattr(multistart, "minimize_lbfgsb", spy)
    profile_suggest.profile_one(P=1, n=10, d=2, device="cpu", reps=1, accelerator_mode=True)
    assert seen[-1] == (10, False)


def test_sync_check_without_cuda_skips(capsys):
    if torch.cuda.is_available():
        pytest.skip("counts syncs on a CUDA machine instead")
    assert sync_check.main([]) == 0
    assert "no CUDA device, skipped" in capsys.readouterr().out


def test_lbfgsb_scaling_runs_every_element_to_max_iter():
    row = sync_check.lbfgsb_scaling(10, B=4, D=3, device="cpu")
    assert row["max_iter"] == 10 and row["mean_iterations"] == 10.0 and row["syncs"] == 0


def test_kernel_evidence_compares_rbf_with_matern(tmp_path, capsys):
    sweep.main(["--problems", "hartmann6", "--methods", "gpbo", "--seeds", "2", "--budget", "12",
                "--out", str(tmp_path), "--no-report"])
    kernel_evidence.main(["rbf", "--n", "12", "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert "hartmann6" in out and "RBF preferred on" in out and "/2 seeds" in out


def test_es_oracle_counts_the_stopped_winners(tmp_path, monkeypatch, capsys):
    """A stopped job whose true final beats the run's best is counted lost, and sets the oracle regret."""
    import json
    from types import SimpleNamespace

    from benchmarks import es_oracle

    finals = {1.0: 0.5, 2.0: 3.0}  # the stopped jobs' true values at max_step (minimised)
    problem = SimpleNamespace(max_step=3, trajectory=lambda p: iter([(9.0, 1.0), (9.0, 1.0), (finals[p["x"]], 1.0)]))
    monkeypatch.setattr(es_oracle, "get_mf", lambda name: problem)
    base = {"method": "gpbo_es", "problem": "mf_lcbench_t", "workers": 4, "seed": 0}
    lines = [
        {**base, "kind": "job", "params": {"x": 0.0}, "start_step": 1, "values": [5.0, 4.0, 2.0], "stopped": False},
        {**base, "kind": "job", "params": {"x": 1.0}, "start_step": 1, "values": [6.0], "stopped": True},
        {**base, "kind": "job", "params": {"x": 2.0}, "start_step": 1, "values": [7.0, 6.5], "stopped": True},
        {**base, "kind": "run", "optimum": 0.25},
        {**base, "method": "asha", "kind": "run", "optimum": 0.25},  # another method: ignored
    ]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n{cut")
    es_oracle.main([str(tmp_path)])
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row == "| mf_lcbench_t | 4 | 1 | 1.75 | 0.25 | 1 | 2 / 3 | 1.5 |"


def test_async_workers_tells_every_evaluation_once(monkeypatch, capsys):
    """Four workers, a budget of 14 on Branin: every asked trial is told, and the report has one line per problem."""
    from benchmarks import async_workers

    told = []
    tell = async_workers.gpbo.Optimizer.tell
    monkeypatch.setattr(async_workers.gpbo.Optimizer, "tell", lambda self, t, v: (told.append(t.id), tell(self, t, v))[1])
    monkeypatch.setitem(async_workers.PROBLEMS, "branin", (*async_workers.PROBLEMS["branin"][:3], 14))
    async_workers.main(["--problems", "branin", "--acquisitions", "auto", "--seeds", "1"])
    assert sorted(told) == list(range(14))
    assert capsys.readouterr().out.splitlines()[-1].startswith("branin: auto ")


def test_es_constrained_tells_the_epoch_time_and_compares_the_two_methods(monkeypatch, capsys):
    """A tiny run on LCBench 3945: each trial tells its first-epoch time; the budget bounds the epochs spent."""
    pytest.importorskip("onnxruntime")
    from benchmarks import es_constrained, lcbench

    told = []
    tell = es_constrained.gpbo.Optimizer.tell
    monkeypatch.setattr(es_constrained.gpbo.Optimizer, "tell", lambda self, t, v: told.append((tell(self, t, v), v)) or told[-1][0])
    es_constrained.main(["--tasks", "3945", "--seeds", "1", "--budget", "2", "--reference-configs", "500"])
    for trial, values in told:
        first = lcbench.curves("3945", [[float(trial.params[k]) for k in lcbench.PARAMS]], epochs=1)[1][0, 0]
        assert values["sec_per_epoch"] == pytest.approx(first)
    assert sum(len(trial.steps) for trial, _ in told) == 2 * 2 * lcbench.EPOCHS  # 2 methods, 2 full trainings each
    assert capsys.readouterr().out.splitlines()[-1].startswith("task 3945, 2 trainings: median regret, early stopping")
