"""Search spaces and their encoding to and from the unit cube ``[0, 1]^d``.

Each parameter of a :class:`Space` owns one encoded dim, in mapping order:
- ``Real(low, high, log=False, logit=False)``: ``u = (t(v) - t(low)) / (t(high) - t(low))``,
  ``t = log`` if ``log``, ``t(v) = log(v / (1 - v))`` if ``logit`` (for
  fractions and probabilities in (0, 1) whose ends matter, as Bayesmark's
  "logit" warping), else the identity; the bounds map exactly to 0 and 1.
- ``Integer``: the same map on the integer; decoding rounds in value space (so
  log-scaled integers round correctly) and clips to the bounds.
- ``Categorical(choices)``: choice ``i`` of ``k`` -> ``i / (k - 1)`` (0.0 if k == 1).

Choices may be str, int, float, bool or None. Two choices are duplicates, and a
trial value matches a choice, when they are equal *and* of the same kind (bool,
number, str, None): ``True`` never matches ``1``, but ``1`` matches the choice
``1.0`` (decode returns the choice object, ``1.0``). Numpy scalars are accepted.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Any, Union

import torch
from torch import Tensor

from gpbo.dims import DimSpec
from gpbo.errors import InvalidSpaceError, InvalidTrialError

__all__ = ["Real", "Integer", "Categorical", "Param", "Space", "MAX_INTEGER_LEVELS"]

#: Integer parameters with more values than this get no levels in ``Space.dims``
#: (the optimiser treats them as continuous; decoding still rounds).
MAX_INTEGER_LEVELS = 2**20
_MAX_EXACT_INT = 2**53  # beyond this float64 cannot tell neighbouring integers apart


def _unwrap(value: Any) -> Any:
    """Turns a 0-d numpy scalar into the matching Python scalar; else identity."""
    numpy_scalar = type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0
    return value.item() if numpy_scalar else value


def _is_number(value: Any) -> bool:
    """True for real numbers (numpy scalars included), False for bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value: Any) -> float | None:
    """``float(value)`` for a finite real number (numpy included, bool excluded), else None."""
    value = _unwrap(value)
    try:
        x = float(value) if _is_number(value) else math.nan
    except OverflowError:  # int too large for a float
        x = math.nan
    return x if math.isfinite(x) else None


def _bound(owner: str, what: str, value: Any, integer: bool) -> float | int:
    """Validates one bound of a Real / Integer and returns it as float / int."""
    x = _finite(value)
    if x is None or integer and not (x.is_integer() and abs(x) <= _MAX_EXACT_INT):
        kind = "an integer in [-2**53, 2**53]" if integer else "a finite real number"
        raise InvalidSpaceError(f"{owner}: {what}={value!r} must be {kind}")
    return int(x) if integer else x


def _warp(v: float, scale: str) -> float:
    """The map t of a scale: identity, log or logit."""
    if scale == "log":
        return math.log(v)
    if scale == "logit":
        return math.log(v) - math.log1p(-v)
    return v


def _to_unit(v: float, low: float, high: float, scale: str) -> float:
    """Value -> encoded ``u``; exact at the bounds."""
    a = _warp(low, scale)
    return (_warp(v, scale) - a) / (_warp(high, scale) - a)


def _from_unit(u: Tensor, low: float, high: float, scale: str) -> Tensor:
    """Encoded ``u (n,)`` in [0, 1] -> values ``(n,)`` in [low, high]; exact at the bounds."""
    z = _warp(low, scale) * (1.0 - u) + _warp(high, scale) * u
    if scale == "log":
        v = torch.exp(z)
    elif scale == "logit":
        v = torch.sigmoid(z)
    else:
        v = z
    v = torch.where(u <= 0.0, low, torch.where(u >= 1.0, high, v))
    return v.clamp(low, high)


def _number(value: Any, expected: str) -> float:
    """Validates a numeric trial value (finite, not bool) and returns it as float."""
    x = _finite(value)
    if x is None:
        raise InvalidTrialError(f"value {value!r} ({type(value).__name__}) is not {expected}")
    return x


