"""Checks of the options that enter the facade (`Optimizer`, `minimize`).

Each check returns the clean value or raises a `gpbo.errors` exception whose
message names the option, the bad value and what was expected.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from gpbo.errors import InvalidArgumentError, InvalidSpaceError, InvalidTrialError
from gpbo.space import Space


def as_space(space: Any) -> Space:
    """A `Space` from a Space or a dict of parameters."""
    if isinstance(space, (Space, Mapping)):
        return space if isinstance(space, Space) else Space(space)
    raise InvalidSpaceError(f"space must be a Space or a dict of parameters, got {type(space).__name__} {space!r}")


def as_list(name: str, values: Any) -> list[Any]:
    """A list from any iterable that is not a str, bytes or mapping."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidTrialError(f"{name} must be a list, got {type(values).__name__} {values!r:.200}")
    return list(values)


def check_bool(name: str, value: Any) -> bool:
    """A Python or NumPy bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; else `InvalidArgumentError`."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidArgumentError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_int(name: str, value: Any, low: int, high: float = math.inf) -> int:
    """An int (not a bool) with ``low <= value < high``."""
    integer = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if not integer or not low <= value < high:
        limit = "" if high == math.inf else f" and < {high}"
        raise InvalidArgumentError(f"{name} must be an int >= {low}{limit}, got {type(value).__name__} {value!r}")
    return int(value)


def is_finite_real(value: Any) -> bool:
    """True for one finite real number that is not a bool (an int beyond float's range is not finite)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_real(name: str, value: Any, *, low: float = 0.0, strict: bool = True) -> float:
    """``value`` as a float, finite and > ``low`` (>= ``low`` when not ``strict``)."""
    ok = is_finite_real(value)
    if not ok or (value <= low if strict else value < low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise InvalidArgumentError(f"{name} must be a finite number {bound}, got {type(value).__name__} {value!r:.200}")
    return float(value)


def check_positive_seconds(name: str, value: Any) -> float | None:
    """None, or a finite real number of seconds > 0."""
    if value is None:
        return None
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not real or not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be None or a number of seconds > 0, got {type(value).__name__} {value!r}")
    return float(value)


def check_device(device: Any) -> torch.device:
    """A usable CPU or CUDA torch device; None is the CPU."""
    if device is None:
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        kind = type(device).__name__
        raise InvalidArgumentError(f"device must be a str, a torch.device or None, got {kind} {device!r}")
    try:
        device = torch.device(device)
    except RuntimeError as exc:
        raise InvalidArgumentError(f"device {device!r} is not a valid torch device: {exc}") from exc
    if device.type not in ("cpu", "cuda"):
        raise InvalidArgumentError(f"device must be a CPU or CUDA device, got {str(device)!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"device {str(device)!r} requested but CUDA is not available")
    return device


def check_dtype(dtype: Any) -> torch.dtype:
    """torch.float32 or torch.float64."""
    if dtype not in (torch.float32, torch.float64):
        raise InvalidArgumentError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype
