"""Single-objective acquisitions under constraints, with the probability of feasibility in log space.

Outcomes: one objective, then constraints feasible iff ``<= 0`` (`gpbo.outcomes`),
one independent GP each (`gpbo.models.multi_output.MultiOutputGP`).

- :class:`Constrained` wraps a one-point acquisition (LogEI, UCB, the
  default portfolio, ...): ``value(x) = member(x) + sum_c log Phi(-mu_c(x) / sigma_c(x))``,
  the member seeing the objective's own GP and, as incumbent, the best
  *feasible* observation (Gardner et al. 2014's constrained EI for LogEI;
  augmented EI's effective best is taken among the feasible observations).
  Where no observation is feasible yet, the value is the log probability of
  feasibility alone: the search first looks for the feasible region.
  For UCB the sum trades one nat of log feasibility for one unit of the
  objective; with the default output warp the objective the GP sees is
  standardised, so that is one standard deviation of the observations.
- :class:`qLogNEIConstrained`: the joint qLogNEI with constraints, BoTorch's
  recipe: the noisy log-EI of the objective samples, each point weighted by
  ``log fatmoid(-c / eta)``, the incumbent the best feasible baseline sample
  (`gpbo.acquisition.parego.log_noisy_ei`).
"""

from __future__ import annotations

import dataclasses

import torch
from botorch.utils.probability.utils import log_ndtr
from torch import Tensor

from gpbo.acquisition.analytic import MIN_VARIANCE
from gpbo.acquisition.parego import NoisyScalarEI
from gpbo.acquisition.protocol import (
    Acquisition,
    AcquisitionContext,
    AcquisitionFn,
    check_single_point,
    required_capabilities,
)
from gpbo.outcomes import Outcomes

__all__ = ["Constrained", "qLogNEIConstrained", "log_probability_of_feasibility", "objective_context"]


def log_probability_of_feasibility(model: object, X: Tensor, n_objectives: int) -> Tensor:
    """sum_c log P(c(x) <= 0) at single points X (..., P, 1, d): (..., P)."""
    post = model.posterior(X)
    mean = post.mean[..., 0, n_objectives:]  # (..., P, k)
    sigma = post.variance[..., 0, n_objectives:].clamp_min(MIN_VARIANCE).sqrt()
    return log_ndtr(-mean / sigma).sum(-1)


def objective_context(ctx: AcquisitionContext) -> AcquisitionContext:
    """The single-objective context of outcome 0: its own GP, Y (P, n), incumbents the feasible observations.

    ``best_f`` stays the best feasible observation, and ``incumbents`` limits
    an effective best (`gpbo.acquisition.analytic.effective_best`) to the
    feasible observations too.
    """
    return dataclasses.replace(ctx, model=ctx.model.outcome(0), Y=ctx.Y[..., 0], outcomes=Outcomes(),
                               ref_point=None, incumbents=ctx.feasible)


class Constrained:
    """A one-point acquisition plus the log probability of feasibility (see the module docstring).

    Args:
        base: a ``joint = False`` acquisition for one objective.
    """

    joint = False

    def __init__(self, base: Acquisition) -> None:
        self.base = base

    def __repr__(self) -> str:
        return f"Constrained({self.base!r})"

    @property
    def requires(self) -> tuple[type, ...]:
        """The base's capabilities (checked on the objective's GP)."""
        return required_capabilities(self.base)

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``."""
        fn = self.base(objective_context(ctx))
        any_feasible = ctx.feasible.any(-1)  # (P,)
        m = ctx.outcomes.n_objectives

        def constrained(X: Tensor) -> Tensor:
            check_single_point(X, repr(self))
            log_pof = log_probability_of_feasibility(ctx.model, X, m)  # (..., P)
            return torch.where(any_feasible, fn(X) + log_pof, log_pof)

        return constrained


class qLogNEIConstrained(NoisyScalarEI):
    """qLogNEI of the one objective under constraints (joint over q and pending points)."""

    def scalarise(self, ctx: AcquisitionContext):  # noqa: ANN201
        return lambda Y: Y[..., 0]