@dataclass(frozen=True)
class _Bounded:
    """Fields, validation and serialisation shared by :class:`Real` and :class:`Integer`."""

    low: float
    high: float
    log: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        owner, integer = type(self).__name__, isinstance(self, Integer)
        low = _bound(owner, "low", self.low, integer)
        high = _bound(owner, "high", self.high, integer)
        if not isinstance(self.log, bool):
            raise InvalidSpaceError(f"{owner}: log={self.log!r} must be a bool")
        if not low < high:
            raise InvalidSpaceError(f"{owner}: low={low!r} must be < high={high!r}")
        if self.log and low <= 0:
            raise InvalidSpaceError(f"{owner}: log=True needs low > 0, got low={low!r}")
        if not math.isfinite(float(high) - float(low)):
            raise InvalidSpaceError(f"{owner}: high - low = {high!r} - {low!r} overflows")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def _scale(self) -> str:
        return "log" if self.log else "linear"

    def _levels(self) -> tuple[float, ...] | None:
        return None

    def _to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__.lower(), **asdict(self)}

    def __repr__(self) -> str:
        flags = "".join(f", {f.name}=True" for f in fields(self)[2:] if getattr(self, f.name))  # after low, high
        return f"{type(self).__name__}(low={self.low!r}, high={self.high!r}{flags})"


@dataclass(frozen=True, repr=False)
class Real(_Bounded):
    """A real parameter in ``[low, high]``, optionally on a log scale (needs
    ``low > 0``) or a logit scale (needs ``0 < low < high < 1``)."""

    logit: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.logit, bool):
            raise InvalidSpaceError(f"Real: logit={self.logit!r} must be a bool")
        if self.logit and self.log:
            raise InvalidSpaceError("Real: log=True and logit=True exclude each other")
        if self.logit and not (0 < self.low and self.high < 1):
            raise InvalidSpaceError(
                f"Real: logit=True needs 0 < low < high < 1, got low={self.low!r}, high={self.high!r}"
            )

    @property
    def _scale(self) -> str:
        return "logit" if self.logit else super()._scale

    def _encode(self, value: Any) -> float:
        expected = f"a finite real number in [{self.low!r}, {self.high!r}]"
        x = _number(value, expected)
        tol = 1e-12 * max(abs(self.low), abs(self.high))  # forgive round-off at the bounds
        if not self.low - tol <= x <= self.high + tol:
            raise InvalidTrialError(f"value {value!r} is not {expected}")
        x = min(max(x, self.low), self.high)
        return min(max(_to_unit(x, self.low, self.high, self._scale), 0.0), 1.0)

    def _decode(self, u: Tensor) -> list[float]:
        return _from_unit(u, self.low, self.high, self._scale).tolist()


@dataclass(frozen=True, repr=False)
class Integer(_Bounded):
    """An integer parameter in ``[low, high]`` (both included), optionally log-scaled.

    Integral floats (``3.0``) are accepted as bounds and values and stored as ``int``.
    """

    def _encode(self, value: Any) -> float:
        expected = f"an integer in [{self.low!r}, {self.high!r}]"
        x, value = _number(value, expected), _unwrap(value)
        n = value if isinstance(value, int) else int(x) if x.is_integer() else None
        if n is None or not self.low <= n <= self.high:
            raise InvalidTrialError(f"value {value!r} is not {expected}")
        return _to_unit(n, self.low, self.high, self._scale)

    def _decode(self, u: Tensor) -> list[int]:
        v = _from_unit(u, self.low, self.high, self._scale)  # round in value space
        return torch.round(v).clamp(self.low, self.high).to(torch.int64).tolist()

    def _levels(self) -> tuple[float, ...] | None:
        lo, hi, scale = self.low, self.high, self._scale
        too_many = hi - lo + 1 > MAX_INTEGER_LEVELS
        return None if too_many else tuple(_to_unit(v, lo, hi, scale) for v in range(lo, hi + 1))


def _choice_key(value: Any) -> tuple[str, Any]:
    """Kind-tagged key: equal keys <=> equal values of the same kind."""
    kind = "number" if _is_number(value) else type(value).__name__  # bool stays "bool"
    return (kind, value)


def _check_choice(choice: Any) -> Any:
    """Validates one categorical choice; numpy scalars become Python scalars."""
    choice = _unwrap(choice)
    if not isinstance(choice, (str, int, float, bool, type(None))) or choice != choice:
        raise InvalidSpaceError(
            f"Categorical: choice {choice!r} ({type(choice).__name__}) is not allowed; "
            "expected str, int, float (not NaN), bool or None"
        )
    return choice


