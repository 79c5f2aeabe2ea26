"""How the engine reads the columns of a multi-outcome Y (P, n, O).

The first ``n_objectives`` columns are objectives to *maximise*; the next
``n_constraints`` are constraints, feasible where the value is ``<= 0``.
The facade turns a user's ``objectives={"error": "minimize", ...}`` and
``constraints={"memory_gb": ("<=", 16.0)}`` into this form (negating
minimised objectives, moving each bound to zero); the engine and the
acquisitions only ever see this form. A single-objective study without
constraints is ``Outcomes()`` and may pass Y as (P, n).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gpbo.errors import InvalidArgumentError

__all__ = ["Outcomes", "impute_constraints", "is_feasible"]


@dataclass(frozen=True)
class Outcomes:
    """The outcome columns of Y, in the engine's convention.

    Attributes:
        n_objectives: objectives, maximised (>= 1).
        n_constraints: constraints after them, feasible iff ``<= 0`` (>= 0).
        ref_point: hypervolume reference point in the maximisation units of
            the objectives (length ``n_objectives``), or None to infer one
            from the data (see `gpbo.pareto.infer_reference_point`).
    """

    n_objectives: int = 1
    n_constraints: int = 0
    ref_point: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name, low in (("n_objectives", 1), ("n_constraints", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidArgumentError(f"Outcomes.{name} must be an int >= {low}, got {value!r}")
        if self.ref_point is not None:
            listed = isinstance(self.ref_point, Sequence) and not isinstance(self.ref_point, (str, bytes))
            if not listed or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in self.ref_point):
                raise InvalidArgumentError(f"Outcomes.ref_point must be None or a list of numbers, got {self.ref_point!r:.200}")
            ref = tuple(_as_float(v) for v in self.ref_point)
            if len(ref) != self.n_objectives or not all(math.isfinite(v) for v in ref):
                raise InvalidArgumentError(
                    f"Outcomes.ref_point must hold {self.n_objectives} finite numbers, got {self.ref_point!r}"
                )
            object.__setattr__(self, "ref_point", ref)

    @property
    def n_outcomes(self) -> int:
        """O, the number of columns of Y."""
        return self.n_objectives + self.n_constraints

    @property
    def is_single(self) -> bool:
        """One objective and no constraint: today's single-objective engine."""
        return self.n_outcomes == 1


def _as_float(value: numbers.Real) -> float:
    """``float(value)``; an int beyond float's range is infinite."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def is_feasible(values: Tensor, n_objectives: int) -> Tensor:
    """(..., O) outcome values, objectives first -> (...) bool: every constraint column ``<= 0``.

    Without constraint columns every point is feasible.
    """
    return (values[..., n_objectives:] <= 0).all(-1)


def impute_constraints(G: Tensor, F: Tensor | None = None) -> Tensor:
    """Constraint columns with their non-finite entries imputed, from the finite entries of ``G``.

    A NaN or ``+inf`` entry (not told, or failed) is *violated*: the largest
    finite ``g`` of its column if some point violates the constraint, else the
    column's finite spread (max - min), or 1.0 when that is zero or the column
    has no finite entry. A ``-inf`` entry is satisfied: the column's smallest
    finite ``g``, at most 0.

    Args:
        G: (n, C) constraint values ``g`` (feasible iff ``<= 0``) the fill is computed from.
        F: (f, C) values to impute with that fill; None: ``G`` itself.

    Returns:
        (f, C) (or (n, C)) float64, every entry finite.
    """
    finite = G.isfinite()
    some = finite.any(0)  # (C,)
    g_max = torch.where(some, torch.where(finite, G, -math.inf).amax(0), 0.0)
    g_min = torch.where(some, torch.where(finite, G, math.inf).amin(0), 0.0)
    spread = torch.where(g_max > g_min, g_max - g_min, torch.ones_like(g_max))
    violated, satisfied = torch.where(g_max > 0, g_max, spread), g_min.clamp(max=0.0)
    F = G if F is None else F
    return torch.where(F.isfinite(), F, torch.where(F == -math.inf, satisfied, violated))
