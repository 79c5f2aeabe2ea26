"""Durable studies in an SQLite file, shared safely between processes.

Every ``ask`` and ``tell`` of an `Optimizer` opened with ``storage=`` runs as
one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock), committed before
the call returns:

1. *pull*: read what other processes wrote since this process last looked
   (trials and the study's random-state counters, found through a per-study
   sequence number that every write increases);
2. compute (suggest new points, or check the tell) against that state;
3. write the new or told trials and the counters, then commit.

Holding the write lock through a suggestion serialises suggestions across
processes, so each one sees every other process's running trials as pending
and continues the shared Sobol / seed counters: no trial is lost or handed out
twice, and ids are allocated by the database (``MAX(number) + 1`` inside the
transaction, with ``(study, number)`` as the primary key). The file is in WAL
mode with ``synchronous=FULL``, so a committed ask or tell survives a SIGKILL
of the process (and a power cut).

Each optimizer writes its *owner* token (host, pid, session) on the trials it
asks. A RUNNING trial whose owner is gone (the process died, or the optimizer
was closed or garbage-collected) is an *orphan*; ``ask`` hands orphans out
again before suggesting new points. Owners on other hosts are assumed alive
(SQLite storage is for one machine), and a dead owner whose pid has been
reused looks alive: such a trial stays pending until someone tells it.

Studies with several metrics (``objectives=``) keep their objectives and
constraints in ``studies.metrics`` and every told metric of a trial in
``trials.metric_values`` (JSON; NULL for a plain study). A file written
before those columns existed still opens: the first `SqliteStore` on it adds
them (``ALTER TABLE ... ADD COLUMN``), and `load_study` reads it as it is.

Learning curves (`gpbo.Optimizer.report`) live in the table ``reports``, one
row per ``(trial, step)``, committed with the report (so a SIGKILL loses no
acknowledged report, and a step is never stored twice: it is the key). A
report also raises its trial's ``seq``, so other processes pull the trial
with its whole curve. A trial stopped early (PRUNED) is stored as
``state = 'complete'`` with ``stopped = 1``, which files of every version
accept; one continued later (`gpbo.Settings.resume_stopped`) is
``state = 'running'`` with ``stopped = 1`` until told. Older files gain the
table and the column on open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

from gpbo.errors import GpboError, InvalidArgumentError, InvalidSpaceError, StorageError
from gpbo.metrics import Metrics
from gpbo.owners import owner_alive
from gpbo.space import Space
from gpbo.trial import Trial, TrialState, as_real

__all__ = ["Counters", "NullStore", "Pulled", "SqliteStore", "Storage", "StorageError", "StudyHistory", "check_storage", "load_study"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    space TEXT NOT NULL,
    maximize INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    n_sobol INTEGER NOT NULL DEFAULT 0,
    n_suggest INTEGER NOT NULL DEFAULT 0,
    gp_theta TEXT,
    seq INTEGER NOT NULL DEFAULT 0,
    metrics TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    number INTEGER NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'failed')),
    value REAL,
    error TEXT,
    owner TEXT,
    seq INTEGER NOT NULL,
    metric_values TEXT,
    stopped INTEGER,
    asked_at REAL NOT NULL,
    told_at REAL,
    PRIMARY KEY (study_id, number)
);
CREATE INDEX IF NOT EXISTS trials_by_seq ON trials (study_id, seq);
CREATE TABLE IF NOT EXISTS reports (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    number INTEGER NOT NULL,
    step NUMERIC NOT NULL,
    value REAL NOT NULL,
    reported_at REAL NOT NULL,
    PRIMARY KEY (study_id, number, step)
);
"""
# Columns added after the first schema: (table, column, type); added to older files on open.
_ADDED_COLUMNS = (("studies", "metrics", "TEXT"), ("trials", "metric_values", "TEXT"), ("trials", "stopped", "INTEGER"))
_TRIAL_COLUMNS = "number, params, state, value, error, metric_values, stopped"
_TIMEOUT_S = 600.0  # how long a transaction waits for another process's write lock


@dataclasses.dataclass(frozen=True)
class Counters:
    """A study's shared random state: Sobol points drawn, engine calls, GP warm start."""

    n_sobol: int = 0
    n_suggest: int = 0
    gp_theta: list[list[float]] | None = None


