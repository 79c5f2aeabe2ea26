"""Decisions for several studies at once equal each study's alone: the rule, the rule registry and the facade."""

from __future__ import annotations

import pytest
import torch

import gpbo
from gpbo.early_stopping import ASHA, Curves, Median, ModelBasedRule, should_stop_many
from gpbo.errors import InvalidArgumentError, InvalidTrialError

from .test_model_based import MAX_STEP, _late_learners, _study


def _requests() -> list[tuple[Curves, int]]:
    """Studies of different sizes: model decisions both ways (with and without a scale), a median-rule
    fallback (too few complete), a trial too early to judge, one already ahead, and a late learner."""
    bad, best = torch.tensor([0.95, 0.95, 0.5]), torch.tensor([0.3, 0.3, 0.5])
    out = []
    for seed, n_done in ((0, 30), (1, 12), (2, 45)):
        curves, _ = _study(n_done, [8, 8, 3, 20], seed=seed,
                           X_partial=torch.stack([bad, best, bad, bad]).double())
        out += [(curves, n_done), (curves, n_done + 1), (curves, n_done + 2), (curves, n_done + 3)]
    few, _ = _study(2, [10, 10], seed=3)
    out += [(few, 2), (few, 3)]
    late, _ = _late_learners(seed=2)
    out.append((late, late.n_trials - 1))
    return out


def test_many_studies_decide_as_each_alone() -> None:
    """One (rule, curves, index) per study, a fresh rule each: the batched answers equal the single ones,
    both answers occur, and a second batched call (everything cached) says the same."""
    requests = _requests()
    alone = [ModelBasedRule().should_stop(curves, i) for curves, i in requests]
    assert True in alone and False in alone
    rules = [ModelBasedRule() for _ in requests]
    together = ModelBasedRule.should_stop_many([(r, c, i) for r, (c, i) in zip(rules, requests)])
    assert together == alone
    assert ModelBasedRule.should_stop_many([(r, c, i) for r, (c, i) in zip(rules, requests)]) == alone


def test_batched_posteriors_and_scales_equal_each_alone() -> None:
    """After a batched decision, predict_final and the backtest scales (cached from the padded batch)
    equal a fresh rule's own (posterior 1e-9, scales 1e-6: the batched fit agrees to ~1e-9); the scales are not
    all 1, so a mix-up would show."""
    requests = [(curves, i) for curves, i in _requests() if i in (30, 12, 45, curves.n_trials - 1)]
    rules = [ModelBasedRule() for _ in requests]
    ModelBasedRule.should_stop_many([(r, c, i) for r, (c, i) in zip(rules, requests)])
    scales = []
    for rule, (curves, index) in zip(rules, requests):
        batched, alone = rule.predict_final(curves), ModelBasedRule().predict_final(curves)
        for a, b in zip(batched, alone):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        steps = rule._scale_steps(curves, float(curves.steps[index][-1]))
        cached = rule._cache.copy()
        scales.append(rule._backtests(curves, steps))
        assert rule._cache.keys() == cached.keys()  # read from the batch's cache, nothing recomputed
        assert scales[-1] == pytest.approx(ModelBasedRule()._backtests(curves, steps), rel=1e-6)  # the fits agree to ~1e-9
    assert len({round(v, 6) for row in scales for v in row}) > 2


def test_the_registry_batches_model_rules_and_asks_the_others_one_by_one() -> None:
    requests = _requests()[:6]
    calls = []

    class Spy:
        def should_stop(self, curves: Curves, index: int) -> bool:
            calls.append(index)
            return index % 2 == 0

    rules = [ModelBasedRule(), ASHA(), Spy(), Median(), ModelBasedRule(), Spy()]
    got = should_stop_many([(r, c, i) for r, (c, i) in zip(rules, requests)])
    assert got == [r.should_stop(c, i) for r, (c, i) in zip(rules, requests)]
    assert calls[:2] == [requests[2][1], requests[5][1]]


def test_bad_requests_raise() -> None:
    curves, _ = _study(3, [5])
    with pytest.raises(InvalidArgumentError, match="ModelBasedRule rules, got ASHA"):
        ModelBasedRule.should_stop_many([(ASHA(), curves, 3)])
    with pytest.raises(InvalidArgumentError, match="index must be an int in \\[0, 4\\), got 7"):
        ModelBasedRule.should_stop_many([(ModelBasedRule(), curves, 3), (ModelBasedRule(), curves, 7)])
    with pytest.raises(InvalidArgumentError, match="curves must be"):
        ModelBasedRule.should_stop_many([(ModelBasedRule(), "curves", 0)])


def _optimizer(seed: int, n_done: int) -> tuple[gpbo.Optimizer, gpbo.Trial]:
    """A study of ``n_done`` complete curves and one running trial with 10 reports of a poor curve."""
    opt = gpbo.Optimizer({"x": gpbo.Real(0.0, 1.0)}, seed=seed, max_step=MAX_STEP, maximize=True)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n_done):
        t = opt.ask()
        top = 0.6 + 0.3 * float(torch.rand((), generator=gen))
        for step in range(1, MAX_STEP + 1):
            opt.report(t, top - 0.3 / step, step)
        opt.tell(t, top - 0.3 / MAX_STEP)
    t = opt.ask()
    for step in range(1, 11):
        opt.report(t, 0.2 - 0.3 / step, step)
    return opt, t


def test_optimizers_decide_together_as_each_alone() -> None:
    pairs = [_optimizer(seed, n) for seed, n in ((0, 12), (1, 2), (2, 20))]
    alone = []
    for seed, n in ((0, 12), (1, 2), (2, 20)):
        opt, t = _optimizer(seed, n)
        alone.append(opt.should_stop(t))
    assert alone == [True, False, True]  # study 1 has too few complete curves to judge
    assert gpbo.Optimizer.should_stop_many(pairs) == alone
    opt, t = pairs[0]
    opt.tell(t, 0.1)
    assert gpbo.Optimizer.should_stop_many([pairs[0]]) == [True]  # an ended trial


def test_optimizers_bad_input_raises() -> None:
    opt, t = _optimizer(0, 3)
    with pytest.raises(InvalidArgumentError, match="appears twice"):
        gpbo.Optimizer.should_stop_many([(opt, t), (opt, t)])
    with pytest.raises(InvalidArgumentError, match="\\(Optimizer, trial\\) pairs"):
        gpbo.Optimizer.should_stop_many([("opt", t)])
    with pytest.raises(InvalidArgumentError, match="\\(Optimizer, trial\\) pairs"):
        gpbo.Optimizer.should_stop_many([opt])
    other, _ = _optimizer(1, 1)
    with pytest.raises(InvalidTrialError):
        gpbo.Optimizer.should_stop_many([(other, 5)])
