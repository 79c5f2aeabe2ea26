"""Kill test: SIGKILL a `minimize` with storage at random moments, resume, check nothing is lost.

Each run is a child process (forked from a forkserver that imported gpbo once)
that resumes the study and runs ``minimize`` for the trials still missing from
the budget. The objective logs every evaluation it starts and finishes (a
trial started twice was re-asked after a kill), and a callback
logs every trial whose tell returned (the tell is committed by then). After
the kills, a last run completes the budget, and the test checks that every
reported trial is in the study exactly once with its value, that ids are
0..budget-1 without gaps or duplicates, and that no trial is left running.
The multi-objective variant tells a dict of metrics (two objectives and a
constraint) and checks every metric of every trial the same way. The
reporting variant's objective takes a trial handle and reports a learning
curve (steps 1..4, sleeping between reports); every trial must end with its
whole curve, each step stored once with its value. With a stopping rule
(ASHA) the objective breaks when told to: a trial then ends PRUNED, valued
at its last report, with that prefix of its curve stored once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time

import pytest

import gpbo
from gpbo.errors import InvalidArgumentError
from gpbo.trial import TrialState

SPACE = {"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(-1.0, 1.0), "c": gpbo.Categorical(["a", "b", "c"])}


def objective(p: dict) -> float:
    return (p["x"] - 0.3) ** 2 + (p["y"] + 0.2) ** 2 + 0.1 * "abc".index(p["c"])


def metrics(p: dict) -> dict:
    """The multi-objective variant's metrics: two objectives and a constrained one."""
    return {"loss": objective(p), "size": p["x"] + "abc".index(p["c"]), "mem": p["y"]}


MULTI = {"objectives": {"loss": "minimize", "size": "minimize"}, "constraints": {"mem": ("<=", 0.5)}}


MAX_STEP = 4


def at_step(p: dict, step: int) -> float:
    """The reporting variant's learning curve: reaches ``objective(p)`` at ``MAX_STEP``."""
    return objective(p) + (MAX_STEP - step) / 10


