"""The sweep's botorch:<Class> and botorch_loop:<Class> methods."""

from __future__ import annotations

import pytest

from benchmarks import methods as M
from benchmarks import sweep
from benchmarks.problems import get
from gpbo.acquisition import BoTorchAcquisition


def test_botorch_methods_are_known_and_grouped_as_gpbo() -> None:
    assert M.is_known("botorch:qKnowledgeGradient") and M.is_known("botorch_loop:qKnowledgeGradient")
    assert M.is_gpbo("botorch:qKnowledgeGradient") and not M.is_gpbo("botorch_loop:qKnowledgeGradient")
    settings = M.gpbo_settings("botorch:qUpperConfidenceBound")
    assert isinstance(settings.acquisition, BoTorchAcquisition) and settings.acquisition.name == "qUpperConfidenceBound"
    p = get("branin")
    groups, seq = sweep.plan([p], ["botorch:qLogExpectedImprovement", "botorch_loop:qLogExpectedImprovement"], [0, 1],
                             {"branin": 8})
    assert [len(v) for v in groups.values()] == [2] and [m for m, _, _ in seq] == ["botorch_loop:qLogExpectedImprovement"] * 2


@pytest.mark.slow  # BoTorch fits and optimize_acqf: ~15 s
def test_botorch_loop_method_suggests() -> None:
    m = M.make("botorch_loop:qLogExpectedImprovement", get("branin"), 0, 3, 1)
    for _ in range(4):
        params = m.ask(1)
        m.tell(params, [get("branin").fn(params[0])])
    assert len(m.y) == 4
