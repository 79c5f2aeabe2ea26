"""Tests for gpbo.storage: durable studies, resume, sharing between processes."""

from __future__ import annotations

import gc
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading

import pytest

import gpbo
from gpbo.errors import InvalidArgumentError, InvalidSpaceError, InvalidTrialError
from gpbo.optimizer import Optimizer
from gpbo.space import Categorical, Integer, Real
from gpbo.storage import StorageError, load_study
from gpbo.trial import TrialState

SPACE = {"x": Real(0.0, 1.0), "n": Integer(1, 5), "c": Categorical(["a", "b", 3, None])}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def objective(p: dict) -> float:
    return (p["x"] - 0.3) ** 2 + p["n"] / 10 + (p["c"] == "b")


def run(opt: Optimizer, n: int) -> None:
    for _ in range(n):
        trial = opt.ask()
        opt.tell(trial, objective(trial.params))


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "study.db")


def test_trials_are_written_at_once_and_restored_exactly(db):
    opt = Optimizer(SPACE, storage=gpbo.Storage(db, "s"), seed=3, settings={"n_initial": 4})
    run(opt, 6)
    opt.tell(opt.ask(), ValueError("boom"))
    running = opt.ask()
    reader = sqlite3.connect(db)  # another connection sees every write without any close
    assert reader.execute("SELECT COUNT(*) FROM trials").fetchone() == (8,)
    assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    history = load_study(db, "s")
    assert history.trials == opt.trials and history.trials[7] == running
    assert history.trials[6].error == "ValueError: boom" and history.trials[6].state is TrialState.FAILED
    restored = Optimizer(SPACE, storage=gpbo.Storage(db, "s"))
    assert restored.trials == opt.trials and restored.seed == 3


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight = Optimizer(SPACE, storage=str(tmp_path / "a.db"), seed=5, settings={"n_initial": 4})
    run(straight, 9)
    first = Optimizer(SPACE, storage=str(tmp_path / "b.db"), seed=5, settings={"n_initial": 4})
    run(first, 6)
    first.close()
    resumed = Optimizer(SPACE, storage=str(tmp_path / "b.db"), settings={"n_initial": 4})
    run(resumed, 3)
    assert resumed.trials == straight.trials
    assert len({json.dumps(t.params) for t in resumed.trials}) == 9  # no repeated suggestion


def test_running_trials_come_back_as_pending_and_are_reasked(db):
    opt = Optimizer(SPACE, storage=db, seed=0)
    run(opt, 2)
    lost = opt.ask()
    other = Optimizer(SPACE, storage=db)
    assert other.trials[2] == lost  # pending, and its owner is alive: not handed out
    assert other.ask().id == 3
    del opt
    gc.collect()  # the owner is gone: trial 2 is an orphan
    again = other.ask(2)
    assert [t.id for t in again] == [2, 4] and again[0].params == lost.params
    told = other.tell(2, 1.5)  # told late, by id
    assert told.state is TrialState.COMPLETE and load_study(db).trials[2].value == 1.5


def test_closed_optimizer_refuses_asks_and_tells_and_storage_stays_intact(db):
    opt = Optimizer(SPACE, storage=db, seed=0)
    run(opt, 2)
    trial = opt.ask()
    opt.close()
    opt.close()
    for call in (lambda: opt.tell(trial, 1.0), opt.ask, lambda: opt.tell_many([trial.params], [1.0])):
        with pytest.raises(InvalidArgumentError, match="this optimizer is closed"):
            call()
    assert load_study(db).trials == opt.trials
    with Optimizer(SPACE, storage=db) as resumed:
        assert resumed.ask().id == 2  # handed out again: its optimizer was closed


def test_tell_of_a_trial_told_by_another_process_is_refused(db):
    a, b = Optimizer(SPACE, storage=db, seed=0), Optimizer(SPACE, storage=db)
    trial = a.ask()
    b.tell(trial.id, 1.0)
    with pytest.raises(InvalidTrialError, match="trial 0 was already told"):
        a.tell(trial, 2.0)
    assert a.trials[0].value == 1.0 and a.trials == b.trials == load_study(db).trials


