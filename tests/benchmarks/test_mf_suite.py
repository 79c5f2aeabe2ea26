"""The multi-fidelity suite: problems, the reference-optimum cache, the virtual-clock simulator, the regret
metric, every available baseline on a tiny budget, a tiny sweep with its report and resume, and gpbo's early
stopping end to end."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
from botorch.test_functions.synthetic import Hartmann

from benchmarks import lcbench, mf_methods, mf_report, mf_sweep, sweep
from benchmarks.mf_problems import MF_SUITE, MFProblem, get_mf
from benchmarks.mf_sim import Job, simulate, simulate_lockstep, simulation
from benchmarks.problems import Real, get


def test_the_suite_lists_the_dev_tasks_hartmann_and_the_mlp():
    assert sweep.SUITES["mf"] == MF_SUITE
    assert MF_SUITE == [f"mf_lcbench_{t}" for t in lcbench.DEV_TASKS] + ["mf_hartmann6", "mf_mlp_digits"]
    assert isinstance(get("mf_lcbench_3945"), MFProblem)  # reachable through benchmarks.problems.get


def test_lcbench_curves_are_finite_and_match_the_surrogate_at_epoch_52():
    X = lcbench.random_configs(4, seed=3)
    acc, cum = lcbench.curves("7593", X)
    assert acc.shape == cum.shape == (4, 52)
    assert np.isfinite(acc).all() and np.isfinite(cum).all()
    assert (np.diff(cum, axis=1) > 0).all()  # cumulative time increases
    np.testing.assert_allclose(acc[:, -1], lcbench.evaluate("7593", torch.tensor(X))[:, 0].numpy(), rtol=1e-6)
    p = get_mf("mf_lcbench_7593")
    steps = list(p.trajectory(p.sample(np.random.default_rng(0))))
    assert len(steps) == 52 and all(math.isfinite(v) and dt > 0 for v, dt in steps)


@pytest.mark.parametrize("task", ["3", "31", "9999"])
def test_lcbench_refuses_tasks_outside_development(task):
    with pytest.raises(ValueError, match="not a development task"):
        get_mf(f"mf_lcbench_{task}")
    with pytest.raises(ValueError, match="not a development task"):
        lcbench.curves(task, lcbench.random_configs(1, 0))
    with pytest.raises(ValueError, match="not a development task"):
        lcbench.reference_optimum(task, 10)


def test_reference_optimum_is_computed_once_and_cached(tmp_path):
    best = lcbench.reference_optimum("3945", 500, cache=tmp_path)
    expected = float(lcbench.evaluate("3945", torch.tensor(lcbench.random_configs(500, 0)))[:, 0].max())
    assert best == pytest.approx(expected, rel=1e-6)
    (path,) = tmp_path.iterdir()
    rec = json.loads(path.read_text())
    assert rec["n"] == 500 and rec["task"] == "3945" and rec["epoch"] == 52
    path.write_text(json.dumps({**rec, "best_val_accuracy": 12.5}))  # a second call reads the cache
    assert lcbench.reference_optimum("3945", 500, cache=tmp_path) == 12.5


def test_hartmann_mf_is_hartmann6_at_the_last_step():
    p = get_mf("mf_hartmann6")
    x = {f"x{i}": 0.1 * (i + 1) for i in range(6)}
    steps = list(p.trajectory(x))
    assert len(steps) == 52 and all(dt == 1.0 for _, dt in steps)
    assert steps[-1][0] == pytest.approx(float(Hartmann(dim=6)(torch.tensor([list(x.values())]))))
    assert p.reference() == pytest.approx(-3.32237, abs=1e-5)


def test_mlp_trains_one_epoch_per_step():
    p = get_mf("mf_mlp_digits")
    it = p.trajectory(p.sample(np.random.default_rng(0)))
    (v1, t1), (v2, t2) = next(it), next(it)  # two epochs only: cheap
    assert all(math.isfinite(v) and v > 0 for v in (v1, v2)) and t1 > 0 and t2 > 0


# ------------------------------------------------------------------ simulator -- #
def _fake_traj(params):
    for i in range(params["n"]):
        yield float(params["v"][i] if "v" in params else i), params["dt"]


class Scripted:
    """Starts the given jobs in order, then nothing; stops a job when ``stop(job, step)``."""

    def __init__(self, jobs, stop=lambda job, step: False):
        self.jobs, self.stop, self.reports, self.finished = list(jobs), stop, [], []

    def ask(self):
        return self.jobs.pop(0) if self.jobs else None

    def report(self, job, step, value):
        self.reports.append((job.id, step))
        return self.stop(job, step)

    def finish(self, job, stopped):
        self.finished.append((job.id, stopped))


def test_virtual_clock_orders_events_with_four_workers(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("the simulator slept"))
    dts = [1.0, 2.0, 3.0, 5.0, 1.0]  # seconds per step of jobs 0..4, three steps each
    m = Scripted([Job({"n": 3, "dt": dt}, stop_at=3) for dt in dts])
    events = []
    jobs = simulate(_fake_traj, m, max_step=3, n_workers=4, step_budget=100,
                    on_event=lambda e: events.append((e.time, e.job.id, e.step, e.cum_steps)))
    # jobs 0-3 start at t=0; job 0 ends at t=3 and job 4 takes its worker; equal times: scheduled first, first.
    assert [(t, j, s) for t, j, s, _ in events] == [
        (1, 0, 1), (2, 1, 1), (2, 0, 2), (3, 2, 1), (3, 0, 3), (4, 1, 2), (4, 4, 1), (5, 3, 1), (5, 4, 2),
        (6, 2, 2), (6, 1, 3), (6, 4, 3), (9, 2, 3), (10, 3, 2), (15, 3, 3)]
    assert [c for *_, c in events] == list(range(1, 16))
    assert (jobs[4].t_start, jobs[4].worker, jobs[4].t_end) == (3.0, 0, 6.0)
    assert [j.t_end for j in jobs] == [3.0, 6.0, 9.0, 15.0, 6.0]
    assert m.finished == [(0, False), (1, False), (4, False), (2, False), (3, False)]


def test_simulator_never_sleeps_and_its_time_is_virtual(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("the simulator slept"))
    m = Scripted([Job({"n": 52, "dt": 3600.0}) for _ in range(16)])
    t0 = time.perf_counter()
    jobs = simulate(_fake_traj, m, max_step=52, n_workers=16, step_budget=10**6)
    assert time.perf_counter() - t0 < 5.0
    assert max(j.t_end for j in jobs) == 52 * 3600.0  # 16 hours of training each, side by side


def test_stop_decisions_budget_cut_and_checkpointed_resume():
    m = Scripted([Job({"n": 5, "dt": 1.0}), Job({"n": 5, "dt": 1.0}, key="a", stop_at=2),
                  Job({"n": 5, "dt": 1.0}, key="a", stop_at=4), Job({"n": 5, "dt": 1.0}, key="a", stop_at=3)],
                 stop=lambda job, step: job.id == 0 and step == 2)
    jobs = simulate(_fake_traj, m, max_step=5, n_workers=1, step_budget=100)
    assert jobs[0].steps == [1, 2] and jobs[0].stopped
    assert jobs[1].steps == [1, 2] and not jobs[1].stopped
    assert (jobs[2].start_step, jobs[2].steps, jobs[2].values) == (3, [3, 4], [2.0, 3.0])  # only new steps paid
    assert (jobs[3].steps, jobs[3].values, jobs[3].t_end - jobs[3].t_start) == ([3], [2.0], 0.0)  # from checkpoint
    m = Scripted([Job({"n": 5, "dt": 1.0}) for _ in range(3)])
    jobs = simulate(_fake_traj, m, max_step=5, n_workers=3, step_budget=4)
    assert sum(len(j.steps) for j in jobs) == 4 and all(j.stopped for j in jobs)  # cut by the budget


# --------------------------------------------------------------------- metric -- #
def test_regret_against_steps_and_time_on_a_hand_made_trace():
    run = {"trace": [[52, 10.0, 5.0], [104, 30.0, 3.0], [300, 31.0, 3.5]], "optimum": 1.0}
    assert mf_report.regret(run, 51) == math.inf  # nothing reached max_step yet
    assert mf_report.regret(run, 52) == mf_report.regret(run, 103) == 4.0
    assert mf_report.regret(run, 520) == 2.0
    assert mf_report.regret(run, 29.9, axis=1) == 4.0 and mf_report.regret(run, 30.0, axis=1) == 2.0
    assert mf_report.regret({**run, "optimum": None}, 520) == 3.0  # unknown optimum: the best value


def test_parallel_speedup_is_the_time_to_reach_the_one_worker_final_regret():
    one = {"trace": [[52, 10.0, 5.0], [520, 100.0, 2.0]], "time": 200.0}
    four = {"trace": [[52, 3.0, 4.0], [208, 20.0, 1.5]], "time": 50.0}
    never = {"trace": [[52, 3.0, 4.0]], "time": 50.0}
    runs = {("m", "p", 1, 0): one, ("m", "p", 4, 0): four, ("m", "p", 1, 1): one, ("m", "p", 4, 1): never}
    s = mf_report.speedups(runs)["p m W=4"]
    assert s["n"] == 2 and s["ratio"] == math.inf  # median of 20 / 200 and inf
    assert s["covered"] == 0.25  # each 4-worker run's clock stopped at 50 s of the 1-worker run's 200 s
    assert s["short"] == 1  # seed 1 never reached 2.0 and stopped at 0.25 < 0.3: undecided
    longer = {**runs, ("m", "p", 4, 1): {**never, "time": 80.0}}
    assert mf_report.speedups(longer)["p m W=4"]["short"] == 0  # ran to 0.4 without reaching it: a miss
    s = mf_report.speedups({k: v for k, v in runs.items() if k[3] == 0})["p m W=4"]
    assert s["ratio"] == 0.1 and s["strict"] == 0.2  # 20 s against the whole 200 s run, and against its last improvement at 100 s


def _scripted_runs(seed: int) -> tuple[Scripted, list[Job]]:
    rng = np.random.default_rng(seed)
    jobs = [Job({"n": 3, "dt": float(rng.uniform(0.5, 3.0))}, stop_at=int(rng.integers(1, 4))) for _ in range(6)]
    return Scripted(jobs, stop=lambda job, step: (job.id + step + seed) % 4 == 0), jobs


def test_lockstep_runs_equal_each_run_alone():
    """Three runs of different lengths (2 or 3 workers, their own stop rules) advanced in lockstep: every
    job (steps, values, times, stops) and every report equals the run simulated alone; each round hands
    ``decide`` one report per unfinished run, in run order."""
    alone, together, rounds = [], [], []
    for seed in range(3):
        m, _ = _scripted_runs(seed)
        alone.append((simulate(_fake_traj, m, max_step=3, n_workers=2 + seed % 2, step_budget=12), m.reports))
    methods = [_scripted_runs(seed)[0] for seed in range(3)]
    runs = [simulation(_fake_traj, m, max_step=3, n_workers=2 + seed % 2, step_budget=12)
            for seed, m in enumerate(methods)]

    def decide(batch):
        rounds.append([k for k, _ in batch])
        return [methods[k].report(e.job, e.step, e.value) for k, e in batch]

    together = simulate_lockstep(runs, decide)
    for (jobs, reports), got, m in zip(alone, together, methods):
        key = [(j.id, j.steps, j.values, j.t_start, j.t_end, j.stopped, j.worker) for j in jobs]
        assert [(j.id, j.steps, j.values, j.t_start, j.t_end, j.stopped, j.worker) for j in got] == key
        assert m.reports == reports
    assert rounds[0] == [0, 1, 2] and all(r == sorted(r) for r in rounds) and len(rounds[-1]) < 3


def test_es_lockstep_times_both_ways(capsys):
    from benchmarks import es_lockstep

    es_lockstep.main(["--seeds", "2", "--budget", "1", "--reps", "1"])
    out = capsys.readouterr().out
    assert "2 of 2 seeds ran the same jobs" in out and "median ratio lockstep / one at a time" in out


def test_gpbo_runs_in_lockstep_record_every_job(tmp_path):
    """Two seeds of gpbo_es in one lockstep group: each run's job lines, trace and step budget as a run alone
    records them (the decisions are batched; the curves themselves are each run's own)."""
    p = get_mf("mf_lcbench_3945")
    store = mf_sweep.MFStore(tmp_path / "results.jsonl")
    recs = mf_sweep.run_group("gpbo_es", p, [0, 1], 2, 4, store)
    store.close()
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    for seed, rec in zip((0, 1), recs):
        jobs = [r for r in lines if r["kind"] == "job" and r["seed"] == seed]
        assert rec["seed"] == seed and rec["cum_steps"] == 4 * 52 == sum(len(j["values"]) for j in jobs)
        assert rec["n_jobs"] == len(jobs) and sorted(j["job"] for j in jobs) == list(range(len(jobs)))
        assert all(j["attempt"] == rec["attempt"] for j in jobs)


def test_run_counts_only_configurations_that_reached_max_step(tmp_path, monkeypatch):
    curves = {0: [0.0, 0.0, 0.0], 1: [9.0, 8.0, 7.0], 2: [6.0, 5.0, 4.0]}
    prob = MFProblem(name="toy", params={"i": Real(0, 2)}, fn=lambda p: 0.0, optimum=1.0, max_step=3,
                     steps_fn=lambda p: ((v, 1.0) for v in curves[p["i"]]))
    m = Scripted([Job({"i": i}) for i in range(3)], stop=lambda job, step: job.id == 0)  # the best one, stopped
    monkeypatch.setattr(mf_methods, "make", lambda *a: m)
    rec = mf_sweep.run_one("scripted", prob, 0, 1, 3, mf_sweep.MFStore(tmp_path / "results.jsonl"))
    assert rec["trace"] == [[4, 4.0, 7.0], [7, 7.0, 4.0]]  # (cum steps, time, best value at step 3)
    assert mf_report.regret(rec, 9) == 3.0 and rec["cum_steps"] == 7 and rec["n_full"] == 2
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["job", "job", "job", "run"] and lines[0]["stopped"]


# ------------------------------------------------------------------ baselines -- #
BASELINES = [m for m in mf_methods.ALL_MF_METHODS if m not in mf_methods.ES_RULES]


@pytest.mark.parametrize("method", BASELINES)
def test_each_baseline_runs_a_tiny_budget(method):
    why = mf_methods.unavailable(method)
    if why:
        pytest.skip(why)
    p = get_mf("mf_lcbench_3945")
    m = mf_methods.make(method, p, 0)
    try:
        jobs = simulate(p.trajectory, m, max_step=52, n_workers=2, step_budget=2 * 52)
    finally:
        if hasattr(m, "close"):
            m.close()
    assert sum(len(j.steps) for j in jobs) == 104
    assert all(math.isfinite(v) for j in jobs for v in j.values)
    assert all(set(j.params) == set(lcbench.PARAMS) for j in jobs)


def test_tiny_sweep_report_and_resume(tmp_path):
    args = ["--problems", "mf_hartmann6", "--methods", "random,tpe_median", "--seeds", "2", "--workers", "1,4",
            "--budget", "2", "--out", str(tmp_path)]
    sweep.main(args)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    runs = [r for r in map(json.loads, lines) if r["kind"] == "run"]
    assert len(runs) == 2 * 2 * 2 and all(r["budget"] == 104 and r["cum_steps"] == 104 for r in runs)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["reference"] == "random" and "mf_hartmann6 W=4 B=2" in summary["table"]
    assert (tmp_path / "plots" / "mf_hartmann6_w4.png").exists()
    sweep.main(args)  # every run is recorded: nothing is redone
    assert (tmp_path / "results.jsonl").read_text().splitlines() == lines


def test_gpbo_early_stopping_end_to_end():
    p = get_mf("mf_lcbench_3945")
    for method in mf_methods.ES_RULES:
        jobs = simulate(p.trajectory, mf_methods.make(method, p, 0), max_step=52, n_workers=4, step_budget=3 * 52)
        assert sum(len(j.steps) for j in jobs) == 156


def test_es_calibration_measures_both_scales_at_each_step():
    from benchmarks import es_calibration

    res = es_calibration.measure("3945", seed=0)
    assert sorted(res) == list(es_calibration.STEPS)
    for k_true, k_backtest in res.values():
        assert math.isfinite(k_true) and math.isfinite(k_backtest) and k_true >= 1.0 and k_backtest >= 1.0


def test_median_curves_speedup_when_per_seed_matches_fail():
    ones = [{"trace": [[52, 10.0, v]], "time": 200.0} for v in (2.0, 3.0, 4.0)]  # median final 3.0
    fours = [{"trace": [[52, t, v]], "time": 50.0} for t, v in ((10.0, 2.5), (30.0, 3.2), (40.0, 2.0))]
    runs = {("m", "p", w, seed): r for seed in range(3) for w, r in ((1, ones[seed]), (4, fours[seed]))}
    s = mf_report.speedups(runs)["p m W=4"]
    assert s["ratio"] == math.inf  # seeds 0 and 1 never reach their own 1-worker final
    assert s["curves"] == 40.0 / 200.0  # the median of 2.5, 3.2, 2.0 reaches 3.0 at t = 40


def test_es_stop_audit_replays_the_rule_on_each_stop(tmp_path, capsys):
    from benchmarks import es_stop_audit

    p = get_mf("mf_lcbench_3945")
    store = mf_sweep.MFStore(tmp_path / "results.jsonl")
    mf_sweep.run_one("gpbo_es", p, 0, 1, 8, store)
    store.close()
    jobs = [r for r in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines()) if r["kind"] == "job"]
    stops = es_stop_audit._stops(jobs, "3945")
    assert 0 < len(stops) <= sum(j["stopped"] for j in jobs[:-1])  # the model's stops, not the median rule's
    assert all(1 <= epoch < 52 and math.isfinite(z) and scale >= 1.0 for epoch, z, scale, _ in stops)
    es_stop_audit.main([str(tmp_path), "--tasks", "3945", "--seeds", "0"])
    assert "task 3945 stops at epochs" in capsys.readouterr().out