@dataclasses.dataclass(frozen=True)
class Pulled:
    """Changes read from storage.

    Attributes:
        trials: New or changed trials, in id order.
        counters: The study's current counters.
        full: True if ``trials`` is the whole study and replaces the reader's copy.
        continued: Ids of the RUNNING trials among ``trials`` that were
            stopped early and are being continued (`SqliteStore.resume`).
    """

    trials: list[Trial]
    counters: Counters
    full: bool
    continued: frozenset[int] = frozenset()


class NullStore:
    """The storage of an optimizer without a file: every method does nothing."""

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A no-op context."""
        return contextlib.nullcontext()

    def pull(self) -> None:
        """Nothing ever changes behind the optimizer's back."""

    def insert(self, trials: list[Trial], owner: str) -> None:
        """Does nothing."""

    def tell(self, trial: Trial) -> None:
        """Does nothing."""

    def report(self, trial_id: int, step: float, value: float) -> None:
        """Does nothing."""

    def resume(self, trial_id: int, owner: str) -> None:
        """Does nothing."""

    def orphans(self) -> list[int]:
        """No trial outlives its optimizer."""
        return []

    def claim(self, ids: list[int], owner: str) -> None:
        """Does nothing."""

    def save_counters(self, counters: Counters) -> None:
        """Does nothing."""

    def close(self) -> None:
        """Does nothing."""


@dataclasses.dataclass(frozen=True)
class StudyHistory:
    """A stored study, for analysis (see `load_study`).

    Attributes:
        name: The study name.
        space: Its search space.
        maximize: True if the objective is maximised (a plain study).
        trials: All trials in id order (RUNNING ones included).
        timestamps: ``(asked_at, told_at)`` Unix times per trial (None while running).
        metrics: The study's objectives and constraints (`gpbo.metrics.Metrics`).
    """

    name: str
    space: Space
    maximize: bool
    trials: list[Trial]
    timestamps: list[tuple[float, float | None]]
    metrics: Metrics = dataclasses.field(default_factory=Metrics)

    @property
    def best(self) -> Trial | None:
        """The feasible COMPLETE trial with the best value (first one on ties); None if none.

        Raises:
            InvalidArgumentError: In a study with several objectives (use `pareto_front`).
        """
        return self.metrics.best(self.trials)

    @property
    def pareto_front(self) -> list[Trial]:
        """The feasible COMPLETE trials no other feasible one dominates, in id order."""
        return self.metrics.pareto_front(self.trials)

    def to_dataframe(self) -> Any:
        """One row per trial: id, state, value, error, asked_at, told_at, then ``values_<name>`` per
        metric (studies with ``objectives=``), then ``params_<name>`` per parameter (Optuna's
        ``trials_dataframe`` names, so no metric or parameter name collides with another column).

        Raises:
            ImportError: If pandas is not installed.
        """
        try:
            import pandas
        except ImportError as exc:
            raise ImportError('StudyHistory.to_dataframe needs pandas: pip install "gpbo[pandas]"') from exc
        rows = [
            {"id": t.id, "state": t.state.value, "value": t.value, "error": t.error, "asked_at": asked,
             "told_at": told, **{f"values_{k}": v for k, v in t.values.items()},
             **{f"params_{k}": v for k, v in t.params.items()}}
            for t, (asked, told) in zip(self.trials, self.timestamps, strict=True)
        ]
        columns = ["id", "state", "value", "error", "asked_at", "told_at",
                   *(f"values_{name}" for name in self.metrics.names), *(f"params_{name}" for name in self.space.names)]
        return pandas.DataFrame(rows, columns=columns)


