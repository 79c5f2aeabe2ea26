"""``x.sum(-1)`` over a short last dim (objectives, constraints), as additions.

Torch's CPU reduction over an innermost dim of two elements is about ten
times slower than one elementwise addition of the two slices: 48 ms against
5 ms for a (128, 10, 64, 16, 1, 2) float64 tensor, one thread, measured in
docs/decisions/0053-short-sums-and-2d-boxes.md. qLogNEHVI sums its
(S, ..., P, cells, q, m) log lengths over m at every step of the ascent.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["sum_last"]

_SHORT = 4  # up to this many terms as additions; torch's reduction beyond


def sum_last(x: Tensor) -> Tensor:
    """``(..., k) -> (...)``: ``x.sum(-1)``, as k - 1 additions when k <= 4 (the same value up to rounding)."""
    k = x.shape[-1]
    if k == 0 or k > _SHORT:
        return x.sum(-1)
    parts = x.unbind(-1)
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