@dataclass(frozen=True)
class Categorical:
    """A parameter taking one of ``choices`` (str, int, float, bool or None).

    Equality compares choices with their types, so ``Categorical([1])`` and
    ``Categorical([1.0])`` differ (they decode to different objects).
    """

    choices: tuple[Any, ...] = field(compare=False)
    _typed: tuple[tuple[type, Any], ...] = field(init=False, repr=False)  # compared and hashed

    def __post_init__(self) -> None:
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Sequence):
            raise InvalidSpaceError(
                f"Categorical: choices must be a list or tuple, got {self.choices!r}"
            )
        choices = tuple(_check_choice(c) for c in self.choices)
        if not choices:
            raise InvalidSpaceError("Categorical: choices must not be empty")
        index = {_choice_key(c): i for i, c in enumerate(choices)}
        if len(index) < len(choices):
            dup = next(c for i, c in enumerate(choices) if index[_choice_key(c)] != i)
            raise InvalidSpaceError(f"Categorical: duplicate choice {dup!r} in {list(choices)!r}")
        k = len(choices)
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "_typed", tuple((type(c), c) for c in choices))
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_u", tuple(i / (k - 1) for i in range(k)) if k > 1 else (0.0,))

    def _encode(self, value: Any) -> float:
        value = _unwrap(value)
        try:
            i = self._index.get(_choice_key(value))
        except TypeError:  # unhashable value
            i = None
        if i is None:
            raise InvalidTrialError(
                f"value {value!r} ({type(value).__name__}) is not one of the choices "
                f"{list(self.choices)!r} (bool never matches a number)"
            )
        return self._u[i]

    def _decode(self, u: Tensor) -> list[Any]:
        k = len(self.choices)
        idx = torch.round(u * (k - 1)).clamp(0, k - 1).to(torch.int64)
        return [self.choices[i] for i in idx.tolist()]

    def _levels(self) -> tuple[float, ...]:
        return self._u

    def _to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}


Param = Union[Real, Integer, Categorical]
_PARAM_TYPES: dict[str, type] = {"real": Real, "integer": Integer, "categorical": Categorical}


