"""RoundRobin: which member scores, its values, and how the engine's batches mix members."""

from __future__ import annotations

import pytest
import torch

from gpbo.acquisition import UCB, LogAugmentedEI, LogEI, RoundRobin, ThompsonSampling, get, qLogNEI
from gpbo.engine import suggest
from gpbo.errors import InvalidArgumentError


@pytest.mark.parametrize("n", [6, 7, 8])
def test_member_is_chosen_by_the_number_of_points_and_scores_exactly(n: int, make_gp, make_ctx) -> None:
    ctx = make_ctx(make_gp(P=2, n=n))
    X = torch.rand(5, 2, 1, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    members = (LogEI(), UCB(beta=0.5), UCB(beta=4.0))
    expected = members[n % 3](ctx)(X)
    torch.testing.assert_close(RoundRobin(members)(ctx)(X), expected, rtol=0, atol=0)


def test_default_members_alternate_augmented_ei_and_ucb(make_gp, make_ctx) -> None:
    rr = RoundRobin()
    assert [type(rr.member_for(make_ctx(make_gp(n=n)))) for n in (6, 7)] == [LogAugmentedEI, UCB]
    assert rr.members[0].c == 1.0 and rr.members[1].beta == 2.0


def test_log_ei_ucb_keeps_the_previous_portfolio() -> None:
    assert [type(m) for m in get("log_ei_ucb").members] == [LogEI, UCB]
    assert [type(m) for m in get("log_aei_ucb").members] == [LogAugmentedEI, UCB]


class _Recording:
    """A one-point acquisition that records the number of points it was built on."""

    joint = False

    def __init__(self, name: str, log: list[tuple[str, int]]) -> None:
        self.name, self.log = name, log

    def __call__(self, ctx):
        self.log.append((self.name, ctx.X.shape[-2]))
        return lambda X: ctx.model.posterior(X).mean.squeeze(-1)


def test_engine_batch_and_pending_points_advance_the_turn() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.rand(2, 6, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1)
    log: list[tuple[str, int]] = []
    rr = RoundRobin((_Recording("a", log), _Recording("b", log)))
    suggest(X, Y, q=3, seed=0, settings={"acquisition": rr})
    assert log == [("a", 6), ("b", 7), ("a", 8)]
    log.clear()
    suggest(X, Y, q=2, seed=0, pending=torch.rand(2, 1, 2, dtype=torch.float64), settings={"acquisition": rr})
    assert log == [("b", 7), ("a", 8)]


def test_a_joint_member_takes_its_turn_for_one_point_and_batched_equals_looped() -> None:
    g = torch.Generator().manual_seed(2)
    X = torch.rand(3, 9, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1)
    rr = RoundRobin((LogEI(), ThompsonSampling(num_features=64), qLogNEI()))
    batched = suggest(X, Y, q=4, seed=3, settings={"acquisition": rr}).candidates  # (P, q, d)
    assert batched.shape == (3, 4, 2)
    for p in range(3):
        looped = suggest(X[p : p + 1], Y[p : p + 1], q=4, seed=3, settings={"acquisition": rr}).candidates
        torch.testing.assert_close(looped[0], batched[p], atol=1e-4, rtol=0)


@pytest.mark.parametrize("members", [(), (LogEI(), 3)])
def test_bad_members_raise(members: tuple) -> None:
    with pytest.raises(InvalidArgumentError, match="RoundRobin"):
        RoundRobin(members)
