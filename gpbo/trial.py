"""Trial records of the ask/tell facade, their log and parsing of objective values.

A `Trial` is an immutable record of one evaluation: the parameters, its state
and, once told, its value or the error that made it fail. The `Optimizer`
returns a new record from `tell`; the record returned by `ask` stays RUNNING.
A `TrialLog` keeps the records in id order next to their encoded params.

A record's ``params`` is its own read-only copy (`TrialParams`, a `dict`
whose mutating methods raise): editing the params of a trial handed out by
``ask`` cannot change the study, its storage or its ``state_dict``. Take a
mutable copy with ``dict(trial.params)``. Its ``values`` (every metric told by
name, in studies with ``objectives=``) is read-only the same way, and so is
its ``steps`` (the learning curve an objective reported, a tuple of
``(step, value)`` pairs).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from collections.abc import Mapping
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor

from gpbo.errors import InvalidTrialError


class _ReadOnlyDict(dict):
    """A `dict` that cannot be changed: ``dict(d)``, ``{**d}``, ``d | other`` (a
    new plain dict), ``json.dumps`` and pickling work as for any dict;
    ``d[name] = v``, ``del``, ``pop``, ``update`` and the other mutating
    methods raise `TypeError`. ``copy()`` returns a plain, mutable dict.
    """

    __slots__ = ()
    _what = "entries"  # what the message calls the contents (a trial's "params", "values")

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            f"a trial's {self._what} are read-only (changing them would not change the study); "
            f"take a mutable copy with dict(trial.{self._what})"
        )

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def copy(self) -> dict[str, Any]:
        """A plain, mutable copy."""
        return dict(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return dict.__repr__(self)


class TrialParams(_ReadOnlyDict):
    """A trial's parameters (name -> value), read-only (see `_ReadOnlyDict`)."""

    __slots__ = ()
    _what = "params"


class TrialValues(_ReadOnlyDict):
    """A trial's told metrics (name -> float), read-only (see `_ReadOnlyDict`)."""

    __slots__ = ()
    _what = "values"


class TrialState(enum.Enum):
    """Life cycle of a trial: asked (RUNNING), then told (COMPLETE, FAILED or PRUNED).

    PRUNED: the trial reported a learning curve and was stopped early (the
    early-stopping rule said so, or it ended before ``max_step``); its value
    is the told one (for the usual training loop, its last report). It is
    never a study's ``best``, and the GP reads its curve, not its value.
    """

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    PRUNED = "pruned"


