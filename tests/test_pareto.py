"""gpbo.pareto agrees with botorch.utils.multi_objective on random data."""

from __future__ import annotations

import pytest
import torch
from botorch.utils.multi_objective import Hypervolume, infer_reference_point, is_non_dominated

from gpbo import pareto
from gpbo.errors import InvalidArgumentError


@pytest.mark.parametrize("m", [2, 3])
def test_pareto_mask_and_hypervolume_match_botorch(m):
    g = torch.Generator().manual_seed(m)
    Y = torch.rand(5, 40, m, dtype=torch.float64, generator=g)
    Y[:, 3] = Y[:, 4]  # a duplicate pair
    ref = torch.full((m,), 0.1, dtype=torch.float64)
    mask = pareto.pareto_mask(Y)
    hv = pareto.hypervolume(Y, ref)
    for p in range(5):
        assert mask[p].tolist() == is_non_dominated(Y[p], deduplicate=False).tolist()
        expected = Hypervolume(ref).compute(Y[p][is_non_dominated(Y[p])])
        assert float(hv[p]) == pytest.approx(expected, rel=1e-12)


def test_infeasible_points_are_off_the_front_and_add_no_volume():
    Y = torch.tensor([[[1.0, 1.0], [0.5, 2.0], [3.0, 3.0]]], dtype=torch.float64)
    feasible = torch.tensor([[True, True, False]])
    assert pareto.pareto_mask(Y, feasible).tolist() == [[True, True, False]]
    hv = pareto.hypervolume(Y, torch.zeros(2, dtype=torch.float64), feasible)
    assert float(hv) == pytest.approx(1.0 * 1.0 + 0.5 * 1.0)
    assert float(pareto.hypervolume(Y, torch.zeros(2, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.bool))) == 0.0


def test_reference_point_follows_botorch_rule():
    g = torch.Generator().manual_seed(0)
    Y = torch.rand(3, 30, 2, dtype=torch.float64, generator=g)
    ref = pareto.infer_reference_point(Y)
    for p in range(3):
        front = Y[p][is_non_dominated(Y[p])]
        torch.testing.assert_close(ref[p], infer_reference_point(front))
    single = torch.tensor([[[2.0, -4.0]]], dtype=torch.float64)
    torch.testing.assert_close(pareto.infer_reference_point(single)[0], infer_reference_point(single[0]))
    none = pareto.infer_reference_point(Y[:1], torch.zeros(1, 30, dtype=torch.bool))
    assert bool(none.isnan().all())


def test_bad_input_is_named():
    with pytest.raises(InvalidArgumentError, match="NaN"):
        pareto.pareto_mask(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(InvalidArgumentError, match="feasible must have shape"):
        pareto.pareto_mask(torch.rand(4, 2), torch.ones(3, dtype=torch.bool))