def load_study(storage: str | os.PathLike[str], name: str = "default") -> StudyHistory:
    """Reads a stored study, without opening it for asks and tells.

    Args:
        storage: Path of the SQLite file.
        name: The study name.

    Raises:
        InvalidArgumentError: If the arguments have wrong types or the study does not exist.
        StorageError: If the file cannot be read.
    """
    path, name = _check_path(storage), _check_name(name)
    if not os.path.exists(path):
        raise InvalidArgumentError(f"storage {path!r} does not exist")
    with contextlib.closing(_connect_read_only(path)) as conn, _translated(path):
        has_studies = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'studies'").fetchone()
        missing = {c for _, c, _ in _missing_columns(conn)} if has_studies else set()  # a file from an earlier gpbo
        metrics, values, stopped = (c if c not in missing else "NULL" for c in ("metrics", "metric_values", "stopped"))
        row = has_studies and conn.execute(
            f"SELECT id, space, maximize, {metrics} FROM studies WHERE name = ?", (name,)).fetchone()
        if not row:
            raise InvalidArgumentError(f"storage {path!r} has no study named {name!r}")
        rows = conn.execute(
            f"SELECT number, params, state, value, error, {values}, {stopped}, asked_at, told_at FROM trials"
            " WHERE study_id = ? ORDER BY number", (row[0],)
        ).fetchall()
        has_reports = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'reports'").fetchone()
        curves = _curves(conn, row[0], "") if has_reports else {}
        spec = Metrics.from_dict(None if row[3] is None else json.loads(row[3]), maximize=bool(row[2]))
        return StudyHistory(
            name=name, space=Space.from_dict(json.loads(row[1])), maximize=bool(row[2]),
            trials=[_trial(r, curves.get(r[0], ())) for r in rows], timestamps=[(r[7], r[8]) for r in rows],
            metrics=spec,
        )


