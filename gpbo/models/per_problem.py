"""Products of batched point sets with per-problem matrices, as one GEMM per problem.

A model holds one matrix per problem, ``(P, n, n)`` (an inverse Cholesky
factor, the SVGP's ``(M, M)`` covariance term), and is asked about points
``(..., P, a, d)`` with leading dims (restarts, line-search steps, raw
samples). Broadcasting ``(..., P, a, n) @ (P, n, n)`` multiplies every
leading element by its own view of the matrix: a matrix-vector product per
point, memory-bound, and where the leading dims cannot be merged into one
stride, a copy of every matrix per leading element (1,024 problems at
n = 30, 13 restarts, 12 line-search steps: 1.15 GB per call, computed).
Folding the leading dims into rows gives ``P`` matrix products
``(B a, n) @ (n, n)`` instead, which made batched sweeps at large P faster.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fold", "unfold", "per_problem_matmul"]


def fold(A: Tensor) -> Tensor:
    """``(..., P, a, k) -> (P, B a, k)``, B = prod(...): each problem's rows together."""
    P, a, k = A.shape[-3:]
    return A.reshape(-1, P, a, k).movedim(0, 1).reshape(P, -1, k)


def unfold(t: Tensor, lead: torch.Size, a: int) -> Tensor:
    """``(P, B a, k) -> (..., P, a, k)``, the inverse of :func:`fold` (``lead`` = ``...``)."""
    P, k = t.shape[0], t.shape[-1]
    return t.reshape(P, -1, a, k).movedim(1, 0).reshape(*lead, P, a, k)


def per_problem_matmul(A: Tensor, B: Tensor) -> Tensor:
    """``A (..., P, a, M) @ B (P, M, N) -> (..., P, a, N)`` as P matrix products."""
    return unfold(fold(A) @ B, A.shape[:-3], A.shape[-2])