def test_tell_many_and_never_asked_tells_are_stored(db):
    opt = Optimizer(SPACE, storage=db, seed=0)
    opt.tell_many([{"x": 0.5, "n": 2, "c": None}, {"x": 0.1, "n": 1, "c": 3}], [1.0, float("nan")])
    opt.tell({"x": 0.2, "n": 5, "c": "a"}, 0.5)
    stored = load_study(db).trials
    assert stored == opt.trials and [t.state.value for t in stored] == ["complete", "failed", "complete"]
    assert stored[0].params == {"x": 0.5, "n": 2, "c": None} and stored[1].params["c"] == 3


def test_a_failed_write_rolls_back_and_reloads(db, monkeypatch):
    opt = Optimizer(SPACE, storage=db, seed=0)
    run(opt, 2)

    def broken(*args):
        raise StorageError("disk full")

    monkeypatch.setattr(opt._store, "tell", broken)
    trial = opt.ask()
    with pytest.raises(StorageError, match="disk full"):
        opt.tell(trial, 1.0)
    monkeypatch.undo()
    assert opt.trials[2].state is TrialState.RUNNING == load_study(db).trials[2].state
    assert opt.tell(trial, 1.0).value == 1.0 and load_study(db).trials == opt.trials


MISMATCHES = [
    ({**SPACE, "x": Real(0.0, 2.0)}, "parameter 'x' is Real(low=0.0, high=2.0), stored Real(low=0.0, high=1.0"),
    ({"x": SPACE["x"], "n": SPACE["n"]}, "missing parameters ['c']"),
    ({**SPACE, "z": Real(0.0, 1.0)}, "new parameters ['z']"),
    ({"n": SPACE["n"], "x": SPACE["x"], "c": SPACE["c"]}, "parameter order ['n', 'x', 'c'], stored ['x', 'n', 'c']"),
    ({**SPACE, "c": Categorical(["a", "b", 3.0, None])}, "parameter 'c' is Categorical"),
]


@pytest.mark.parametrize("space, message", MISMATCHES)
def test_opening_with_another_space_says_what_differs(db, space, message):
    Optimizer(SPACE, storage=gpbo.Storage(db, "s"), seed=0)
    with pytest.raises(InvalidSpaceError, match=re.escape(message)):
        Optimizer(space, storage=gpbo.Storage(db, "s"))
    Optimizer(space, storage=gpbo.Storage(db, "other"))  # another study in the same file is fine


def test_opening_with_other_settings_raises(db):
    Optimizer(SPACE, storage=db, seed=1)
    with pytest.raises(InvalidArgumentError, match="has maximize=False, got maximize=True"):
        Optimizer(SPACE, storage=db, maximize=True)
    with pytest.raises(InvalidArgumentError, match="has seed=1, got seed=2; pass seed=None"):
        Optimizer(SPACE, storage=db, seed=2)
    assert Optimizer(SPACE, storage=db, seed=1).seed == Optimizer(SPACE, storage=db).seed == 1


