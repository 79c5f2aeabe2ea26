"""The ask/tell facade: trial bookkeeping on top of :func:`gpbo.engine.suggest`.

The `Optimizer` owns the seed, the trials and the storage, and runs the engine
with its `gpbo.Settings` (device and dtype included); all the maths is in the engine. Its life cycle:

1. The first ``n_initial`` trials come from a scrambled Sobol sequence
   (categorical and linear integer dims are stratified so that every choice
   gets the same share).
2. Afterwards each `ask` fits the GP to the told trials and maximises the
   acquisition (one engine call for the whole batch). Running trials are
   passed as pending points, so asking again before telling does not repeat.
3. Several metrics: with ``objectives=`` (and ``constraints=``) each trial is
   told a dict of named metrics; `gpbo.metrics.Metrics` checks it and gives
   the engine ``Y (1, n, O)`` with the matching `gpbo.outcomes.Outcomes` in
   its settings. `pareto_front` and `best` hold feasible trials only.
4. Failed trials never enter the GP as numbers. To steer the search away from
   where they happened, they are given the worst completed value (the
   smallest in the maximisation convention); ``benchmarks/failures.py``
   measures this against leaving them out. Without any completed trial the
   optimizer keeps drawing Sobol points.

5. Learning curves (`gpbo.fidelity`): a trial may `report` ``(value,
   step)`` pairs while it trains and ask `should_stop`, which consults the
   settings' ``early_stopping`` rule. A trial that stopped early is PRUNED
   (its value: what it was told, its curve kept), is never `best`, and enters the GP as
   `gpbo.fidelity` describes. With ``max_step`` set, `best` is the best
   trial that reached it. With constraints the rule sees the trials that
   ended infeasible without their curves (`_rivals`); with several
   objectives `report` raises.

Every random draw is a pure function of ``(seed, counter)``, and the GP
hyperparameters that warm-start the next fit are part of the state, so a
restored `state_dict` continues with exactly the same suggestions.

With ``storage=`` every ask and tell is also a committed SQLite transaction
that first reads what other processes wrote (see :mod:`gpbo.storage`): the
trials, the counters and the warm start live in the file, and ``ask`` hands
out the RUNNING trials of dead processes again before suggesting new points.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import secrets
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from gpbo.design import derive_seed, sobol_design
from gpbo.early_stopping import Curves, StoppingRule
from gpbo.early_stopping import get as get_stopping_rule
from gpbo.early_stopping import should_stop_many as stopping_many
from gpbo.early_stopping.model_based import RERUN_TOL
from gpbo.engine import suggest
from gpbo.errors import FitError, GpboError, InvalidArgumentError, InvalidTrialError, StorageError
from gpbo.fidelity import as_step, check_max_step, curves, pruned_values, report_value
from gpbo.metrics import Metrics
from gpbo.outcomes import Outcomes
from gpbo.owners import new_owner, release_owner
from gpbo.settings import Settings, as_settings
from gpbo.space import Real, Space
from gpbo.storage import Counters, NullStore, SqliteStore, Storage
from gpbo.trial import Outcome, Trial, TrialLog, TrialState, as_real
from gpbo.validation import as_list, as_space, check_bool, check_int

__all__ = ["Optimizer"]

_STATE_FORMAT = 2  # 1: maximize and seed among the settings, which had fewer fields; "metrics" may be absent
_MAX_SEED = 2**63
_RUNNING = Outcome(TrialState.RUNNING)


class Optimizer:
    """Bayesian optimisation through ask and tell.

    Args:
        space: A `Space`, or a dict ``name -> Real | Integer | Categorical``.
        settings: A `gpbo.Settings`, or a dict of its fields (validated once
            here); None is the defaults. It holds what shapes a suggestion
            (acquisition, surrogate, kernel, noise, warp, search sizes) and
            where the engine runs (``device``, ``dtype``). Its ``n_initial``
            is the number of trials drawn from the Sobol design before the GP
            takes over, counting every trial (asked or told); None is
            ``max(5, d + 1)``: one more than the dimension, as the GP needs at
            least that many points to learn d lengthscales, and never fewer
            than 5. With ``warm_start=False`` every GP fit starts from the
            prior, not from the previous fit.
        maximize: Maximise the objective instead of minimising it (a study
            without ``objectives=``; with them each objective has its direction).
        seed: Seed of every random draw; None draws one (see `seed`), or
            takes the stored study's.
        storage: Where the study is kept: the path of an SQLite file
            (created if missing; the study ``"default"`` in it), or a
            `gpbo.Storage` naming the file and the study. Opening an existing
            study resumes it. None keeps the study in memory only.
        objectives: None: one objective, told as a number. Else a dict
            ``name -> "minimize" | "maximize"`` of the metrics to optimise;
            each trial is then told a dict of every metric. A hypervolume
            reference point in user units is given as ``name -> (direction,
            value)`` for every objective; without one it is inferred (see
            `gpbo.metrics`, `reference_point`).
        constraints: None, or a dict ``name -> ("<=" | ">=", bound)`` on an
            objective or on a metric that is only a constraint (told in the
            same dict); needs ``objectives``.
        max_step: The step (epoch, data fraction, ...) at which a trial that
            reports its learning curve is complete: a trial told before
            reporting it is PRUNED, a report above it is an error, and the
            early-stopping rule reads it. None: no such bound (a trial is
            PRUNED only when the rule stopped it). Not kept in the storage:
            pass it again when resuming.

    Raises:
        InvalidSpaceError: If ``space`` is not a Space or a valid dict, or
            differs from the stored study's space.
        InvalidArgumentError: If an option has a wrong type or value (an
            unknown direction or operator, ``maximize=True`` with
            ``objectives``, constraints without objectives), or ``maximize``,
            the metrics or an explicit ``seed`` differ from the stored study's.
        StorageError: If the storage file cannot be used.
    """

    def __init__(
        self,
        space: Space | Mapping[str, Any],
        *,
        settings: Settings | Mapping[str, Any] | None = None,
        maximize: bool = False,
        seed: int | None = None,
        storage: str | os.PathLike[str] | Storage | None = None,
        objectives: Mapping[str, Any] | None = None,
        constraints: Mapping[str, Any] | None = None,
        max_step: float | None = None,
    ) -> None:
        self._space = as_space(space)
        self._max_step = check_max_step(max_step)
        self._rule: StoppingRule | None = None  # the settings' early_stopping, resolved on first use
        self._stop_requested: set[int] = set()  # running trials that should_stop answered True for
        self._failed_by_report: set[int] = set()  # trials a non-finite report ended, not yet told
        self._continued: set[int] = set()  # running trials continued after a stop (Settings.resume_stopped)
        self._maximize = check_bool("maximize", maximize)
        self._metrics = Metrics(objectives, constraints, maximize=self._maximize)
        self._settings = _with_outcomes(settings, self._metrics)
        self._seed = secrets.randbits(32) if seed is None else check_int("seed", seed, 0, _MAX_SEED)
        self._device, self._dtype = self._settings.device, self._settings.dtype
        n_initial, d = self._settings.n_initial, self._space.dim
        self._n_initial = max(5, d + 1) if n_initial is None else n_initial
        self._log = TrialLog(d)
        self._n_sobol = 0  # Sobol points drawn so far
        self._n_suggest = 0  # engine calls so far
        self._theta: Tensor | None = None  # (1, d + 1) GP hyperparameters: warm start of the next fit
        self._lock = threading.RLock()
        self._closed = False
        self._store: NullStore | SqliteStore = NullStore()
        if storage is not None:
            where = storage if isinstance(storage, Storage) else Storage(storage)
            self._store = SqliteStore(
                where.path, where.study_name, space=self._space, maximize=self._maximize, seed=self._seed,
                seed_given=seed is not None, metrics=self._metrics.to_dict(),
            )
            self._seed = self._store.seed
        self._owner = new_owner()
        self._finalizer = weakref.finalize(self, _release, self._store, self._owner)
        self._pull()

    @property
    def space(self) -> Space:
        """The search space."""
        return self._space

    @property
    def seed(self) -> int:
        """The seed in use (drawn at construction when None was given)."""
        return self._seed

    @property
    def maximize(self) -> bool:
        """True if the objective is maximised (with ``objectives=``: the first objective; `metrics` has each direction)."""
        return self._metrics.maximizes

    @property
    def metrics(self) -> Metrics:
        """The study's objectives and constraints (a plain study has no ``objectives``)."""
        return self._metrics

    @property
    def settings(self) -> Settings:
        """The settings in use."""
        return self._settings

    @property
    def max_step(self) -> int | float | None:
        """The step at which a reporting trial is complete (None: unbounded)."""
        return self._max_step

    @property
    def n_initial(self) -> int:
        """Number of trials taken from the Sobol design."""
        return self._n_initial

    @property
    def trials(self) -> list[Trial]:
        """A copy of the list of all trials, in id order (with storage: as stored now)."""
        self._refresh()
        return self._log.trials

    @property
    def best(self) -> Trial | None:
        """The COMPLETE trial with the best value (first one on ties); None if none.

        A trial stopped early is PRUNED, not COMPLETE: with ``max_step`` this
        is the best trial that reached ``max_step`` (or never reported).

        With constraints only feasible trials count: None means that no
        COMPLETE trial satisfies the constraints yet.

        Raises:
            InvalidArgumentError: In a study with several objectives (use `pareto_front`).
        """
        return self._metrics.best(self.trials)

    @property
    def pareto_front(self) -> list[Trial]:
        """The feasible COMPLETE trials that no other feasible one dominates, in id order.

        Empty while no COMPLETE trial satisfies the constraints. With one
        objective: the best trials (all of them on ties).
        """
        return self._metrics.pareto_front(self.trials)

    @property
    def reference_point(self) -> dict[str, float] | None:
        """The hypervolume reference point, objective name -> value in user units.

        The one given in ``objectives``, else inferred from the feasible
        COMPLETE trials with `gpbo.pareto.infer_reference_point` (the nadir of
        the front minus 10 % of its range); None while no trial is feasible.
        """
        return self._metrics.reference_point(self.trials)

    def hypervolume(self, ref_point: Mapping[str, float] | None = None) -> float:
        """Hypervolume of the feasible COMPLETE trials, in user units.

        The volume of objective space that the trials dominate and that
        dominates ``ref_point`` (each objective in its own direction: a
        minimised objective counts below its reference value, a maximised
        one above it). 0.0 while no trial is feasible.

        Args:
            ref_point: Objective name -> value, for every objective. None:
                `reference_point` (the one given in ``objectives``, else inferred).

        Raises:
            InvalidArgumentError: With one objective, or a ``ref_point`` that
                misses an objective, names an unknown one or holds a non-finite value.
        """
        if self._metrics.n_objectives < 2:
            raise InvalidArgumentError(
                f"hypervolume needs a study with 2 or more objectives, got {self._metrics.n_objectives} (use best)")
        trials = self.trials
        ref = self._metrics.reference_point(trials) if ref_point is None else self._metrics.check_ref_point(ref_point)
        return 0.0 if ref is None else self._metrics.hypervolume(trials, ref)

    def is_feasible(self, trial: Trial | int) -> bool:
        """Whether the trial (a record or its id) is COMPLETE and satisfies every constraint, as it is stored now.

        Without constraints: whether it is COMPLETE.

        Raises:
            InvalidTrialError: For a trial id this optimizer does not hold.
        """
        self._refresh()
        return self._metrics.feasible(self._log.record(trial))

    def ask(self, n: int | None = None) -> Trial | list[Trial]:
        """Suggests trials to evaluate; they stay RUNNING until told.

        With storage, RUNNING trials left by a process that died (or by a
        closed optimizer) are handed out again first, with their ids and params.
        With ``Settings(resume_stopped=True)``, a suggestion that is the
        configuration of a trial stopped early continues that trial: it comes
        back RUNNING with its id, params and curve, and its objective resumes
        after its ``last_step``; it runs to ``max_step`` (`should_stop` says
        False) unless a report fails it.

        Args:
            n: Number of trials; None asks for one.

        Returns:
            One `Trial` when ``n`` is None, else a list of ``n`` trials.

        Raises:
            InvalidArgumentError: If ``n`` is not an int in [1, 2**31) or the optimizer is closed.
        """
        k = 1 if n is None else check_int("n", n, 1, 2**31)  # far above memory; torch's Sobol needs < 2**63
        with self._session():
            reissued = self._store.orphans()[:k]
            self._store.claim(reissued, self._owner)
            trials = [self._log.get(i) for i in reissued] + self._new_trials(k - len(reissued))
            theta = None if self._theta is None else self._theta.tolist()
            self._store.save_counters(Counters(self._n_sobol, self._n_suggest, theta))
        return trials[0] if n is None else trials

    def tell(self, trial: Trial | int | Mapping[str, Any], value: Any) -> Trial:
        """Records the result of a trial.

        Args:
            trial: A trial returned by `ask`, its id, or a params dict that
                was never asked (it is added as a new trial).
            value: The objective value (a real number, NumPy scalar or 0-d
                tensor) for a COMPLETE trial; an exception instance, NaN or
                ±inf for a FAILED one. In a study with ``objectives=``: a
                dict of every metric (objectives and constraints), each a real
                number; one NaN or ±inf makes the trial FAILED and keeps them all.

        Returns:
            The updated trial record. A trial that a non-finite `report`
            already ended stays FAILED: its first tell returns that record
            (so a training loop that reports, checks `should_stop` and then
            tells needs no special case); a second tell raises.

        Raises:
            InvalidTrialError: If the trial is unknown or already told, the
                params are outside the space, or the value is not a number.
            MetricsError: If the dict lacks a metric, names an unknown one,
                or holds a value that is not a number (the message names it;
                nothing is recorded). Telling the caught error records the
                trial FAILED with the metrics that were real numbers.
            InvalidArgumentError: If the optimizer is closed.
        """
        outcome = self._metrics.parse(value)
        with self._session():
            if isinstance(trial, Mapping):
                return self._add_told([trial], [outcome])[0]
            index = self._known_index(trial)
            if index in self._failed_by_report:
                self._failed_by_report.discard(index)
                return self._log.get(index)
            told = self._log.tell(trial, self._stopped_early(self._log.running_index(trial), outcome))
            self._stop_requested.discard(told.id)
            self._continued.discard(told.id)
            self._store.tell(told)
        return told

    def report(self, trial: Trial | int, value: Any, step: Any) -> Trial:
        """Records an intermediate value of a RUNNING trial (its learning curve, `Trial.steps`).

        Args:
            trial: A RUNNING trial or its id.
            value: The objective at ``step`` (a real number, in the user's
                convention). NaN or ±inf ends the trial as FAILED, its curve kept.
            step: A finite number >= 0 (an epoch, a data fraction, any
                increasing resource), above the trial's last step and at most
                ``max_step``.

        Returns:
            The updated record (FAILED after a non-finite value).

        Raises:
            InvalidTrialError: If the trial is unknown or has ended, the step
                does not increase or is above ``max_step``, or the value is not
                a number. Nothing is recorded.
            InvalidArgumentError: In a study with several objectives (a curve
                is of one objective), or if the optimizer is closed. With
                constraints the value is the objective's; the constraints are
                told at the end, as in any trial.
        """
        if self._metrics.n_objectives > 1:
            raise InvalidArgumentError(
                "report needs a study with one objective (a curve is of one objective); "
                f"this one has the objectives {[o.name for o in self._metrics.objectives]}")
        with self._session():
            record = self._log.get(self._log.running_index(trial, "a report"))
            step, number = as_step(step, record, self._max_step), report_value(value, record)
            if not math.isfinite(number):
                failed = Outcome(TrialState.FAILED, error=f"non-finite value {number} reported at step {step}")
                told = self._log.tell(record.id, failed)
                self._store.tell(told)
                self._failed_by_report.add(told.id)
                self._continued.discard(told.id)
                return told
            record = self._log.report(record.id, step, number)
            self._store.report(record.id, step, number)
        return record

    def should_stop(self, trial: Trial | int) -> bool:
        """True if the trial should stop now, as the settings' ``early_stopping`` rule decides.

        False without a rule, before the trial's first report, or for a trial
        continued after a stop (``Settings.resume_stopped``: it runs to
        ``max_step``); True for a trial that has ended (a non-finite report
        failed it). Once True, the trial is PRUNED when told (its value: the
        told one), unless its last report is at ``max_step``: a trial that
        reached it is COMPLETE.

        Raises:
            InvalidTrialError: If the trial is unknown or from another optimizer.
            InvalidArgumentError: If the rule cannot be built (``"model"``
                before its module exists), or the optimizer is closed.
        """
        return Optimizer.should_stop_many([(self, trial)])[0]

    @staticmethod
    def should_stop_many(pairs: Sequence[tuple[Optimizer, Trial | int]]) -> list[bool]:
        """`should_stop` for one running trial in each of several optimizers (studies), decided together.

        The rules that batch (the model-based default: one curve-model
        computation for all the studies, `gpbo.early_stopping.should_stop_many`)
        decide in one call; each answer is what that study's `should_stop`
        says alone, up to floating-point rounding. For sweeps of many
        early-stopping studies in one process.

        Raises:
            InvalidArgumentError: If an entry is not an `Optimizer`, an
                optimizer appears twice, or one is closed.
            InvalidTrialError: If a trial is unknown or from another optimizer.
        """
        pairs = as_list("pairs", pairs)
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], Optimizer)):
                raise InvalidArgumentError(f"should_stop_many takes (Optimizer, trial) pairs, got {pair!r:.100}")
        opts = [opt for opt, _ in pairs]
        if len({id(opt) for opt in opts}) != len(opts):
            raise InvalidArgumentError("should_stop_many takes one trial per optimizer; an optimizer appears twice")
        answers: list[bool] = [True] * len(pairs)
        asked: list[tuple[int, StoppingRule, Curves, int]] = []
        with contextlib.ExitStack() as locks:
            for opt in sorted(opts, key=id):  # one global order: two concurrent calls cannot deadlock
                locks.enter_context(opt._lock)
            for k, (opt, trial) in enumerate(pairs):
                with opt._session():
                    record = opt._log.get(opt._known_index(trial))
                    if record.state is not TrialState.RUNNING or record.id in opt._stop_requested:
                        continue
                    rule = opt._stopping_rule()
                    if rule is None or not record.steps or record.id in opt._continued:
                        answers[k] = False
                        continue
                    asked.append((k, rule, opt._rivals(), record.id))
            decided = stopping_many([(rule, curves, index) for _, rule, curves, index in asked])
            for (k, _, _, index), stop in zip(asked, decided):
                answers[k] = stop
                if stop:
                    opts[k]._stop_requested.add(index)
        return answers

    def tell_many(self, params: Iterable[Mapping[str, Any]], values: Iterable[Any]) -> list[Trial]:
        """Records many evaluations that were never asked, without fitting.

        Args:
            params: Params dicts, one per evaluation.
            values: Their values, as for `tell`.

        Returns:
            The new trials, in order.

        Raises:
            InvalidTrialError: If the lengths differ, some params are outside
                the space or some value is not a number. Nothing is recorded.
            InvalidArgumentError: If the optimizer is closed.
        """
        params, values = as_list("params", params), as_list("values", values)
        if len(params) != len(values):
            raise InvalidTrialError(f"tell_many got {len(params)} params but {len(values)} values")
        outcomes = [self._metrics.parse(v) for v in values]
        with self._session():
            return self._add_told(params, outcomes)

    def close(self) -> None:
        """Ends this optimizer: later asks and tells raise, the storage file is closed.

        Its RUNNING trials stay in the storage and are handed out again by
        the next `ask` of an optimizer on the same study. Closing twice is fine.
        """
        with self._lock:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> Optimizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def state_dict(self) -> dict[str, Any]:
        """Returns the whole state as a plain, JSON-serialisable dict.

        The GP is kept as its hyperparameters only (its data are the trials). The
        settings are kept as `Settings.to_dict`: a custom acquisition object or
        surrogate factory is saved as None and must be passed again to
        `from_state_dict`. The storage is not part of the state.
        """
        trials = self.trials  # refreshes from storage
        return {
            "format": _STATE_FORMAT,
            "max_step": self._max_step,
            "space": self._space.to_dict(),
            "settings": self._settings.to_dict(),
            "maximize": self._maximize,
            "metrics": self._metrics.to_dict(),
            "seed": self._seed,
            "counters": {"n_sobol": self._n_sobol, "n_suggest": self._n_suggest},
            "gp_theta": None if self._theta is None else self._theta.tolist(),
            "trials": [t.to_dict() for t in trials],
            "continued": sorted(self._continued),
        }

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, Any], *, settings: Settings | Mapping[str, Any] | None = None
    ) -> Optimizer:
        """Rebuilds an optimizer saved with `state_dict` (this format or an earlier one).

        Args:
            state: The dict from `state_dict` (possibly through JSON).
            settings: A `gpbo.Settings` that replaces the saved settings, or a
                dict of fields that replace theirs (e.g. ``{"device": "cuda"}``).
                Required, with an acquisition (a model), if a custom
                acquisition object (surrogate factory) was used.

        Raises:
            InvalidArgumentError: If the state is malformed.
            InvalidTrialError: If a saved trial does not fit the saved space.
        """
        try:
            saved, maximize, seed = _saved_settings(state)
            counters = state["counters"]
            metrics = Metrics.from_dict(state.get("metrics"), maximize=maximize)
            opt = cls(Space.from_dict(state["space"]), settings=_restored_settings(saved, settings),
                      maximize=maximize, seed=seed, max_step=state.get("max_step"), **metrics.arguments())
            opt._n_sobol, opt._n_suggest = int(counters["n_sobol"]), int(counters["n_suggest"])
            theta = state.get("gp_theta")
            opt._theta = None if theta is None else torch.tensor(theta, dtype=opt._dtype, device=opt._device)
            params = [dict(r["params"]) for r in state["trials"]]
            try:
                outcomes = [_saved_outcome(metrics, i, r) for i, r in enumerate(state["trials"])]
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"malformed optimizer state: {exc}") from None
        except GpboError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgumentError(f"malformed optimizer state: {type(exc).__name__}: {exc}") from exc
        opt._log.add(params, opt._encode(params), outcomes)
        opt._continued = {i for i in state.get("continued", ()) if opt._log.get(int(i)).state is TrialState.RUNNING}
        return opt

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """Holds the lock and a storage transaction, after pulling what others wrote."""
        with self._lock:
            if self._closed:
                raise InvalidArgumentError("this optimizer is closed; open the study again to continue")
            with self._store.transaction():
                self._pull()
                yield

    def _refresh(self) -> None:
        """Pulls what other processes wrote (nothing without storage or once closed)."""
        with self._lock:
            if not self._closed:
                self._pull()

    def _pull(self) -> None:
        """Merges the trials and counters that changed in storage into this optimizer."""
        pulled = self._store.pull()
        if pulled is None:
            return
        if pulled.full:
            self._log = TrialLog(self._space.dim)
        for t in pulled.trials:
            try:
                _saved_outcome(self._metrics, t.id, t.to_dict())
            except InvalidArgumentError as exc:
                raise StorageError(f"the stored study holds a malformed {exc}") from None
        new = [t for t in pulled.trials if t.id >= len(self._log)]
        self._log.merge(pulled.trials, self._encode([t.params for t in new]))
        continued = pulled.continued if pulled.full else self._continued | pulled.continued
        self._continued = {i for i in continued if self._log.get(i).state is TrialState.RUNNING}
        counters = pulled.counters
        self._n_sobol, self._n_suggest = counters.n_sobol, counters.n_suggest
        theta = counters.gp_theta
        self._theta = None if theta is None else torch.tensor(theta, dtype=self._dtype, device=self._device)

    def _new_trials(self, k: int) -> list[Trial]:
        """Suggests ``k`` RUNNING trials (Sobol design first, then the engine) and stores them.

        With ``resume_stopped``, a suggestion that is a stopped trial's configuration continues that trial.
        """
        if k == 0:
            return []
        n_sobol = min(k, max(0, self._n_initial - len(self._log)))
        params, X = self._sobol(n_sobol)
        if k > n_sobol:
            more_params, more_X = self._suggest(k - n_sobol, pending=X)
            params, X = params + more_params, torch.cat([X, more_X])
        twins = self._stopped_twins(X) if self._settings.resume_stopped else [None] * k
        fresh = [r for r in range(k) if twins[r] is None]
        new = self._log.add([params[r] for r in fresh], X[fresh], [_RUNNING] * len(fresh))
        self._store.insert(new, self._owner)
        started = iter(new)
        return [next(started) if j is None else self._continue(j) for j in twins]

    def _stopped_twins(self, X: Tensor) -> list[int | None]:
        """For each suggestion in ``X (k, d)``, the nearest trial stopped early within the rule's ``rerun_tol``, or None.

        Each stopped trial is matched at most once.
        """
        pruned = self._log.ids(TrialState.PRUNED)
        if not pruned:
            return [None] * len(X)
        tol = getattr(self._stopping_rule(), "rerun_tol", RERUN_TOL)
        dist = (X[:, None, :] - self._log.X[pruned][None]).abs().amax(dim=-1)  # (k, p)
        twins: list[int | None] = []
        for row in dist:
            order = [c for c in row.argsort().tolist() if row[c] <= tol and pruned[c] not in twins]
            twins.append(pruned[order[0]] if order else None)
        return twins

    def _continue(self, index: int) -> Trial:
        """Makes stopped trial ``index`` RUNNING again, its curve kept, and stores that."""
        self._store.resume(index, self._owner)
        self._continued.add(index)
        return self._log.resume(index)

    def _add_told(self, params: list[Mapping[str, Any]], outcomes: list[Outcome]) -> list[Trial]:
        """Validates never-asked params and appends them as told trials."""
        X, names = self._encode(params), self._space.names
        decoded = self._space.decode(X) if params else []  # exact for integers and choices: 2.0 -> 2
        real = {name for name, p in self._space.params.items() if isinstance(p, Real)}
        clean = [{name: float(p[name]) if name in real else d[name] for name in names}  # space order
                 for p, d in zip(params, decoded, strict=True)]
        trials = self._log.add(clean, X, outcomes)
        self._store.insert(trials, self._owner)
        return trials

    def _encode(self, params: list[Mapping[str, Any]]) -> Tensor:
        """Validates and encodes params dicts to ``(k, d)`` float64 on the CPU."""
        return self._space.encode(params) if params else self._log.X[:0]

    def _canonical(self, U: Tensor) -> tuple[list[dict[str, Any]], Tensor]:
        """Decodes unit-cube points ``U (k, d)``; returns params and their encoding."""
        params = self._space.decode(U.to("cpu", torch.float64).clamp(0.0, 1.0))
        return params, self._encode(params)

    def _sobol(self, k: int) -> tuple[list[dict[str, Any]], Tensor]:
        """The next ``k`` points of the scrambled Sobol design (params, encoding)."""
        if k == 0:
            return [], self._log.X[:0]
        U = sobol_design(self._space, self._seed, self._n_sobol, k)
        self._n_sobol += k
        return self._canonical(U)

    def _suggest(self, q: int, pending: Tensor) -> tuple[list[dict[str, Any]], Tensor]:
        """``q`` points from the engine (Sobol points without a completed trial).

        Args:
            q: Number of points.
            pending: (k, d) points chosen in this `ask` but not yet trials.
        """
        observed = self._observations()
        if observed is None:
            return self._sobol(q)
        X, Y = observed
        pending = torch.cat([self._log.X[self._log.ids(TrialState.RUNNING)], pending])  # (k, d)
        seed = derive_seed(self._seed, self._n_suggest)
        self._n_suggest += 1
        to = {"device": self._device, "dtype": self._dtype}
        try:
            suggestion = suggest(
                X[None].to(**to), Y[None].to(**to), dims=self._space.dims, q=q,
                pending=pending[None].to(**to) if len(pending) else None,
                seed=seed, warm_start=self._theta if self._settings.warm_start else None,
                settings=self._settings,
            )
        except FitError as exc:
            warnings.warn(f"gpbo: GP fit failed ({exc}); suggesting Sobol points instead", RuntimeWarning, stacklevel=2)
            return self._sobol(q)
        self._theta = _warm_theta(suggestion.model, self._settings)
        return self._canonical(suggestion.candidates[0])

    def _observations(self) -> tuple[Tensor, Tensor] | None:
        """Engine data ``X (n, d)``, ``Y (n,)`` (or ``(n, O)`` with objectives=) to maximise; None if nothing completed.

        Failed trials are imputed at the worst completed value (see `gpbo.metrics`),
        PRUNED ones as `gpbo.fidelity.pruned_values` says.
        """
        complete, failed = self._log.ids(TrialState.COMPLETE), self._log.ids(TrialState.FAILED)
        pruned = self._log.ids(TrialState.PRUNED)
        trials = self._log.trials
        if pruned:
            return self._observations_with_pruned(complete, pruned, failed)
        if not complete:
            return None
        Y = self._metrics.engine_Y([trials[i] for i in complete], [trials[i] for i in failed])
        return self._log.X[complete + failed], Y

    def _observations_with_pruned(self, complete: list[int], pruned: list[int], failed: list[int]) -> tuple[Tensor, Tensor]:
        """`_observations` of a one-objective study with PRUNED trials.

        A PRUNED trial enters with its objective at `gpbo.fidelity.pruned_values`
        and its constraints as told; failed trials are imputed from these values.
        """
        trials = self._log.trials
        Yc = self._metrics.objective_matrix([trials[i] for i in complete])[:, 0]  # (c,) to maximise
        try:
            rule = self._stopping_rule()
        except InvalidArgumentError:  # "model" not available: the last reports stand in
            rule = None
        Yp = pruned_values(rule, self._curves(), pruned, Yc)  # (p,)
        believed = [self._metrics.with_objective(trials[i], float(v)) for i, v in zip(pruned, Yp)]
        Y = self._metrics.engine_Y([trials[i] for i in complete] + believed, [trials[i] for i in failed])
        return self._log.X[complete + pruned + failed], Y  # (n,), or (n, 1 + constraints)

    def _stopping_rule(self) -> StoppingRule | None:
        """The settings' early-stopping rule, built on first use."""
        if self._rule is None and self._settings.early_stopping is not None:
            self._rule = get_stopping_rule(self._settings.early_stopping)
        return self._rule

    def _curves(self, hidden: frozenset[int] = frozenset()) -> Curves:
        """Every trial's learning curve, as the rule sees it (``hidden``: shown as FAILED ones are)."""
        sign = 1.0 if self._metrics.maximizes else -1.0
        return curves(self._log.trials, self._log.X, sign=sign, max_step=self._max_step,
                      stop_requested=self._stop_requested, hidden=hidden)

    def _rivals(self) -> Curves:
        """The rule's view for deciding on a running trial: the curves it has to beat.

        With constraints, a trial that ended infeasible is no bar (a running
        trial that beats every feasible one can still become the best
        feasible trial): it is shown without a curve, as a FAILED one is, so
        the indices stay the trial ids. Without constraints, `_curves`.
        """
        return self._curves(frozenset(t.id for t in self._log.trials if self._metrics.ended_infeasible(t)))

    def _stopped_early(self, index: int, outcome: Outcome) -> Outcome:
        """A COMPLETE outcome of a trial that stopped early as PRUNED, with the told value and metrics.

        With ``max_step`` a trial stopped early if its last report is below it;
        without, if `should_stop` answered True for it.
        """
        record = self._log.get(index)
        if outcome.state is not TrialState.COMPLETE or not record.steps:
            return outcome
        if self._max_step is None:
            short = index in self._stop_requested
        else:
            short = record.steps[-1][0] < self._max_step
        if not short:
            return outcome
        return dataclasses.replace(outcome, state=TrialState.PRUNED)

    def _known_index(self, trial: Trial | int) -> int:
        """The id of a known trial of this optimizer (any state)."""
        try:
            return self._log.running_index(trial, "a query")
        except InvalidTrialError as exc:
            if "has ended" not in str(exc):
                raise
            return trial.id if isinstance(trial, Trial) else int(trial)


