"""Pareto fronts, hypervolume and reference points, batched over leading dims.

Convention: every objective is *maximised* (the facade negates minimised
ones), and a point is feasible when the caller says so (a boolean mask).
Shapes: ``Y (..., n, m)`` holds n points of m objectives for each leading
index (problems P, Monte-Carlo samples S, ...).

- :func:`pareto_mask`: which points no other feasible point dominates.
- :func:`hypervolume`: the volume dominated by the points and bounded below
  by a reference point; exact, in closed form for m = 2 (sorted staircase)
  and through BoTorch's ``Hypervolume`` (Fonseca et al. 2006's dimension-sweep
  algorithm) for m >= 3, one leading index at a time.
- :func:`infer_reference_point`: BoTorch's rule (``infer_reference_point``):
  the nadir of the front minus 10 % of the front's range per objective.
"""

from __future__ import annotations

import torch
from botorch.utils.multi_objective.hypervolume import Hypervolume
from torch import Tensor

from gpbo.errors import InvalidArgumentError

__all__ = ["hypervolume", "infer_reference_point", "pareto_mask"]

_MIN_RANGE = 1e-9  # an objective with one value on the front still gets a positive margin
_REF_SCALE = 0.1  # BoTorch's infer_reference_point default


def pareto_mask(Y: Tensor, feasible: Tensor | None = None) -> Tensor:
    """Points of ``Y`` that no other (feasible) point dominates.

    A point dominates another when it is at least as good in every objective
    and better in one. Duplicated points are all kept. Infeasible points are
    never on the front and dominate nothing.

    Args:
        Y: (..., n, m) objective values to maximise; NaN is not allowed.
        feasible: (..., n) bool, or None (all feasible).

    Returns:
        (..., n) bool mask of the Pareto-optimal feasible points.
    """
    _check_values(Y, "Y")
    ok = torch.ones(Y.shape[:-1], dtype=torch.bool, device=Y.device) if feasible is None else feasible.bool()
    if ok.shape != Y.shape[:-1]:
        raise InvalidArgumentError(f"feasible must have shape {tuple(Y.shape[:-1])}, got {tuple(ok.shape)}")
    a, b = Y.unsqueeze(-2), Y.unsqueeze(-3)  # (..., n, 1, m) the point, (..., 1, n, m) the others
    dominated_by = (b >= a).all(-1) & (b > a).any(-1) & ok.unsqueeze(-2)  # (..., n, n): j dominates i
    return ok & ~dominated_by.any(-1)


def hypervolume(Y: Tensor, ref_point: Tensor, feasible: Tensor | None = None) -> Tensor:
    """Hypervolume dominated by the feasible points of ``Y`` above ``ref_point``.

    Args:
        Y: (..., n, m) objective values to maximise.
        ref_point: (..., m) or (m,) lower corner; points not strictly above
            it in every objective add nothing.
        feasible: (..., n) bool, or None (all feasible).

    Returns:
        (...) hypervolumes (0 where no feasible point is above the reference).
    """
    _check_values(Y, "Y")
    m = Y.shape[-1]
    ref = torch.as_tensor(ref_point, dtype=Y.dtype, device=Y.device).expand(*Y.shape[:-2], m)  # (..., m)
    keep = pareto_mask(Y, feasible) & (Y > ref.unsqueeze(-2)).all(-1)  # (..., n)
    if m == 2:
        return _hypervolume_2d(Y, ref, keep)
    flat_Y, flat_ref, flat_keep = Y.reshape(-1, *Y.shape[-2:]), ref.reshape(-1, m), keep.reshape(-1, Y.shape[-2])
    out = [Hypervolume(r).compute(y[k]) if bool(k.any()) else 0.0 for y, r, k in zip(flat_Y, flat_ref, flat_keep)]
    return torch.tensor(out, dtype=Y.dtype, device=Y.device).reshape(Y.shape[:-2])


def infer_reference_point(Y: Tensor, feasible: Tensor | None = None) -> Tensor:
    """A reference point below the front: nadir - 0.1 x range, per objective.

    BoTorch's ``infer_reference_point`` rule (with its default scale 0.1),
    applied to the Pareto front of the feasible points. With one point on
    the front the range is the point's absolute value (at least 1e-9).

    Args:
        Y: (..., n, m) objective values to maximise.
        feasible: (..., n) bool, or None.

    Returns:
        (..., m) reference points; NaN where a leading index has no feasible point.
    """
    front = pareto_mask(Y, feasible).unsqueeze(-1)  # (..., n, 1)
    inf = torch.tensor(float("inf"), dtype=Y.dtype, device=Y.device)
    nadir = torch.where(front, Y, inf).amin(-2)  # (..., m)
    ideal = torch.where(front, Y, -inf).amax(-2)
    single = front.sum(-2) == 1  # (..., 1)
    span = torch.where(single, nadir.abs(), ideal - nadir).clamp_min(_MIN_RANGE)
    ref = nadir - _REF_SCALE * span
    return torch.where(front.any(-2), ref, torch.full_like(ref, float("nan")))


def _hypervolume_2d(Y: Tensor, ref: Tensor, keep: Tensor) -> Tensor:
    """Exact 2-objective hypervolume of the kept points: a staircase sum after sorting by the first objective."""
    y1 = torch.where(keep, Y[..., 0], ref[..., :1])  # (..., n) dropped points sit on the reference
    y2 = torch.where(keep, Y[..., 1], ref[..., 1:])
    order = y1.argsort(-1, descending=True)
    y1, y2 = y1.gather(-1, order), y2.gather(-1, order)
    best2 = torch.cummax(y2, -1).values  # (..., n) highest second objective among points with a larger first
    prev = torch.cat([ref[..., 1:], best2[..., :-1]], -1)
    return ((y1 - ref[..., :1]) * (best2 - prev).clamp_min(0)).sum(-1)


def _check_values(Y: Tensor, name: str) -> None:
    if not isinstance(Y, Tensor) or Y.dim() < 2 or not Y.is_floating_point():
        raise InvalidArgumentError(f"{name} must be a float tensor of shape (..., n, m)")
    if bool(Y.isnan().any()):
        raise InvalidArgumentError(f"{name} must not contain NaN")
