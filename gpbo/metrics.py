"""A study's metrics: which told metric is an objective and which a constraint.

A study made with ``objectives=`` (and optionally ``constraints=``) is told a
dict of named metrics per trial; `Metrics` checks that dict, keeps every metric
on the trial (`gpbo.Trial.values`) and turns the trials into the engine's data
(``Y (n, O)`` in the convention of `gpbo.outcomes.Outcomes`). A study without
``objectives=`` is *plain*: it is told one number per trial, as always.

- **Objectives** are maximised by the engine: a minimised one is negated.
- **Constraints** ``name: ("<=", b)`` become ``g = value - b`` and
  ``(">=", b)`` become ``g = b - value``; feasible iff ``g <= 0``. A
  constraint may be on an objective or on a metric that is only a constraint.
- **Failed trials** enter the engine as today's: an entry that was not told
  or is not finite is imputed, an objective at the worst observed value of
  its column, a constraint as *violated*: at the largest observed ``g`` if
  some trial violates it, else at the observed spread of ``g`` (max - min), or
  at 1.0 when every observed ``g`` is equal. Finite metrics a failed trial did
  report are kept.
- **Best and Pareto front** hold COMPLETE feasible trials only; with no such
  trial `best` is None and `pareto_front` empty.
- **Hypervolume reference point**: given per objective as
  ``objectives={"error": ("minimize", 0.5)}`` (user units: the worst value
  that still counts), or, when none is given, inferred with
  `gpbo.pareto.infer_reference_point` (BoTorch's rule: the nadir of the
  feasible front minus 10 % of its range, per objective, in maximisation
  units) from the feasible COMPLETE trials. The engine then gets
  ``ref_point=None`` and infers it from its own data the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from gpbo.errors import InvalidArgumentError, InvalidTrialError, MetricsError
from gpbo.outcomes import Outcomes, impute_constraints
from gpbo.pareto import hypervolume, infer_reference_point, pareto_mask
from gpbo.trial import Outcome, Trial, TrialState, as_real, parse_value

__all__ = ["Constraint", "Metrics", "Objective"]

DIRECTIONS = ("minimize", "maximize")
OPERATORS = ("<=", ">=")


@dataclasses.dataclass(frozen=True)
class Objective:
    """An objective: its metric, ``"minimize"`` or ``"maximize"``, and its reference value (user units) or None."""

    name: str
    direction: str
    ref: float | None = None

    @property
    def sign(self) -> float:
        """+1.0 to maximise, -1.0 to minimise: the engine's value is ``sign * value``."""
        return 1.0 if self.direction == "maximize" else -1.0


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A constraint: ``metric <= bound`` or ``metric >= bound``."""

    name: str
    op: str
    bound: float


class Metrics:
    """The metrics of a study (see the module docstring).

    Args:
        objectives: None (a plain study), or a non-empty dict
            ``name -> "minimize" | "maximize"``, or ``name -> (direction, ref)``
            with every objective's hypervolume reference value in user units.
        constraints: None, or a dict ``name -> ("<=" | ">=", bound)``; needs ``objectives``.
        maximize: The direction of a plain study; must be False with ``objectives``.

    Raises:
        InvalidArgumentError: Naming the bad entry and what was expected.
    """

    def __init__(self, objectives: Any = None, constraints: Any = None, *, maximize: bool = False) -> None:
        if objectives is None and constraints is not None:
            raise InvalidArgumentError(
                "constraints need objectives=: name the objective too, e.g. "
                "objectives={'loss': 'minimize'}, and return a dict of metrics")
        if objectives is not None and maximize:
            raise InvalidArgumentError(
                "maximize=True conflicts with objectives=: give each objective its direction, "
                "e.g. objectives={'accuracy': 'maximize'}")
        self.maximize = maximize
        self.objectives = None if objectives is None else _objectives(objectives)
        self.constraints = () if constraints is None else _constraints(constraints)
        names = [o.name for o in self.objectives or ()]
        self.names = tuple(names + [c.name for c in self.constraints if c.name not in names])

    @property
    def maximizes(self) -> bool:
        """True if the first objective (the only one of a plain study) is maximised."""
        return self.maximize if self.objectives is None else self.objectives[0].sign > 0

    @property
    def plain(self) -> bool:
        """True for a study told one number per trial (no ``objectives=``)."""
        return self.objectives is None

    @property
    def n_objectives(self) -> int:
        """Number of objectives (1 for a plain study)."""
        return 1 if self.objectives is None else len(self.objectives)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metrics) and self.to_dict() == other.to_dict() and self.maximize == other.maximize

    def __repr__(self) -> str:
        return f"Metrics({self.to_dict()!r}, maximize={self.maximize})"

    def arguments(self) -> dict[str, Any]:
        """The ``objectives=`` and ``constraints=`` arguments that build these metrics ({} for a plain study)."""
        if self.objectives is None:
            return {}
        return {
            "objectives": {o.name: o.direction if o.ref is None else (o.direction, o.ref) for o in self.objectives},
            "constraints": {c.name: (c.op, c.bound) for c in self.constraints} or None,
        }

    def to_dict(self) -> dict[str, Any] | None:
        """JSON form (None for a plain study); `from_dict` inverts it."""
        if self.objectives is None:
            return None
        return {
            "objectives": {o.name: [o.direction, o.ref] for o in self.objectives},
            "constraints": {c.name: [c.op, c.bound] for c in self.constraints},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, maximize: bool = False) -> Metrics:
        """Inverse of `to_dict`."""
        if data is None:
            return cls(maximize=maximize)
        objectives = {k: v[0] if v[1] is None else tuple(v) for k, v in data["objectives"].items()}
        return cls(objectives, {k: tuple(v) for k, v in data["constraints"].items()} or None)

    def outcomes(self) -> Outcomes:
        """The engine's `Outcomes` (a given reference point in maximisation units)."""
        if self.objectives is None:
            return Outcomes()
        refs = [o.ref for o in self.objectives]
        ref = None if refs[0] is None else tuple(o.sign * o.ref for o in self.objectives)
        return Outcomes(len(self.objectives), len(self.constraints), ref)

    def parse(self, value: Any) -> Outcome:
        """What was told, as an outcome: a number (plain study), or a dict of every metric, or an exception.

        Raises:
            InvalidTrialError: Naming a missing or unknown metric, or one that is not a real number.
        """
        if isinstance(value, MetricsError):  # a dict that could not be told: a FAILED trial keeps its real metrics
            return Outcome(TrialState.FAILED, error=f"{type(value).__name__}: {value}", values=dict(value.values))
        if self.objectives is None or isinstance(value, BaseException):
            if isinstance(value, Mapping):
                raise InvalidTrialError(
                    f"this study has one objective: tell a number, got the dict {value!r:.200}; "
                    "for several metrics create the study with objectives=")
            return parse_value(value)
        if not isinstance(value, Mapping):
            raise InvalidTrialError(
                f"this study has the metrics {list(self.names)}: tell a dict name -> value "
                f"(or an exception), got {type(value).__name__} {value!r:.200}")
        values = self._values(value)
        bad = [f"{name}={v}" for name, v in values.items() if not math.isfinite(v)]
        if bad:
            return Outcome(TrialState.FAILED, error=f"non-finite value {', '.join(bad)}", values=values)
        single = values[self.objectives[0].name] if len(self.objectives) == 1 else None
        return Outcome(TrialState.COMPLETE, value=single, values=values)

    def _values(self, told: Mapping[str, Any]) -> dict[str, float]:
        """Every metric as a float.

        Raises:
            MetricsError: Naming an unknown or missing metric, or one that is
                not a real number; it carries the metrics that are.
        """
        numbers = {name: as_real(told[name]) if name in told else None for name in self.names}
        values = {name: math.nan if v is None else v for name, v in numbers.items()}
        unknown = [k for k in told if k not in self.names]
        if unknown:
            raise MetricsError(f"unknown metric {unknown[0]!r} told; this study's metrics are {list(self.names)}", values)
        missing = [k for k in self.names if k not in told]
        if missing:
            role = "objective" if any(o.name == missing[0] for o in self.objectives) else "constraint"
            raise MetricsError(
                f"the told metrics lack {missing[0]!r} ({role}); this study's metrics are {list(self.names)}", values)
        for name, number in numbers.items():
            if number is None:
                raise MetricsError(f"metric {name!r} must be a real number, got {told[name]!r:.200} of type "
                                   f"{type(told[name]).__name__}", values)
        return values

    # ---------------------------------------------------------------- engine data

    def engine_Y(self, complete: list[Trial], failed: list[Trial]) -> Tensor:
        """The engine's outcomes of ``complete`` then ``failed`` trials (``complete`` non-empty).

        Returns:
            (n,) float64 for a plain study (today's: failed at the worst
            value), else (n, O): objectives to maximise, then constraints
            ``g`` feasible iff ``<= 0``, failed entries imputed (module docstring).
        """
        if self.objectives is None:
            sign = 1.0 if self.maximize else -1.0
            Y = torch.tensor([sign * t.value for t in complete], dtype=torch.float64)
            return torch.cat([Y, Y.min().expand(len(failed))])
        Y = self._columns(complete)  # (c, O)
        k = len(self.objectives)
        F = self._columns(failed)  # (f, O), NaN where not told
        objectives = torch.where(F[:, :k].isfinite(), F[:, :k], Y[:, :k].amin(0))
        return torch.cat([Y, torch.cat([objectives, impute_constraints(Y[:, k:], F[:, k:])], -1)])

    def _columns(self, trials: list[Trial]) -> Tensor:
        """(k, O) engine columns of the trials' values (NaN where not told)."""
        objectives, nan = self.objectives or (), math.nan
        rows = [
            [o.sign * t.values.get(o.name, nan) for o in objectives]
            + [_g(c, t.values.get(c.name, nan)) for c in self.constraints]
            for t in trials
        ]
        return torch.tensor(rows, dtype=torch.float64).reshape(len(trials), len(objectives) + len(self.constraints))

    # ---------------------------------------------------------------- results

    def satisfies(self, trial: Trial) -> bool:
        """True if the trial's told values satisfy every constraint (one not told is not satisfied)."""
        return all(_g(c, trial.values.get(c.name, math.nan)) <= 0 for c in self.constraints)

    def ended_infeasible(self, trial: Trial) -> bool:
        """True if the trial is COMPLETE or PRUNED and its told values violate a constraint."""
        return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and not self.satisfies(trial)

    def feasible(self, trial: Trial) -> bool:
        """True if the trial is COMPLETE and satisfies every constraint."""
        return trial.state is TrialState.COMPLETE and self.satisfies(trial)

    def with_objective(self, trial: Trial, value: float) -> Trial:
        """``trial`` with its one objective at ``value`` (engine units, to maximise), its other metrics as told."""
        user = value if self.maximizes else -value
        if self.objectives is None:
            return dataclasses.replace(trial, value=user)
        return dataclasses.replace(trial, value=user, values={**trial.values, self.objectives[0].name: user})

    def best(self, trials: list[Trial]) -> Trial | None:
        """The feasible COMPLETE trial with the best value (first on ties); None if none.

        Raises:
            InvalidArgumentError: With several objectives (use `pareto_front`).
        """
        if self.n_objectives > 1:
            raise InvalidArgumentError(
                f"best is for a single objective; this study has {self.n_objectives} objectives "
                f"{[o.name for o in self.objectives]}: use pareto_front")
        done = [t for t in trials if self.feasible(t)]
        if not done:
            return None
        return (max if self.maximizes else min)(done, key=lambda t: t.value)

    def objective_matrix(self, trials: list[Trial]) -> Tensor:
        """(k, n_objectives) objectives of COMPLETE trials in maximisation units."""
        if self.objectives is None:
            sign = 1.0 if self.maximize else -1.0
            return torch.tensor([[sign * t.value] for t in trials], dtype=torch.float64).reshape(-1, 1)
        return self._columns(trials)[:, : len(self.objectives)]

    def pareto_front(self, trials: list[Trial]) -> list[Trial]:
        """The feasible COMPLETE trials no other feasible one dominates, in id order."""
        done = [t for t in trials if self.feasible(t)]
        if not done:
            return []
        mask = pareto_mask(self.objective_matrix(done))
        return [t for t, keep in zip(done, mask.tolist(), strict=True) if keep]

    def reference_point(self, trials: list[Trial]) -> dict[str, float] | None:
        """The hypervolume reference point in user units: the given one, else inferred; None without a feasible trial."""
        if self.objectives is not None and self.objectives[0].ref is not None:
            return {o.name: o.ref for o in self.objectives}
        done = [t for t in trials if self.feasible(t)]
        if not done:
            return None
        ref = infer_reference_point(self.objective_matrix(done)).tolist()
        if self.objectives is None:
            return {"objective": (1.0 if self.maximize else -1.0) * ref[0]}
        return {o.name: o.sign * r for o, r in zip(self.objectives, ref, strict=True)}

    def check_ref_point(self, ref_point: Any) -> dict[str, float]:
        """A user's reference point, objective name -> finite number, for every objective and no other name.

        Raises:
            InvalidArgumentError: naming the missing, unknown or non-finite entry.
        """
        names = [o.name for o in self.objectives] if self.objectives else ["objective"]
        if not isinstance(ref_point, Mapping):
            raise InvalidArgumentError(f"ref_point must be a dict objective name -> value for {names}, "
                                       f"got {type(ref_point).__name__} {ref_point!r:.200}")
        missing, unknown = [n for n in names if n not in ref_point], [k for k in ref_point if k not in names]
        if missing or unknown:
            raise InvalidArgumentError(f"ref_point must name every objective {names} and nothing else; "
                                       f"missing {missing}, unknown {unknown}")
        out = {}
        for name in names:
            number = as_real(ref_point[name])
            if number is None or not math.isfinite(number):
                raise InvalidArgumentError(
                    f"ref_point[{name!r}] must be a finite number, got {ref_point[name]!r:.200}")
            out[name] = number
        return out

    def hypervolume(self, trials: list[Trial], ref_point: Mapping[str, float]) -> float:
        """Hypervolume of the feasible COMPLETE trials above ``ref_point`` (user units, as `reference_point`)."""
        done = [t for t in trials if self.feasible(t)]
        if not done:
            return 0.0
        objectives = self.objectives or (Objective("objective", "maximize" if self.maximize else "minimize"),)
        ref = torch.tensor([o.sign * ref_point[o.name] for o in objectives], dtype=torch.float64)
        return float(hypervolume(self.objective_matrix(done), ref))


