"""Validation of the named rules' parameters (clear `InvalidArgumentError`s)."""

from __future__ import annotations

import math
import numbers
from typing import Any

from gpbo.errors import InvalidArgumentError


def positive(name: str, value: Any, *, low: float = 0.0, strict: bool = True) -> float:
    """``value`` as a float, finite and > ``low`` (>= ``low`` when not ``strict``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise InvalidArgumentError(f"{name} must be a finite number {bound}, got {type(value).__name__} {value!r:.200}")
    return float(value)


def count(name: str, value: Any, low: int = 0) -> int:
    """``value`` as an int >= ``low``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise InvalidArgumentError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r:.200}")
    return int(value)