def append_line(path: str, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_lines(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.endswith("\n")]  # a killed write may leave half a line


def finished_trials(db: str) -> int:
    try:
        return sum(t.state is not TrialState.RUNNING for t in gpbo.load_study(db).trials)
    except InvalidArgumentError:  # killed before the study was created
        return 0


def child(db: str, logs: str, budget: int, seed: int, ready, multi: bool = False, reporting: bool = False,
          rule: str | None = None) -> None:
    """One run: resume the study and evaluate the trials still missing; sets ``ready`` once started."""
    rng = random.Random(seed)

    def evaluate(p: dict) -> float | dict:
        append_line(logs + ".started", {"params": p})
        time.sleep(rng.uniform(0.0, 0.15))
        value = metrics(p) if multi else objective(p)
        append_line(logs + ".evaluated", {"params": p, "value": value})
        return value

    def train(p: dict, trial: gpbo.TrialHandle) -> float:
        append_line(logs + ".started", {"params": p})
        for step in range(1, MAX_STEP + 1):
            time.sleep(rng.uniform(0.0, 0.04))
            trial.report(at_step(p, step), step)
            if trial.should_stop():
                break
        append_line(logs + ".evaluated", {"params": p, "value": at_step(p, step)})
        return at_step(p, step)

    def reported(opt: gpbo.Optimizer, trial: gpbo.Trial) -> None:
        told = dict(trial.values) if multi else trial.value
        append_line(logs + ".reported", {"id": trial.id, "params": trial.params, "value": told})

    missing = budget - finished_trials(db)
    ready.set()
    if missing > 0:
        settings = {"n_initial": 6}
        if reporting:
            gpbo.minimize(train, SPACE, missing, seed=0, storage=db, callbacks=[reported], max_step=MAX_STEP,
                          settings={**settings, "early_stopping": rule})
            return
        gpbo.minimize(evaluate, SPACE, missing, seed=0, storage=db, callbacks=[reported], settings=settings,
                      **(MULTI if multi else {}))


def kill_and_resume(tmp_path, n_kills: int, budget: int, max_delay: float, multi: bool = False,
                    reporting: bool = False, rule: str | None = None) -> dict:
    """Runs the child until ``n_kills`` SIGKILLs landed, then to completion; returns the counts."""
    db, logs = str(tmp_path / "study.db"), str(tmp_path / "log")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["gpbo"])
    rng, kills, runs, progressed = random.Random(0), 0, 0, 0
    while kills < n_kills and finished_trials(db) < budget:
        before = finished_trials(db)
        ready = context.Event()
        proc = context.Process(target=child, args=(db, logs, budget, runs, ready, multi, reporting, rule))
        proc.start()
        runs += 1
        ready.wait(60)
        proc.join(rng.uniform(0.0, max_delay))
        if proc.is_alive():
            proc.kill()  # SIGKILL
            kills += 1
        proc.join()
        progressed += finished_trials(db) > before
    ready = context.Event()  # kept referenced until the child has started
    proc = context.Process(target=child, args=(db, logs, budget, runs, ready, multi, reporting, rule))
    proc.start()
    proc.join(600)
    assert proc.exitcode == 0

    trials = gpbo.load_study(db).trials
    reported, evaluated = read_lines(logs + ".reported"), read_lines(logs + ".evaluated")
    assert [t.id for t in trials] == list(range(budget))  # budget met, no gap, no duplicate id
    whole = {t.id: t.state is TrialState.COMPLETE for t in trials}
    assert all(t.state in ((TrialState.COMPLETE,) if rule is None else (TrialState.COMPLETE, TrialState.PRUNED))
               for t in trials)
    assert len({r["id"] for r in reported}) == len(reported)  # each trial told once
    told = [dict(t.values) if multi else t.value for t in trials]
    for r in reported:  # every reported evaluation is in the study, as reported
        assert (trials[r["id"]].params, told[r["id"]]) == (r["params"], r["value"])
    assert all(v == (metrics(t.params) if multi else at_step(t.params, t.last_step or MAX_STEP))
               for t, v in zip(trials, told, strict=True))
    if reporting:  # every curve whole (or, stopped, a prefix ending below MAX_STEP), each step once, with its value
        for t in trials:
            assert t.steps == tuple((k, at_step(t.params, k)) for k in range(1, int(t.last_step) + 1))
            assert (t.last_step == MAX_STEP) == whole[t.id]
    started = read_lines(logs + ".started")
    distinct = {json.dumps(e["params"], sort_keys=True) for e in started}
    return {"kills": kills, "runs": runs + 1, "runs_that_told_a_trial": progressed, "trials": budget, "reported": len(reported),
            "evaluations_started": len(started), "evaluations_finished": len(evaluated),
            "trials_re_asked": len(started) - len(distinct), "pruned": sum(not w for w in whole.values())}


def test_kill_and_resume_three_times(tmp_path):
    counts = kill_and_resume(tmp_path, n_kills=3, budget=8, max_delay=0.4)
    assert counts["kills"] == 3


def test_kill_and_resume_a_multi_objective_study(tmp_path):
    counts = kill_and_resume(tmp_path, n_kills=3, budget=8, max_delay=0.4, multi=True)
    assert counts["kills"] == 3
    study = gpbo.load_study(tmp_path / "study.db")
    assert study.metrics.arguments() == MULTI and all(set(t.values) == {"loss", "size", "mem"} for t in study.trials)


def test_kill_and_resume_a_study_whose_objective_reports_a_curve(tmp_path):
    counts = kill_and_resume(tmp_path, n_kills=3, budget=8, max_delay=0.4, reporting=True)
    assert counts["kills"] == 3


def test_kill_and_resume_a_study_whose_rule_stops_trials(tmp_path):
    counts = kill_and_resume(tmp_path, n_kills=3, budget=10, max_delay=0.4, reporting=True, rule="asha")
    assert counts["kills"] == 3 and counts["pruned"] >= 1


@pytest.mark.slow
def test_kill_and_resume_thirty_times(tmp_path):
    counts = kill_and_resume(tmp_path, n_kills=30, budget=60, max_delay=0.4)
    print("kill test counts:", counts)
    assert counts["kills"] >= 30 and counts["trials_re_asked"] > 0  # some kills hit an evaluation