BAD_STORAGE = [
    (dict(storage=3), InvalidArgumentError, "storage must be a file path (str or os.PathLike), got int 3"),
    (dict(storage=b"x.db"), InvalidArgumentError, "storage must be a file path"),
    (dict(storage=""), InvalidArgumentError, "storage must be the path of a file, got ''"),
    (dict(storage=":memory:"), InvalidArgumentError, "storage must be the path of a file, got ':memory:'"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_STORAGE)
def test_bad_storage_arguments_raise(db, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Optimizer(SPACE, **{"storage": db, **kwargs})


@pytest.mark.parametrize("args, message", [
    ((3,), "storage must be a file path (str or os.PathLike), got int 3"),
    (("x.db", ""), "study_name must be a non-empty str, got str ''"),
    (("x.db", None), "study_name must be a non-empty str, got NoneType None"),
])
def test_bad_storage_objects_raise_at_construction(args, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        gpbo.Storage(*args)


def test_storage_object_names_the_study(tmp_path):
    where = gpbo.Storage(tmp_path / "s.db", "mine")
    assert where == gpbo.Storage(str(tmp_path / "s.db"), "mine") and where.path == str(tmp_path / "s.db")
    Optimizer(SPACE, storage=where, seed=4).tell({"x": 0.5, "n": 2, "c": "a"}, 1.0)
    assert Optimizer(SPACE, storage=where).seed == 4
    assert Optimizer(SPACE, storage=tmp_path / "s.db").trials == []  # the "default" study is another one


def test_unusable_files_raise_storage_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StorageError, match="junk.db.*file is not a database"):
        Optimizer(SPACE, storage=str(junk))
    with pytest.raises(StorageError, match="unable to open database file"):
        Optimizer(SPACE, storage=str(tmp_path / "no" / "such" / "dir.db"))
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE trials (a)").connection.commit()
    with pytest.raises(StorageError, match="other.db"):
        Optimizer(SPACE, storage=str(other))


def test_load_study_history_and_dataframe(db):
    opt = Optimizer(SPACE, storage=db, seed=0, maximize=True)
    run(opt, 3)
    opt.ask()
    history = gpbo.load_study(db)
    assert history.name == "default" and history.maximize and history.space == gpbo.Space(SPACE)
    assert history.best == opt.best and len(history.timestamps) == 4 and history.timestamps[3][1] is None
    frame = history.to_dataframe()
    assert list(frame.columns) == ["id", "state", "value", "error", "asked_at", "told_at",
                                   "params_x", "params_n", "params_c"]
    assert frame["state"].tolist() == ["complete"] * 3 + ["running"]
    assert frame["params_x"].tolist() == [t.params["x"] for t in opt.trials]


def test_load_study_bad_input(db, tmp_path):
    Optimizer(SPACE, storage=db)
    with pytest.raises(InvalidArgumentError, match="has no study named 'nope'"):
        load_study(db, "nope")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        load_study(str(tmp_path / "missing.db"))
    with pytest.raises(InvalidArgumentError, match="study_name must be a non-empty str"):
        load_study(db, 5)


def test_minimize_with_storage_resumes(db):
    first = gpbo.minimize(objective, SPACE, 4, seed=2, storage=gpbo.Storage(db, "m"))
    second = gpbo.minimize(objective, SPACE, 3, storage=gpbo.Storage(db, "m"))
    assert len(second.trials) == 7 and second.trials[:4] == first.trials
    assert second.best_value == min(t.value for t in second.trials)


def test_keyboard_interrupt_leaves_storage_intact_and_resumable(db):
    calls = []

    def interrupted(p):
        calls.append(p)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return objective(p)

    with pytest.raises(KeyboardInterrupt):
        gpbo.minimize(interrupted, SPACE, 5, seed=0, storage=db)
    stored = load_study(db).trials
    assert [t.state.value for t in stored] == ["complete", "complete", "running"]
    result = gpbo.minimize(objective, SPACE, 3, storage=db)
    assert [t.id for t in result.trials] == [0, 1, 2, 3, 4] and result.trials[2].params == calls[2]
    assert all(t.state is TrialState.COMPLETE for t in result.trials)


def test_threads_sharing_one_optimizer_never_duplicate(db):
    opt = Optimizer(SPACE, storage=db, seed=0, settings={"n_initial": 100})

    def worker():
        for _ in range(5):
            opt.tell(opt.ask(), 1.0)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = load_study(db).trials
    assert [t.id for t in stored] == list(range(20)) and all(t.state is TrialState.COMPLETE for t in stored)


WORKER = textwrap.dedent("""
    import sys
    import gpbo
    path, n, n_initial = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    space = {"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(0.0, 1.0)}
    opt = gpbo.Optimizer(space, storage=gpbo.Storage(path, "shared"), seed=0, settings={"n_initial": n_initial})
    for _ in range(n):
        trial = opt.ask()
        opt.tell(trial, (trial.params["x"] - 0.3) ** 2 + trial.params["y"])
""")


def share_one_study(path: str, n_processes: int, n_trials: int, n_initial: int) -> None:
    env = {**os.environ, "PYTHONPATH": REPO}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, path, str(n_trials), str(n_initial)], env=env)
        for _ in range(n_processes)
    ]
    assert [p.wait(timeout=900) for p in procs] == [0] * n_processes
    trials = load_study(path, "shared").trials
    assert [t.id for t in trials] == list(range(n_processes * n_trials))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert len({json.dumps(t.params) for t in trials}) == len(trials)  # no point handed out twice


