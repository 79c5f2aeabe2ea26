"""Keep the acquisition search off configurations already evaluated (discrete spaces).

On a space of only integer and categorical dims the same configuration can be
suggested twice, and with a learned noise the GP sees some value in measuring
it again. For the objectives gpbo is built for (deterministic or nearly so,
such as cross-validated losses) a repeat wastes an evaluation
(docs/decisions/0007-avoid-observed-on-discrete-spaces.md). BoTorch's
``optimize_acqf_discrete(X_avoid=...)`` offers the same exclusion.

The wrapped acquisition is -inf at observed (and pending) configurations, so
the multi-start search picks the best *new* one; when every configuration
has been seen, all values are -inf and the search still returns a valid
(repeated) point. Spaces with a continuous dim are left alone: exact repeats
there have probability zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gpbo.acquisition.protocol import AcquisitionFn, screening, with_screen

_CHUNK = 256  # observations compared at a time: bounds the (..., P, q, chunk, d) temporary


def avoid_observed(fn: AcquisitionFn, observed: Tensor) -> AcquisitionFn:
    """``fn`` with the value -inf wherever a point of the batch equals a row of ``observed``.

    Args:
        fn: acquisition, X (..., P, q, d) -> (..., P).
        observed: (P, n, d) configurations already evaluated or pending.

    Returns:
        The masked acquisition, same signature.
    """

    def masked(X: Tensor) -> Tensor:
        values = fn(X)  # (..., P)
        return values.masked_fill(_seen(X, observed), -torch.inf)

    if screening(fn) is fn:
        return masked
    return with_screen(masked, avoid_observed(screening(fn), observed))


def _seen(X: Tensor, observed: Tensor) -> Tensor:
    """(..., P) whether any of the q points of X (..., P, q, d) is a row of observed (P, n, d)."""
    seen = torch.zeros(X.shape[:-2], dtype=torch.bool, device=X.device)
    points = X.detach().unsqueeze(-2)  # (..., P, q, 1, d)
    for start in range(0, observed.shape[-2], _CHUNK):
        block = observed[:, None, start:start + _CHUNK, :]  # (P, 1, c, d)
        seen |= (points == block).all(-1).any(-1).any(-1)
    return seen
