"""The diverging benchmark problems: the base function plus a steep penalty in one corner."""

from __future__ import annotations

import math

import pytest

from benchmarks import problems
from benchmarks.sweep import SUITES


def test_divergence_is_zero_below_the_threshold_and_spans_six_decades_above():
    assert problems.divergence(0.0) == problems.divergence(problems.DIVERGE_FROM) == 0.0
    assert problems.divergence(problems.DIVERGE_FROM + 1e-12) == pytest.approx(1e3)
    assert problems.divergence(1.0) == pytest.approx(1e9)
    mid = (problems.DIVERGE_FROM + 1.0) / 2
    assert math.log10(problems.divergence(mid)) == pytest.approx(6.0)


@pytest.mark.parametrize("base", [problems.branin, problems.hartmann6])
def test_diverging_problem_adds_the_penalty_and_keeps_the_optimum(base):
    p = problems.get(f"{base.name}_diverge")
    assert SUITES["diverging"] == list(problems.DIVERGING) and p.name in problems.DIVERGING
    assert p.optimum == base.optimum and p.params == base.params and p.noise_std == 0.0
    first, spec = next(iter(base.params.items()))
    low = {k: (s.low + s.high) / 2 for k, s in base.params.items()}
    high = {**low, first: spec.high}
    assert p(low) == base(low)  # the middle of the box is outside the divergence
    assert p(high) == pytest.approx(base(high) + 1e9)
