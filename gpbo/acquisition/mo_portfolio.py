"""Multi-objective acquisitions taking turns, point by point (default: qLogNEHVI and qLogNParEGO).

qLogNEHVI adds the hypervolume of the front it has found; qLogNParEGO
improves a random augmented-Chebyshev scalarisation, a new direction each
time, so its points spread along the front, gaps and unexplored ends
included. On C2-DTLZ2, whose feasible front has three disconnected pieces,
qLogNEHVI alone never found one of the two end pieces in 8 of 16 runs (50
evaluations); taking turns, in 2 of 16
(docs/decisions/0045-multi-objective-portfolio.md). With constraints the
engine's default is qLogNEHVI, qLogNEHVI, qLogNParEGO in turn
(`gpbo.acquisition.constrained_multi_objective_default`, decision 0051).

A `RoundRobin` whose member for a point is chosen by the number
of points the context holds: the observed ones and the pending ones (the
running trials, and in a sequential q-batch the batch's earlier picks),
modulo the number of members. So successive suggestions alternate, a
sequential q-batch mixes the members, the choice needs no memory between
calls (a resumed study continues exactly), and all P problems of a batched
call, which share n, use the same member (batched equals looped). With
``q_batch="joint"`` the whole batch goes to one member.
"""

from __future__ import annotations

from gpbo.acquisition.nehvi import qLogNEHVI
from gpbo.acquisition.parego import qLogNParEGO
from gpbo.acquisition.portfolio import RoundRobin
from gpbo.acquisition.protocol import Acquisition, AcquisitionContext
from gpbo.errors import InvalidArgumentError

__all__ = ["MultiObjectiveRoundRobin"]


class MultiObjectiveRoundRobin(RoundRobin):
    """Score with ``members[k % len(members)]``, k the observed plus pending points of the context.

    Args:
        members: multi-objective acquisitions (``multi_objective = True``,
            ``joint = True``); default ``(qLogNEHVI(), qLogNParEGO())``.

    Raises:
        InvalidArgumentError: if ``members`` is empty or holds an acquisition
            that is not a joint multi-objective one.
    """

    joint = True
    multi_objective = True

    @staticmethod
    def _default_members() -> tuple[Acquisition, ...]:
        return (qLogNEHVI(), qLogNParEGO())

    @staticmethod
    def _check_member(member: object) -> None:
        if not (callable(member) and getattr(member, "multi_objective", False) and getattr(member, "joint", False)):
            raise InvalidArgumentError(
                "MultiObjectiveRoundRobin members must be joint multi-objective acquisitions "
                f"(e.g. qLogNEHVI, qLogNParEGO), got {member!r}")

    def member_for(self, ctx: AcquisitionContext) -> Acquisition:
        """The member that scores the next point of this context."""
        k = ctx.X.shape[-2] + (0 if ctx.pending is None else ctx.pending.shape[-2])
        return self.members[k % len(self.members)]