def _saved_settings(state: Mapping[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    """The saved settings (as `Settings.to_dict`), maximize and seed of a state of format 1 or 2."""
    settings = dict(state["settings"])
    if state["format"] == _STATE_FORMAT:
        return settings, state["maximize"], state["seed"]
    if state["format"] == 1:  # maximize and seed were kept among the settings
        maximize, seed = settings.pop("maximize"), settings.pop("seed")
        return settings, maximize, seed
    raise InvalidArgumentError(f"unknown state format {state['format']!r}, expected 1 or {_STATE_FORMAT}")


def _restored_settings(saved: dict[str, Any], given: Settings | Mapping[str, Any] | None) -> Settings:
    """``given`` if it is a Settings, else the saved settings with ``given``'s fields replaced."""
    if isinstance(given, Settings):
        return given
    if given is not None and not isinstance(given, Mapping):
        as_settings(given)  # raises InvalidArgumentError naming what settings may be
    changes = dict(given or {})
    for name, what in (("acquisition", "a custom acquisition"), ("model", "a custom surrogate factory"),
                       ("early_stopping", "a custom stopping rule")):
        if name in saved and saved[name] is None and changes.get(name) is None:  # a missing field is the default
            raise InvalidArgumentError(
                f"the state was saved with {what}; pass settings={{'{name}': ...}} or a gpbo.Settings holding it"
            )
    return Settings.from_dict({**saved, **changes})


def _warm_theta(model: object, settings: Settings) -> Tensor | None:
    """The hyperparameters (P, d + 1) of gpbo's own fitted model that warm-start its next fit.

    None for a custom surrogate factory's model: a model object is not kept
    between asks (it would not survive `Optimizer.state_dict`, and a
    restored optimizer would then suggest differently), so its fits start cold.
    """
    theta = getattr(model, "theta", None)
    return theta if isinstance(settings.model, str) and isinstance(theta, Tensor) else None


def _with_outcomes(given: Settings | Mapping[str, Any] | None, metrics: Metrics) -> Settings:
    """The settings ``given`` with the `Outcomes` of ``metrics`` (unchanged for a plain study).

    A dict of fields is validated with those outcomes, so that it may name an
    acquisition that only they can serve (``{"acquisition": "qlog_parego"}``
    for a study with ``objectives=``).
    """
    outcomes = metrics.outcomes()
    if isinstance(given, Mapping) and "outcomes" not in given:
        given = {**given, "outcomes": outcomes}
    settings = as_settings(given)
    if settings.outcomes == outcomes:
        return settings
    if settings.outcomes != Outcomes():
        raise InvalidArgumentError(
            f"settings.outcomes is {settings.outcomes}, but objectives= / constraints= give {outcomes}; "
            "leave settings.outcomes at its default, the facade sets it")
    return settings.replace(outcomes=outcomes)


def _saved_outcome(metrics: Metrics, index: int, record: Mapping[str, Any]) -> Outcome:
    """A saved trial's outcome, checked: a COMPLETE or PRUNED one holds what a tell would have accepted.

    Raises:
        InvalidArgumentError: Naming the trial and what is wrong.
    """
    state, values = TrialState(record["state"]), record.get("values") or {}
    steps = tuple((s, v) for s, v in record.get("steps") or ())
    bad = None
    if not isinstance(values, Mapping):
        bad = f"values must be a dict, got {values!r:.100}"
    elif any(as_real(s) is None or as_real(v) is None for s, v in steps):
        bad = f"steps must be (step, value) numbers, got {steps!r:.100}"
    elif state is TrialState.PRUNED and not steps:
        bad = "a PRUNED trial needs its learning curve"
    elif state in (TrialState.COMPLETE, TrialState.PRUNED):
        try:
            told = metrics.parse(dict(values) if metrics.objectives else record["value"])
        except InvalidTrialError as exc:
            bad = str(exc)
        else:
            bad = None if told.state is TrialState.COMPLETE else f"a {state.value} trial with {told.error}"
    if bad is not None:
        raise InvalidArgumentError(f"trial {index}: {bad}")
    return Outcome(state, record["value"], record["error"], values, steps)


def _release(store: NullStore | SqliteStore, owner: str) -> None:
    """Finalizer of an optimizer: its RUNNING trials become orphans, its file is closed."""
    release_owner(owner)
    store.close()
