"""A round-robin portfolio of acquisitions, one point each (default: augmented EI and UCB).

Each acquisition has its own way of failing: on the benchmark suites LogEI
exploits too early on Branin and Ackley-10 where UCB keeps exploring, and UCB
(beta = 2) can settle on a plateau it never leaves (a few Bayesmark seeds),
where LogEI moves on (docs/decisions/0010-default-portfolio-logei-ucb.md). Taking turns hedges between
them, in the spirit of acquisition portfolios (GP-Hedge, Hoffman, Brochu and
de Freitas, 2011; HEBO's MACE, Cowen-Rivers et al., 2022), without their
state: the member that scores a point is chosen by the number of points the
context already holds, ``ctx.X.shape[-2]`` (observed, pending and points
already chosen for the batch, all believed by the engine), modulo the number
of members. So successive suggestions of a study alternate (q = 1), a greedy
q-batch mixes the members, and the choice needs no memory between calls: a
study resumed from storage continues exactly, and all P problems of a batched
call, which share n, use the same member (batched still equals looped).

The EI member is :class:`LogAugmentedEI` (formerly LogEI): with
noisy outcomes LogEI's incumbent, the luckiest noisy draw, made every
well-explored point look hopeless, so half of the points (LogEI's turns)
went to the box's corners on Rosenbrock-4-noisy; augmented EI measures
improvement from where the model is confident and spreads repeated
evaluations (docs/decisions/0011-augmented-ei-in-default-portfolio.md).
``"log_ei_ucb"`` keeps the previous portfolio.

A third member, ``ThompsonSampling``, was measured and not adopted: it helped
the low-dimensional noisy problems (Rosenbrock-4-noisy) and cost the 8- and
10-dimensional ones (docs/decisions/0010-default-portfolio-logei-ucb.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from gpbo.acquisition.analytic import UCB, LogAugmentedEI
from gpbo.acquisition.protocol import (
    Acquisition,
    AcquisitionContext,
    AcquisitionFn,
    required_capabilities,
)
from gpbo.errors import InvalidArgumentError
from gpbo.models.protocol import require

__all__ = ["RoundRobin"]


class RoundRobin:
    """Score with ``members[n % len(members)]``, n the points in the context.

    Args:
        members: acquisitions; default ``(LogAugmentedEI(), UCB(beta=2))``. Each is
            asked for one point at a time (X of shape (..., P, 1, d)), so a
            joint one (``ThompsonSampling``, ``qLogNEI``) takes its turn like
            the others.

    Raises:
        InvalidArgumentError: if ``members`` is empty or holds something that
            is not callable.
    """

    joint = False

    def __init__(self, members: Sequence[Acquisition] | None = None) -> None:
        members = self._default_members() if members is None else tuple(members)
        if not members:
            raise InvalidArgumentError(f"{type(self).__name__} needs at least one member acquisition, got none")
        for m in members:
            self._check_member(m)
        self.members = members

    @staticmethod
    def _default_members() -> tuple[Acquisition, ...]:
        return (LogAugmentedEI(), UCB())

    @staticmethod
    def _check_member(member: object) -> None:
        if not callable(member):
            raise InvalidArgumentError(f"RoundRobin members must be acquisitions (callable), got {member!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.members))})"

    def member_for(self, ctx: AcquisitionContext) -> Acquisition:
        """The member that scores the next point of this context."""
        return self.members[ctx.X.shape[-2] % len(self.members)]

    @property
    def requires(self) -> tuple[type, ...]:
        """The capabilities any member needs (each once, in member order)."""
        return tuple(dict.fromkeys(c for m in self.members for c in required_capabilities(m)))

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, 1, d) -> (..., P)``: the chosen member's function.

        Raises:
            InvalidArgumentError: if the model lacks a capability that any
                member needs, on every turn (not only on that member's).
        """
        for member in self.members:
            for capability in required_capabilities(member):
                require(ctx.model, capability, f"{member!r} in {type(self).__name__}")
        return self.member_for(ctx)(ctx)
