"""The posterior at new points jointly with a fixed baseline (:class:`gpbo.models.protocol.BaselineCross`).

The multi-outcome Monte-Carlo acquisitions sample new points X jointly with
a baseline X_b that is fixed for a whole suggestion, and need only the
terms that involve X: the mean at X, ``Cov(f(X_b), f(X))`` and
``Cov(f(X), f(X))``.

- :class:`ExactCross` (the exact GP's): with ``V = k(., X_train) L^-T``,
  ``Cov(f(X_b), f(X)) = k(X_b, X) - V_b V_x^T``; ``V_b`` is computed once,
  so a call costs the kernel of X with the training data and the baseline,
  not that of the baseline with the training data and itself.
- :class:`ConcatenatedCross` (any surrogate's): the posterior at the
  concatenation ``[X_b, X]``, sliced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gpbo.models.per_problem import per_problem_matmul
from gpbo.models.protocol import BaselineCross, CrossPosterior, Posterior

if TYPE_CHECKING:
    from gpbo.models.exact import ExactGP

__all__ = ["ConcatenatedCross", "ExactCross", "cross_posterior_of"]


@dataclass(frozen=True)
class ExactCross:
    """The exact GP's posterior at new points jointly with the baseline ``X_b``.

    Attributes:
        model: the ExactGP.
        X_b: (P, nb, d) the baseline.
        v_b: (P, nb, n) ``k(X_b, X_train) L^-T``, standardised units.
    """

    model: ExactGP
    X_b: Tensor
    v_b: Tensor

    def at(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """mean_x (..., P, q), cov_bx (..., P, nb, q), cov_xx (..., P, q, q) at X (..., P, q, d), Y units."""
        gp = self.model
        mean, cov, v = gp.standardised_moments(X)  # (..., P, q), (..., P, q, q), (..., P, q, n)
        cov_xb = gp.kernel(X, self.X_b.to(X)) - per_problem_matmul(v, self.v_b.to(X).transpose(-1, -2))  # (..., P, q, nb)
        post = Posterior.from_standardised(mean, cov, gp.y_mean, gp.y_std)
        return post.mean, cov_xb.transpose(-1, -2) * gp.y_std.pow(2)[:, None, None], post.covariance


@dataclass(frozen=True)
class ConcatenatedCross:
    """Any single-output surrogate's posterior at new points jointly with the baseline ``X_b``.

    Attributes:
        model: the surrogate (posterior mean with the points along ``points_dim``,
            covariance (..., a, b) over the points).
        X_b: (P, nb, d) the baseline.
        points_dim: the dim of the posterior mean that indexes the points:
            -1 for a single-output model (mean (..., P, q)), -2 for a
            multi-output one (mean (..., P, q, O)).
    """

    model: object
    X_b: Tensor
    points_dim: int = -1

    def at(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """mean_x, cov_bx (..., nb, q), cov_xx (..., q, q) at X (..., P, q, d), in the model's layout."""
        nb, q = self.X_b.shape[-2], X.shape[-2]
        X_b = self.X_b.to(X).expand(X.shape[:-2] + self.X_b.shape[-2:])  # (..., P, nb, d)
        post = self.model.posterior(torch.cat([X_b, X], dim=-2))
        return post.mean.narrow(self.points_dim, nb, q), post.covariance[..., :nb, nb:], post.covariance[..., nb:, nb:]


def cross_posterior_of(model: object, X_b: Tensor, points_dim: int = -1) -> BaselineCross:
    """The model's own :class:`BaselineCross` of X_b (P, nb, d) if it has the capability, else the generic one.

    ``points_dim``: as in :class:`ConcatenatedCross`, for the generic one.
    """
    if isinstance(model, CrossPosterior):
        return model.cross_posterior(X_b)
    return ConcatenatedCross(model, X_b, points_dim)