def test_processes_share_one_study(db):
    share_one_study(db, n_processes=2, n_trials=5, n_initial=6)


@pytest.mark.slow
def test_four_processes_times_fifty_trials_share_one_study(db):
    share_one_study(db, n_processes=4, n_trials=50, n_initial=10)


def test_load_study_of_an_empty_database_says_there_is_no_study(tmp_path):
    empty = str(tmp_path / "empty.db")
    sqlite3.connect(empty).execute("PRAGMA user_version = 1").connection.close()  # e.g. killed before the schema
    with pytest.raises(InvalidArgumentError, match="has no study named 'default'"):
        load_study(empty)


# ------------------------------------------------------------------ several metrics, older files

MO = {"objectives": {"error": "minimize", "size": "maximize"}, "constraints": {"mem": ("<=", 0.5)}}


def mo_metrics(p: dict) -> dict:
    return {"error": (p["x"] - 0.3) ** 2, "size": p["n"], "mem": p["x"]}


def test_a_multi_objective_study_is_saved_and_resumed(db):
    with Optimizer(SPACE, seed=3, storage=db, settings={"n_initial": 10}, **MO) as opt:  # Sobol only: no engine
        for _ in range(4):
            trial = opt.ask()
            opt.tell(trial, mo_metrics(trial.params))
        opt.tell(opt.ask(), {"error": float("inf"), "size": 1, "mem": 0.1})
        running = opt.ask()
        before = opt.trials
    with Optimizer(SPACE, storage=db, settings={"n_initial": 10}, **MO) as again:
        assert again.trials == before and again.metrics == opt.metrics
        assert again.trials[4].values == {"error": math.inf, "size": 1.0, "mem": 0.1}
        assert again.ask().id == running.id  # the orphan is handed out again
    history = load_study(db)
    assert history.trials == before and history.metrics.arguments()["constraints"] == {"mem": ("<=", 0.5)}
    assert [t.id for t in history.pareto_front] == [t.id for t in opt.pareto_front]
    frame = pytest.importorskip("pandas") and history.to_dataframe()
    assert list(frame.columns[6:9]) == ["values_error", "values_size", "values_mem"]  # "error" is also a column
    assert frame["values_size"].tolist()[:4] == [t.params["n"] for t in before[:4]]
    assert frame["error"].tolist()[4] == before[4].error and frame["values_error"].tolist()[4] == math.inf


@pytest.mark.parametrize("kwargs,message", [
    (dict(), "has the metrics {'objectives': {'error': 'minimize', 'size': 'maximize'}, 'constraints': "
             "{'mem': ('<=', 0.5)}}, got a plain study"),
    (dict(objectives={"error": "minimize", "size": "minimize"}, constraints=MO["constraints"]), "'size': 'minimize'"),
])
def test_reopening_with_other_metrics_is_an_error(db, kwargs, message):
    Optimizer(SPACE, storage=db, **MO).close()
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        Optimizer(SPACE, storage=db, **kwargs)


# The schema of the files gpbo wrote before studies had several metrics (no metrics / metric_values columns).
_OLD_SCHEMA = """
CREATE TABLE studies (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, space TEXT NOT NULL,
    maximize INTEGER NOT NULL, seed INTEGER NOT NULL, n_sobol INTEGER NOT NULL DEFAULT 0,
    n_suggest INTEGER NOT NULL DEFAULT 0, gp_theta TEXT, seq INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE trials (study_id INTEGER NOT NULL REFERENCES studies(id), number INTEGER NOT NULL,
    params TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'failed')), value REAL,
    error TEXT, owner TEXT, seq INTEGER NOT NULL, asked_at REAL NOT NULL, told_at REAL,
    PRIMARY KEY (study_id, number));
CREATE INDEX trials_by_seq ON trials (study_id, seq);
"""


