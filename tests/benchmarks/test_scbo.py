"""SCBO (benchmarks/scbo.py), the multi-outcome suite's method ``scbo``: ask/tell, the trust-region rules, its scope."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks import mo_methods as MM
from benchmarks import sweep
from benchmarks.mo_problems import MO, evaluate_params
from benchmarks.scbo import SCBO, TrustRegion


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _inside(problem, params) -> bool:
    return all(s.low <= p[n] <= s.high for p in params for n, s in problem.params.items())


def _step(method, problem, k):
    batch = method.ask(k)
    method.tell(batch, evaluate_params(problem, batch).tolist())
    return batch


def test_scbo_asks_inside_the_bounds_and_replays_to_the_same_next_batch():
    p = MO["branin_disc"]
    live = MM.make("scbo", p, 3, 6, 4)
    design = _step(live, p, 6)
    assert design == MM.initial_design(p, 6, 3)  # the suite's initial design
    b1, b2 = _step(live, p, 4), _step(live, p, 4)
    assert _inside(p, b1 + b2) and len(b1) == len(b2) == 4 and b1 != b2
    assert len({tuple(x.values()) for x in b2}) == 4  # Thompson sampling without replacement
    # the same seed and history (replayed by tell without ask, as a resumed sweep does) -> the same batch
    again = MM.make("scbo", p, 3, 6, 4)
    hist = design + b1
    again.tell(hist, evaluate_params(p, hist).tolist())
    assert again.ask(4) == b2


def test_trust_region_counters_doubling_halving_and_restart():
    tr = TrustRegion(dim=10, q=4)
    assert (tr.length, tr.length_min, tr.length_max) == (0.8, 0.5**7, 1.6)
    assert tr.success_tolerance == 10 and tr.failure_tolerance == math.ceil(max(4 / 4, 10 / 4)) == 3
    assert TrustRegion(dim=2, q=4).failure_tolerance == 1 and TrustRegion(dim=3, q=1).failure_tolerance == 4
    no_c = torch.zeros(1, 1, dtype=torch.float64)  # one satisfied constraint
    tr.observe(_t([1.0]), no_c)
    for _ in range(2):  # failures, not yet the tolerance
        tr.update(_t([1.0005]), no_c)  # within 1e-3 |best|: no improvement
    assert (tr.failure_counter, tr.length) == (2, 0.8)
    tr.update(_t([2.0]), _t([[0.1]]))  # infeasible: a failure, the third in a row
    assert (tr.failure_counter, tr.length, tr.best_value) == (0, 0.4, 1.0005)
    tr.update(_t([0.5]), no_c)
    tr.update(_t([3.0]), no_c)  # a success resets the failure streak
    assert (tr.success_counter, tr.failure_counter, tr.best_value) == (1, 0, 3.0)
    for i in range(9):
        tr.update(_t([4.0 + i]), no_c)
    assert (tr.length, tr.success_counter) == (0.8, 0)  # 10 successes in a row double it
    for i in range(20):
        tr.update(_t([20.0 + i]), no_c)
    assert tr.length == 1.6  # capped at the maximum
    while not tr.restart_triggered:
        tr.update(_t([0.0]), no_c)
    assert tr.length == 1.6 / 2**8 < tr.length_min <= 1.6 / 2**7


def test_trust_region_success_before_any_feasible_point():
    tr = TrustRegion(dim=2, q=4)
    tr.observe(_t([0.0, 5.0]), _t([[2.0, 1.0], [0.5, 0.0]]))  # total violations 3, 0.5
    assert tr.best_value == -math.inf and tr.best_violation == 0.5
    tr.update(_t([9.0]), _t([[0.4, 0.0]]))  # less violation: a success
    assert (tr.success_counter, tr.best_violation) == (1, 0.4)
    tr.update(_t([9.0]), _t([[0.45, 0.0]]))  # more: a failure (tolerance 1 for d=2, q=4)
    assert (tr.success_counter, tr.failure_counter, tr.length) == (0, 0, 0.4)
    tr.update(_t([-100.0]), _t([[0.0, -1.0]]))  # the first feasible point, however bad
    assert (tr.success_counter, tr.best_value, tr.best_violation) == (1, -100.0, 0.0)


def test_scbo_restarts_with_a_fresh_sobol_design_and_forgets_the_old_run():
    p = MO["branin_disc"]
    m = SCBO(p, seed=1, n_init=6, q=4)
    _step(m, p, 6)
    assert m.state is not None and m.start == 0
    m.state.length = m.state.length_min * 1.5  # one more failure halves it below the minimum
    bad = [{"x1": -5.0, "x2": 0.0}] * 4  # far outside the disc: no improvement
    m.tell(bad, evaluate_params(p, bad).tolist())  # tell without ask: the replay path
    assert m.state is None and (m.start, m.restarts) == (10, 1)
    fresh = _step(m, p, 4) + _step(m, p, 4)  # the new design, in batches of q; no model fitted
    assert _inside(p, fresh) and fresh[:6] != MM.initial_design(p, 6, 1)
    assert m.state is not None and m.start == 10 and len(m.X) == 18


def test_scbo_is_for_one_objective_only():
    mo, c = MO["branincurrin"], MO["ackley10_c2"]
    with pytest.raises(ValueError, match="one objective.*'branincurrin' has 2 objectives"):
        MM.make("scbo", mo, 0, 6, 4)
    assert not MM.applies("scbo", mo) and MM.applies("scbo", c) and MM.applies("botorch_mo", mo)
    assert not sweep.applies("scbo", mo) and sweep.applies("scbo", c) and not sweep.applies("scbo", sweep.get("branin"))
    groups, seq = sweep.plan([mo, c, MO["branin_disc"]], ["scbo"], [0, 1], {"branincurrin": 8, "ackley10_c2": 8,
                                                                           "branin_disc": 8})
    assert not groups and [(m, p.name, s) for m, p, s in seq] == [
        ("scbo", "ackley10_c2", 0), ("scbo", "branin_disc", 0), ("scbo", "ackley10_c2", 1), ("scbo", "branin_disc", 1)]
    assert "scbo" in MM.DEFAULT_MO_METHODS.split(",")  # the default mo sweep runs it where it applies