class SqliteStore:
    """One study in an SQLite file, opened for asks and tells by one optimizer.

    Args:
        path: The SQLite file (created if missing).
        name: The study name (created if missing).
        space: The optimizer's space; must equal the stored one.
        maximize: Must equal the stored direction.
        seed: The stored seed is used; a different explicit seed is an error.
            A new study stores ``seed``.
        metrics: `gpbo.metrics.Metrics.to_dict` of the optimizer's metrics;
            must equal the stored ones (None: a plain study).

    Raises:
        InvalidSpaceError: If the study was created with another space.
        InvalidArgumentError: If ``maximize``, ``metrics`` or ``seed`` differ from the study's.
        StorageError: If the file cannot be opened or is not a gpbo study.
    """

    def __init__(self, path: str, name: str, *, space: Space, maximize: bool, seed: int, seed_given: bool,
                 metrics: dict[str, Any] | None = None) -> None:
        self._path, self._name = path, name
        self._conn = _connect(path)
        self._seen = -1  # study seq of the last pull; -1: the next pull returns everything
        with self.transaction(), _translated(path):
            for statement in _SCHEMA.split(";")[:-1]:  # not executescript: it would commit
                self._conn.execute(statement)
            for table, column, kind in _missing_columns(self._conn):  # a file from an earlier gpbo
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            self._study, self.seed = self._open_study(space, maximize, seed, seed_given, metrics)

    @property
    def name(self) -> str:
        """The study name."""
        return self._name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Holds SQLite's write lock; commits on success, rolls back on an exception."""
        with _translated(self._path):
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._seen = -1  # the caller's view may hold rolled-back changes: reload it all
            with _translated(self._path):
                self._conn.execute("ROLLBACK")
            raise
        with _translated(self._path):
            self._conn.execute("COMMIT")

    def pull(self) -> Pulled | None:
        """What was written since the last pull; None if nothing was."""
        full = self._seen < 0
        with _translated(self._path):
            seq, n_sobol, n_suggest, theta = self._conn.execute(
                "SELECT seq, n_sobol, n_suggest, gp_theta FROM studies WHERE id = ?", (self._study,)
            ).fetchone()
            if seq == self._seen:
                return None
            rows = self._conn.execute(
                f"SELECT {_TRIAL_COLUMNS} FROM trials"
                " WHERE study_id = ? AND seq > ? ORDER BY number", (self._study, self._seen)
            ).fetchall()
            curves = _curves(self._conn, self._study, self._seen) if rows else {}
            counters = Counters(n_sobol, n_suggest, None if theta is None else json.loads(theta))
            continued = frozenset(r[0] for r in rows if r[2] == TrialState.RUNNING.value and r[6])
            pulled = Pulled(trials=[_trial(r, curves.get(r[0], ())) for r in rows], counters=counters, full=full,
                            continued=continued)
        self._seen = seq
        return pulled

    def insert(self, trials: list[Trial], owner: str) -> None:
        """Adds new trials; the database allocates their ids, which must equal ``trial.id``."""
        seq, now = self._bump(), time.time()
        for t in trials:
            told_at = None if t.state is TrialState.RUNNING else now
            with _translated(self._path):
                (number,) = self._conn.execute(
                    "INSERT INTO trials (study_id, number, params, state, value, error, metric_values, stopped, owner,"
                    " seq, asked_at, told_at)"
                    " SELECT :study, COALESCE(MAX(number), -1) + 1, :params, :state, :value, :error, :values, :stopped,"
                    " :owner, :seq, :asked_at, :told_at FROM trials WHERE study_id = :study RETURNING number",
                    {"study": self._study, "params": json.dumps(t.params), "state": _state(t), "value": t.value,
                     "stopped": _stopped(t),
                     "error": t.error, "values": _values_json(t), "owner": owner, "seq": seq, "asked_at": now,
                     "told_at": told_at},
                ).fetchone()
            if number != t.id:
                raise StorageError(f"study {self._name!r}: the database gave trial id {number}, expected {t.id}")

    def tell(self, trial: Trial) -> None:
        """Records the outcome of a RUNNING trial."""
        with _translated(self._path):
            cursor = self._conn.execute(
                "UPDATE trials SET state = ?, value = ?, error = ?, metric_values = ?, stopped = ?, seq = ?, told_at = ?"
                " WHERE study_id = ? AND number = ? AND state = 'running'",
                (_state(trial), trial.value, trial.error, _values_json(trial), _stopped(trial), self._bump(),
                 time.time(), self._study, trial.id),
            )
        if cursor.rowcount != 1:
            raise StorageError(f"study {self._name!r}: trial {trial.id} is not running in the database")

    def report(self, trial_id: int, step: float, value: float) -> None:
        """Adds ``(step, value)`` to the curve of a RUNNING trial and raises its ``seq``."""
        with _translated(self._path):
            cursor = self._conn.execute(
                "UPDATE trials SET seq = ? WHERE study_id = ? AND number = ? AND state = 'running'",
                (self._bump(), self._study, trial_id))
            if cursor.rowcount != 1:
                raise StorageError(f"study {self._name!r}: trial {trial_id} is not running in the database")
            self._conn.execute(
                "INSERT INTO reports (study_id, number, step, value, reported_at) VALUES (?, ?, ?, ?, ?)",
                (self._study, trial_id, step, value, time.time()))

    def resume(self, trial_id: int, owner: str) -> None:
        """Makes a trial that was stopped early RUNNING again under ``owner``, its curve kept (a continued trial).

        It is stored ``state = 'running'`` with ``stopped = 1`` until told.
        """
        with _translated(self._path):
            cursor = self._conn.execute(
                "UPDATE trials SET state = 'running', value = NULL, error = NULL, metric_values = NULL, stopped = 1,"
                " owner = ?, seq = ?, told_at = NULL"
                " WHERE study_id = ? AND number = ? AND state = 'complete' AND stopped = 1",
                (owner, self._bump(), self._study, trial_id))
        if cursor.rowcount != 1:
            raise StorageError(f"study {self._name!r}: trial {trial_id} was not stopped early in the database")

    def orphans(self) -> list[int]:
        """Ids of RUNNING trials whose owner is gone, increasing."""
        with _translated(self._path):
            rows = self._conn.execute(
                "SELECT number, owner FROM trials WHERE study_id = ? AND state = 'running' ORDER BY number",
                (self._study,),
            ).fetchall()
        return [number for number, owner in rows if not owner_alive(owner)]

    def claim(self, ids: list[int], owner: str) -> None:
        """Makes ``owner`` the owner of the RUNNING trials ``ids``."""
        with _translated(self._path):
            self._conn.executemany(
                "UPDATE trials SET owner = ? WHERE study_id = ? AND number = ?",
                [(owner, self._study, i) for i in ids],
            )

    def save_counters(self, counters: Counters) -> None:
        """Stores the study's random-state counters."""
        theta = None if counters.gp_theta is None else json.dumps(counters.gp_theta)
        with _translated(self._path):
            self._conn.execute(
                "UPDATE studies SET n_sobol = ?, n_suggest = ?, gp_theta = ? WHERE id = ?",
                (counters.n_sobol, counters.n_suggest, theta, self._study),
            )
        self._bump()

    def close(self) -> None:
        """Closes the connection (committed writes are already on disk)."""
        self._conn.close()

    def _bump(self) -> int:
        """Increases the study's sequence number; returns the new one (also marked as seen)."""
        with _translated(self._path):
            (seq,) = self._conn.execute(
                "UPDATE studies SET seq = seq + 1 WHERE id = ? RETURNING seq", (self._study,)
            ).fetchone()
        self._seen = seq  # the caller holds the write lock and pulled before writing
        return seq

    def _open_study(
        self, space: Space, maximize: bool, seed: int, seed_given: bool, metrics: dict[str, Any] | None
    ) -> tuple[int, int]:
        """Creates the study or checks it against the arguments; returns its id and seed."""
        row = self._conn.execute(
            "SELECT id, space, maximize, seed, metrics FROM studies WHERE name = ?", (self._name,)
        ).fetchone()
        metrics_json = None if metrics is None else json.dumps(metrics)
        if row is None:
            cursor = self._conn.execute(
                "INSERT INTO studies (name, space, maximize, seed, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (self._name, json.dumps(space.to_dict()), int(maximize), seed, metrics_json, time.time()),
            )
            return cursor.lastrowid, seed
        study, stored_space, stored_maximize, stored_seed, stored_metrics = row
        if not isinstance(stored_seed, int) or stored_seed < 0:
            raise StorageError(f"storage {self._path!r} holds malformed data: study {self._name!r} has seed {stored_seed!r:.100}")
        where = f"study {self._name!r} in {self._path!r}"
        difference = space_difference(Space.from_dict(json.loads(stored_space)), space)
        if difference:
            raise InvalidSpaceError(f"{where} was created with another space: {difference}")
        if bool(stored_maximize) != maximize:
            raise InvalidArgumentError(f"{where} has maximize={bool(stored_maximize)}, got maximize={maximize}")
        stored = None if stored_metrics is None else json.loads(stored_metrics)
        if stored != (None if metrics is None else json.loads(metrics_json)):
            raise InvalidArgumentError(
                f"{where} has the metrics {Metrics.from_dict(stored).arguments() or 'of a plain study'}, "
                f"got {Metrics.from_dict(metrics).arguments() or 'a plain study'}")
        if seed_given and seed != stored_seed:
            raise InvalidArgumentError(f"{where} has seed={stored_seed}, got seed={seed}; pass seed=None")
        return study, stored_seed