def old_study_file(db: str) -> list[dict]:
    """A study file as the gpbo before this schema wrote it: 3 told trials, one failed, one running."""
    space = gpbo.Space(SPACE).to_dict()
    params = [{"x": 0.1, "n": 2, "c": "a"}, {"x": 0.7, "n": 5, "c": None}, {"x": 0.4, "n": 1, "c": 3},
              {"x": 0.9, "n": 3, "c": "b"}]
    rows = [("complete", 0.5, None), ("complete", 0.25, None), ("failed", None, "ValueError: boom"), ("running", None, None)]
    with sqlite3.connect(db) as conn:
        conn.executescript(_OLD_SCHEMA)
        conn.execute("INSERT INTO studies (name, space, maximize, seed, n_sobol, seq, created_at)"
                     " VALUES ('default', ?, 0, 7, 4, 5, 0.0)", (json.dumps(space),))
        for i, (p, (state, value, error)) in enumerate(zip(params, rows, strict=True)):
            conn.execute("INSERT INTO trials VALUES (1, ?, ?, ?, ?, ?, NULL, ?, 0.0, ?)",  # no owner: an orphan
                         (i, json.dumps(p), state, value, error, i + 1, None if state == "running" else 1.0))
    return params


def test_a_study_file_from_before_several_metrics_still_opens(db):
    params = old_study_file(db)
    history = load_study(db)  # read-only: the file is not changed
    assert [t.value for t in history.trials] == [0.5, 0.25, None, None] and history.best.id == 1
    assert history.metrics.plain and all(t.values == {} for t in history.trials)
    with Optimizer(SPACE, storage=db) as opt:
        assert opt.seed == 7 and [dict(t.params) for t in opt.trials] == params
        assert opt.best.value == 0.25 and [t.id for t in opt.pareto_front] == [1]
        assert opt.ask().id == 3  # the running trial of a dead owner
        opt.tell(3, 0.125)
        trial = opt.ask()
        opt.tell(trial, objective(trial.params))
    assert [t.state for t in load_study(db).trials][3:] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert load_study(db).best.value == min(0.125, objective(trial.params))


@pytest.mark.parametrize("sql,message", [
    ("UPDATE trials SET metric_values = 'garbage'", "holds malformed data: JSONDecodeError"),
    ("UPDATE trials SET params = '[1, 2]'", "params and metric values must be JSON objects"),
    ("UPDATE trials SET value = 'high'", "value 'high' is not a number"),
    ("UPDATE trials SET value = NULL", "malformed trial 0: value must be a real number"),
    ("UPDATE studies SET seed = 'x'", "study 'default' has seed 'x'"),
    ("UPDATE studies SET space = '{'", "holds malformed data: JSONDecodeError"),
])
def test_a_corrupted_file_is_a_storage_error_on_load_or_resume(db, sql, message):
    opt = Optimizer(SPACE, storage=db, seed=0)
    run(opt, 2)
    opt.close()
    with sqlite3.connect(db) as conn:
        conn.execute(sql)
    with pytest.raises(StorageError, match=message):  # on load where the file says it, else when the study resumes
        load_study(db)
        Optimizer(SPACE, storage=db).ask()


def _as_another_user(code: str) -> list[str]:
    """A command running ``code`` in this Python; as nobody when root (who ignores permissions)."""
    command = [sys.executable, "-c", code]
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv")
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    probe = [*command[:-1], "import gpbo"]
    if subprocess.run(probe, capture_output=True, env={**os.environ, "PYTHONPATH": REPO}).returncode != 0:
        pytest.skip("the other user cannot read this Python environment")
    return command


def test_a_study_in_a_read_only_folder_can_be_loaded():
    base = tempfile.mkdtemp()  # not pytest's tmp_path: another user must be able to reach it
    os.chmod(base, 0o755)
    folder = os.path.join(base, "archive")
    os.mkdir(folder)
    path = os.path.join(folder, "study.db")
    try:
        command = _as_another_user(f"import gpbo; print(len(gpbo.load_study({path!r}).trials))")
        opt = Optimizer(SPACE, storage=path, seed=0)
        run(opt, 3)
        opt.close()
        os.chmod(path, 0o444)
        os.chmod(folder, 0o555)
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO})
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(base)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "3"