class Space:
    """An ordered mapping ``name -> Real | Integer | Categorical``; its order fixes the dims.

    Raises:
        InvalidSpaceError: Unless ``params`` maps non-empty strings to parameter instances.
    """

    def __init__(self, params: Mapping[str, Param]) -> None:
        if not isinstance(params, Mapping) or not params:
            raise InvalidSpaceError(
                f"Space expects a non-empty mapping name -> parameter, got {params!r:.200}"
            )
        for name, param in params.items():
            if not isinstance(name, str) or not name:
                raise InvalidSpaceError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(param, (Real, Integer, Categorical)):
                raise InvalidSpaceError(
                    f"parameter {name!r}: expected Real, Integer or Categorical, got {param!r}"
                )
        self._params: dict[str, Param] = dict(params)
        self._names = tuple(self._params)
        self._dims: DimSpec | None = None

    @property
    def params(self) -> Mapping[str, Param]:
        """Read-only view of the parameters, in encoding order."""
        return MappingProxyType(self._params)

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names, in encoding order."""
        return self._names

    @property
    def dim(self) -> int:
        """Number of encoded dims ``d`` (one per parameter)."""
        return len(self._names)

    @property
    def dims(self) -> DimSpec:
        """Categorical dims and the levels of discrete dims (computed once).

        Integers with more than ``MAX_INTEGER_LEVELS`` values get no levels.
        """
        if self._dims is None:
            params = list(self._params.values())
            cat = tuple(j for j, p in enumerate(params) if isinstance(p, Categorical))
            levels = {j: lv for j, p in enumerate(params) if (lv := p._levels()) is not None}
            self._dims = DimSpec(self.dim, categorical=cat, levels=levels)
        return self._dims

    def __len__(self) -> int:
        return len(self._names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return list(self._params.items()) == list(other._params.items())

    def __hash__(self) -> int:
        return hash(tuple(self._params.items()))

    def __repr__(self) -> str:
        return "Space({" + ", ".join(f"{n!r}: {p!r}" for n, p in self._params.items()) + "})"

    def encode(self, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Tensor:
        """Encodes a trial dict to a ``(d,)``, or n dicts to an ``(n, d)``, float64 CPU tensor.

        Raises:
            InvalidTrialError: For missing or unknown names, wrongly typed,
                non-finite or out-of-range values, or values not among the choices.
        """
        if isinstance(params, Mapping):
            return torch.tensor(self._encode_one(params, ""), dtype=torch.float64)
        if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
            raise InvalidTrialError(f"expected a dict or a list of dicts, got {params!r:.200}")
        rows = [self._encode_one(p, f"trial {i}: ") for i, p in enumerate(params)]
        return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), self.dim)

    def _encode_one(self, trial: Any, where: str) -> list[float]:
        if not isinstance(trial, Mapping):
            raise InvalidTrialError(f"{where}expected a dict name -> value, got {trial!r:.200}")
        missing = [n for n in self._names if n not in trial]
        unknown = [k for k in trial if k not in self._params]
        if missing or unknown:
            pairs = (("missing", missing), ("unknown", unknown))
            wrong = ", ".join(f"{what} parameters {names}" for what, names in pairs if names)
            raise InvalidTrialError(f"{where}{wrong}; expected exactly {list(self._names)}")
        row = []
        for name, param in self._params.items():
            try:
                row.append(param._encode(trial[name]))
            except InvalidTrialError as err:
                raise InvalidTrialError(f"{where}parameter {name!r}: {err}") from None
        return row

    def decode(self, X: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """Decodes ``X (d,)`` to a dict, or ``X (n, d)`` to a list of n dicts.

        ``X`` (a tensor of any real dtype and device, or a numpy array) is
        clamped to ``[0, 1]`` first, so outputs are always inside the bounds:
        Integer -> ``int``, Real -> ``float``, Categorical -> the original choice.

        Raises:
            InvalidTrialError: If ``X`` is not numeric, has the wrong shape or
                contains NaN or inf.
        """
        U, single = self._unit_matrix(X)  # (n, d) float64 CPU in [0, 1]
        columns = [p._decode(U[:, j]) for j, p in enumerate(self._params.values())]
        rows = [dict(zip(self._names, values)) for values in zip(*columns)]
        return rows[0] if single else rows

    def _unit_matrix(self, X: Any) -> tuple[Tensor, bool]:
        """Validates ``X``; returns it clamped as ``(n, d)`` float64 CPU, and ``X.ndim == 1``."""
        try:
            t = X.detach() if isinstance(X, Tensor) else torch.as_tensor(X)
        except (TypeError, ValueError, RuntimeError) as err:
            raise InvalidTrialError(f"cannot read X as numbers: {err}") from None
        if t.is_complex() or t.ndim not in (1, 2) or t.shape[-1] != self.dim:
            raise InvalidTrialError(
                f"X must be real with shape ({self.dim},) or (n, {self.dim}), "
                f"got dtype {t.dtype} and shape {tuple(t.shape)}"
            )
        single = t.ndim == 1
        t = t.to(device="cpu", dtype=torch.float64).reshape(-1, self.dim)
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            i, j = bad.nonzero()[0].tolist()
            raise InvalidTrialError(
                f"X[{i}, {j}] (parameter {self._names[j]!r}) is {t[i, j].item()}; "
                "expected finite values in [0, 1]"
            )
        return t.clamp(0.0, 1.0), single

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description; :meth:`from_dict` inverts it."""
        return {"params": [{"name": n, **p._to_dict()} for n, p in self._params.items()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Space:
        """Builds a space from :meth:`to_dict` output; InvalidSpaceError if malformed."""
        entries = data.get("params") if isinstance(data, Mapping) else None
        if not isinstance(entries, list):
            raise InvalidSpaceError(f"expected a dict with a 'params' list, got {data!r:.200}")
        params: dict[str, Param] = {}
        for entry in entries:
            fields = dict(entry) if isinstance(entry, Mapping) else {}
            name, kind = fields.pop("name", None), fields.pop("type", None)
            if not isinstance(name, str) or not name or name in params:
                raise InvalidSpaceError(f"bad or repeated parameter name in {entry!r:.200}")
            if kind not in list(_PARAM_TYPES):
                msg = f"'type' must be in {list(_PARAM_TYPES)}, got {kind!r}"
                raise InvalidSpaceError(f"parameter {name!r}: {msg}")
            try:
                params[name] = _PARAM_TYPES[kind](**fields)
            except (TypeError, InvalidSpaceError) as err:
                raise InvalidSpaceError(f"parameter {name!r}: {err}") from None
        return cls(params)