def space_difference(stored: Space, given: Space) -> str:
    """Describes how ``given`` differs from ``stored``; empty if they are equal."""
    old, new = stored.params, given.params
    parts = []
    if missing := [n for n in old if n not in new]:
        parts.append(f"missing parameters {missing}")
    if extra := [n for n in new if n not in old]:
        parts.append(f"new parameters {extra}")
    parts += [f"parameter {n!r} is {new[n]!r}, stored {old[n]!r}" for n in old if n in new and old[n] != new[n]]
    if not parts and list(old) != list(new):
        parts.append(f"parameter order {list(new)}, stored {list(old)}")
    return "; ".join(parts)


@dataclasses.dataclass(frozen=True)
class Storage:
    """Where a study is kept: an SQLite file and the study's name inside it.

    ``Optimizer(space, storage=gpbo.Storage("runs.db", "mlp"))``; a plain path
    is ``Storage(path)``, the study ``"default"``. Opening an existing study resumes it.

    Attributes:
        path: The SQLite file (str or os.PathLike; created if missing).
        study_name: A non-empty str.

    Raises:
        InvalidArgumentError: If the path or the name is not valid.
    """

    path: str
    study_name: str = "default"

    def __post_init__(self) -> None:
        path, name = check_storage(self.path, self.study_name)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "study_name", name)


def check_storage(storage: Any, name: Any) -> tuple[str, str]:
    """Validates a ``storage`` path and study name; returns them as str."""
    return _check_path(storage), _check_name(name)