def _g(c: Constraint, value: float) -> float:
    """The constraint's value in the engine's convention (feasible iff <= 0)."""
    return value - c.bound if c.op == "<=" else c.bound - value


def _check_names(kind: str, entries: Any) -> None:
    if not isinstance(entries, Mapping) or not entries:
        raise InvalidArgumentError(f"{kind} must be a non-empty dict name -> spec, got {entries!r:.200}")
    for name in entries:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"{kind} names must be non-empty str, got {name!r:.200}")


def _objectives(objectives: Any) -> tuple[Objective, ...]:
    _check_names("objectives", objectives)
    out = []
    for name, spec in objectives.items():
        direction, ref = (spec, None) if isinstance(spec, str) else _pair(spec)
        if direction not in DIRECTIONS:
            raise InvalidArgumentError(
                f"objectives[{name!r}] must be 'minimize' or 'maximize', or (direction, reference value), "
                f"got {spec!r:.200}")
        if ref is not None:
            number = as_real(ref)
            if number is None or not math.isfinite(number):
                raise InvalidArgumentError(
                    f"objectives[{name!r}]: the reference value must be a finite number, got {ref!r:.200}")
            ref = number
        out.append(Objective(name, direction, ref))
    given = [o.name for o in out if o.ref is not None]
    if given and len(given) != len(out):
        raise InvalidArgumentError(
            f"give a reference value for every objective or for none; given for {given} only")
    return tuple(out)


def _constraints(constraints: Any) -> tuple[Constraint, ...]:
    _check_names("constraints", constraints)
    out = []
    for name, spec in constraints.items():
        op, bound = _pair(spec)
        number = as_real(bound)
        if op not in OPERATORS or number is None or not math.isfinite(number):
            raise InvalidArgumentError(
                f"constraints[{name!r}] must be ('<=', bound) or ('>=', bound) with a finite number bound, "
                f"got {spec!r:.200}")
        out.append(Constraint(name, op, number))
    return tuple(out)


def _pair(spec: Any) -> tuple[Any, Any]:
    """``spec`` as a 2-tuple, or (spec, None) if it is not a pair (the caller names it)."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return spec[0], spec[1]
    return spec, None