@dataclasses.dataclass(frozen=True)
class Trial:
    """One evaluation of the objective.

    Attributes:
        id: Position of the trial in its optimizer, counting from 0.
        params: Parameter values, one entry per parameter of the space: a
            read-only `TrialParams` copy of the dict it was built from.
        state: RUNNING until told, then COMPLETE, FAILED or PRUNED (stopped
            early; `stopped_early`).
        value: The objective value (user convention, never negated) when
            COMPLETE or PRUNED, else None. In a study with ``objectives=``: the one
            objective's value, or None with several objectives.
        error: Why the trial FAILED (exception text or "non-finite value"),
            else None.
        values: Every metric told by name (studies with ``objectives=``),
            non-finite ones included: a read-only `TrialValues`; empty for a
            study told plain numbers, a RUNNING trial, or one that raised.
        steps: The learning curve the objective reported
            (`gpbo.Optimizer.report`), a tuple of ``(step, value)`` pairs with
            increasing steps, values in the user's convention; empty if it
            never reported. A step is an int when it is a whole number.
    """

    id: int
    params: dict[str, Any]
    state: TrialState = TrialState.RUNNING
    value: float | None = None
    error: str | None = None
    values: Mapping[str, float] = dataclasses.field(default_factory=dict)
    steps: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", TrialParams(self.params))  # a copy the caller cannot reach
        object.__setattr__(self, "values", TrialValues(self.values))
        object.__setattr__(self, "steps", tuple((s, v) for s, v in self.steps))

    @property
    def last_step(self) -> float | None:
        """The step of the last report; None if the trial never reported."""
        return self.steps[-1][0] if self.steps else None

    @property
    def stopped_early(self) -> bool:
        """True if the trial was stopped before ``max_step`` (its state is PRUNED)."""
        return self.state is TrialState.PRUNED

    def to_dict(self) -> dict[str, Any]:
        """Returns the trial as a plain dict (JSON types if the params are)."""
        return {
            "id": self.id,
            "params": dict(self.params),
            "state": self.state.value,
            "value": self.value,
            "error": self.error,
            "values": dict(self.values),
            "steps": [[step, value] for step, value in self.steps],
        }


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A parsed objective value: the state it gives a trial, value, error and named metrics."""

    state: TrialState
    value: float | None = None
    error: str | None = None
    values: Mapping[str, float] = dataclasses.field(default_factory=dict)
    steps: tuple[tuple[float, float], ...] = ()


def parse_value(value: Any) -> Outcome:
    """Turns what an objective produced into a trial outcome.

    Args:
        value: A real number (Python, NumPy scalar or 0-d array, 0-d tensor)
            or an exception instance. NaN, +inf and -inf count as failures.

    Returns:
        COMPLETE with the value as a float, or FAILED with an error text.

    Raises:
        InvalidTrialError: If the value is neither a real number nor an
            exception (a string, a list, a bool, None, a complex number...).
    """
    if isinstance(value, BaseException):
        return Outcome(TrialState.FAILED, error=f"{type(value).__name__}: {value}")
    number = as_real(value)
    if number is None:
        raise InvalidTrialError(
            f"value must be a real number or an exception instance, "
            f"got {value!r} of type {type(value).__name__}"
        )
    if not math.isfinite(number):
        return Outcome(TrialState.FAILED, error=f"non-finite value {number}")
    return Outcome(TrialState.COMPLETE, value=number)


class TrialLog:
    """Trials in id order, with their encoded params.

    Attributes:
        X: (n, d) float64 CPU tensor, row i encodes the params of trial i.
    """

    def __init__(self, d: int) -> None:
        self._trials: list[Trial] = []
        self.X = torch.empty(0, d, dtype=torch.float64)

    def __len__(self) -> int:
        return len(self._trials)

    @property
    def trials(self) -> list[Trial]:
        """A copy of the records, in id order."""
        return list(self._trials)

    def get(self, trial_id: int) -> Trial:
        """The record of trial ``trial_id`` (an existing id)."""
        return self._trials[trial_id]

    def ids(self, state: TrialState) -> list[int]:
        """Ids of the trials in ``state``, increasing."""
        return [t.id for t in self._trials if t.state is state]

    def add(self, params: list[dict[str, Any]], X: Tensor, outcomes: list[Outcome]) -> list[Trial]:
        """Appends trials with params encoded as ``X (k, d)``; returns them."""
        start = len(self._trials)
        new = [
            Trial(id=start + i, params=p, state=o.state, value=o.value, error=o.error, values=o.values,
                  steps=o.steps)
            for i, (p, o) in enumerate(zip(params, outcomes, strict=True))
        ]
        self._trials.extend(new)
        self.X = torch.cat([self.X, X])
        return new

    def report(self, trial_id: int, step: float, value: float) -> Trial:
        """Appends ``(step, value)`` to the curve of RUNNING trial ``trial_id`` (checked by the caller)."""
        record = self._trials[trial_id]
        record = dataclasses.replace(record, steps=(*record.steps, (step, value)))
        self._trials[trial_id] = record
        return record

    def resume(self, trial_id: int) -> Trial:
        """Makes PRUNED trial ``trial_id`` RUNNING again (a continued trial), its curve kept; returns it."""
        record = dataclasses.replace(self._trials[trial_id], state=TrialState.RUNNING, value=None, error=None, values={})
        self._trials[trial_id] = record
        return record

    def merge(self, records: list[Trial], X_new: Tensor) -> None:
        """Takes in records read from storage, in id order.

        Known RUNNING trials take the state of their record, and so do PRUNED
        ones (another process may have continued one, `resume`); records past
        the end are appended, with their params encoded as ``X_new (k, d)``.
        """
        new = records[len(records) - len(X_new):]
        for record in records[: len(records) - len(X_new)]:
            if self._trials[record.id].state in (TrialState.RUNNING, TrialState.PRUNED):
                self._trials[record.id] = record
        self._trials.extend(new)
        self.X = torch.cat([self.X, X_new])

    def tell(self, trial: Trial | int, outcome: Outcome) -> Trial:
        """Replaces a RUNNING trial (a record or an id) by its told record.

        Raises:
            InvalidTrialError: If the trial is unknown, already told, or a
                record from another optimizer (same id, other params).
        """
        index = self._index_of(trial)
        told = dataclasses.replace(
            self._trials[index], state=outcome.state, value=outcome.value, error=outcome.error,
            values=outcome.values,
        )
        self._trials[index] = told
        return told

    def running_index(self, trial: Trial | int, action: str | None = None) -> int:
        """The id of a RUNNING trial (a record or an id) about to get ``action`` (e.g. ``"a report"``).

        Raises:
            InvalidTrialError: If the trial is unknown, has ended, or is a record from another optimizer.
        """
        try:
            return self._index_of(trial)
        except InvalidTrialError as exc:
            if action is None or "already told" not in str(exc):
                raise
            state = self._trials[trial.id if isinstance(trial, Trial) else int(trial)].state
            raise InvalidTrialError(
                f"trial {getattr(trial, 'id', trial)} has ended (state {state.value}); it cannot take {action}") from None

    def record(self, trial: Trial | int) -> Trial:
        """The current record of a trial (a record or an id) of this log; raises `InvalidTrialError` otherwise."""
        return self._trials[self._id_of(trial, "a Trial or a trial id")]

    def _index_of(self, trial: Trial | int) -> int:
        """The id of a RUNNING trial (a record or an id); raises `InvalidTrialError` otherwise."""
        index = self._id_of(trial)
        state = self._trials[index].state
        if state is not TrialState.RUNNING:
            raise InvalidTrialError(f"trial {index} was already told (state {state.value}); tell each trial once")
        return index

    def _id_of(self, trial: Trial | int, expected: str = "a Trial, a trial id or a params dict") -> int:
        """The id of a trial of this log (a record or an id); raises `InvalidTrialError` naming ``expected`` otherwise."""
        if isinstance(trial, Trial):
            index = trial.id
        elif isinstance(trial, numbers.Integral) and not isinstance(trial, (bool, np.bool_)):
            index = int(trial)
        else:
            raise InvalidTrialError(
                f"trial must be {expected}, got {type(trial).__name__} {trial!r:.200}"
            )
        if not 0 <= index < len(self._trials):
            raise InvalidTrialError(f"unknown trial id {index}; there are {len(self._trials)} trials")
        if isinstance(trial, Trial) and trial.params != self._trials[index].params:
            raise InvalidTrialError(f"trial {index} does not belong to this optimizer (its params differ)")
        return index


def as_real(value: Any) -> float | None:
    """Returns `value` as a float if it is one real number (not a bool), else None."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.dtype == torch.bool or value.is_complex():
            return None
        return float(value.detach().cpu().item())
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # an int or Fraction beyond float's range: infinite, so checked as any inf
        return math.inf if value > 0 else -math.inf