def _check_path(storage: Any) -> str:
    if not isinstance(storage, (str, os.PathLike)) or isinstance(storage, bytes):
        raise InvalidArgumentError(f"storage must be a file path (str or os.PathLike), got {type(storage).__name__} {storage!r:.200}")
    path = os.fspath(storage)
    if not isinstance(path, str) or not path or path == ":memory:" or "\0" in path:
        raise InvalidArgumentError(f"storage must be the path of a file, got {path!r:.200}")
    return path


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"study_name must be a non-empty str, got {type(name).__name__} {name!r:.200}")
    return name


def _connect(path: str) -> sqlite3.Connection:
    """Opens ``path`` in autocommit mode (transactions are explicit), WAL, synchronous=FULL."""
    with _translated(path):
        conn = sqlite3.connect(path, timeout=_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except BaseException:
            conn.close()
            raise
    return conn


def _connect_read_only(path: str) -> sqlite3.Connection:
    """Opens ``path`` for reading only, so a study in a read-only file or folder can be read.

    A WAL file needs its shared-memory index: where it cannot be created (a
    read-only folder), the file is opened as immutable (what is in it now).
    """
    uri = "file:" + urllib.parse.quote(os.path.abspath(path))
    with _translated(path):
        try:
            return _open_probed(uri + "?mode=ro")
        except sqlite3.OperationalError:
            return _open_probed(uri + "?mode=ro&immutable=1")


def _open_probed(uri: str) -> sqlite3.Connection:
    """Connects to ``uri`` and reads the schema once (where opening a WAL file fails); closes on failure."""
    conn = sqlite3.connect(uri, uri=True, timeout=_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT 1 FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def _translated(path: str) -> Iterator[None]:
    """Turns SQLite's exceptions into `StorageError` naming the file."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"storage {path!r}: {type(exc).__name__}: {exc}") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, GpboError):
            raise
        raise StorageError(f"storage {path!r} holds malformed data: {type(exc).__name__}: {exc}") from exc


def _missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The `_ADDED_COLUMNS` that the file's tables lack (a file written by an earlier gpbo)."""
    present = {
        table: {r[1] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()}
        for table in {t for t, _, _ in _ADDED_COLUMNS}
    }
    return [(t, c, k) for t, c, k in _ADDED_COLUMNS if c not in present[t]]


def _values_json(trial: Trial) -> str | None:
    return json.dumps(dict(trial.values)) if trial.values else None


def _state(trial: Trial) -> str:
    """The stored state: a PRUNED trial is 'complete' with ``stopped = 1`` (module docstring)."""
    return TrialState.COMPLETE.value if trial.state is TrialState.PRUNED else trial.state.value


def _stopped(trial: Trial) -> int | None:
    return 1 if trial.state is TrialState.PRUNED else None


def _curves(conn: sqlite3.Connection, study: int, seen: int | str) -> dict[int, tuple[tuple[Any, float], ...]]:
    """trial number -> its stored curve, for the trials changed since ``seen`` ("" for every trial)."""
    where = "" if seen == "" else " AND number IN (SELECT number FROM trials WHERE study_id = :study AND seq > :seen)"
    rows = conn.execute(
        f"SELECT number, step, value FROM reports WHERE study_id = :study{where} ORDER BY number, step",
        {"study": study, "seen": seen}).fetchall()
    out: dict[int, list[tuple[Any, float]]] = {}
    for number, step, value in rows:
        out.setdefault(number, []).append((step, value))
    return {k: tuple(v) for k, v in out.items()}


def _trial(row: tuple[Any, ...], steps: tuple[tuple[Any, float], ...] = ()) -> Trial:
    """A stored trial row as a `Trial` (ValueError for a malformed one: `_translated` names the file)."""
    number, params, state, value, error, values, stopped = row[:7]
    state = TrialState.PRUNED if stopped and state == TrialState.COMPLETE.value else TrialState(state)
    params, values = json.loads(params), {} if values is None else json.loads(values)
    if not isinstance(params, dict) or not isinstance(values, dict):
        raise ValueError(f"trial {number}: params and metric values must be JSON objects")
    if value is not None and as_real(value) is None:
        raise ValueError(f"trial {number}: value {value!r:.100} is not a number")
    return Trial(id=number, params=params, state=state, value=value, error=error, values=values, steps=steps)
