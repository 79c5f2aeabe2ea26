"""Issue 25's acceptance matrix: every listed BoTorch class end to end through gpbo.

Each class runs through `gpbo.minimize` (a tiny budget), through `suggest`
with P = 4 problems (q = 2 for every class: the q = 1 ones (analytic, qMES,
GIBBON) get their batch from the engine's kriging believer), and, batched or
per problem, P = 4 at once equals the loop of single problems. Budgets are
tiny (few raw samples, restarts, MC samples and fantasies) to keep the
default run short; the quality comparison is `benchmarks/botorch_acq.py`.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import gpbo
from gpbo import engine
from gpbo.acquisition import BoTorchAcquisition, botorch

D = 3
FIDELITY = D - 1
TINY = {"n_raw": 16, "n_restarts": 2, "n_anchors": 1}

MATRIX = {  # class -> its options (beyond the tiny sizes)
    "LogExpectedImprovement": {},
    "LogProbabilityOfImprovement": {},
    "UpperConfidenceBound": {"beta": 0.2},
    "PosteriorMean": {},
    "qLogExpectedImprovement": {},
    "qLogNoisyExpectedImprovement": {},  # BoTorch's defaults: prune_baseline=True, per problem
    "qUpperConfidenceBound": {"beta": 0.2},
    "qSimpleRegret": {},
    "qNegIntegratedPosteriorVariance": {},
    "qMaxValueEntropy": {},
    "qLowerBoundMaxValueEntropy": {},
    "qJointEntropySearch": {},
    "qKnowledgeGradient": {"num_fantasies": 4},
    "qMultiFidelityKnowledgeGradient": {"num_fantasies": 4, "fidelity_dim": FIDELITY},
}


def _acq(name: str) -> BoTorchAcquisition:
    return botorch(name, num_samples=16, num_candidates=32, num_optima=4, **MATRIX[name])


def _data(P: int = 4, n: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.rand(P, n, D, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X[..., :FIDELITY]).sum(-1) - 0.2 * (1 - X[..., FIDELITY]) + 0.1 * torch.arange(P)[:, None]
    return X, Y


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BoTorch's input-scaling and numerics warnings
        yield


@pytest.mark.parametrize("name", list(MATRIX))
def test_suggest_p4_q2(name: str) -> None:
    X, Y = _data()
    s = engine.suggest(X, Y, q=2, seed=3, settings={"acquisition": _acq(name), **TINY})
    assert s.candidates.shape == (4, 2, D)
    assert bool(((s.candidates >= 0) & (s.candidates <= 1)).all()) and bool(s.acq_values.isfinite().all())


@pytest.mark.parametrize("name", list(MATRIX))
def test_batched_equals_loop_of_single_problems(name: str) -> None:
    X, Y = _data()
    settings = {"acquisition": _acq(name), **TINY}
    batched = engine.suggest(X, Y, q=1, seed=5, settings=settings)
    for p in range(4):
        single = engine.suggest(X[p:p + 1], Y[p:p + 1], q=1, seed=5, settings=settings)
        torch.testing.assert_close(batched.candidates[p], single.candidates[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(MATRIX))
def test_minimize_end_to_end(name: str) -> None:
    space = {"x0": gpbo.Real(0.0, 1.0), "x1": gpbo.Real(0.0, 1.0), "s": gpbo.Real(0.0, 1.0)}

    def fn(p):  # the last dim is the fidelity for qMFKG
        return (p["x0"] - 0.3) ** 2 + (p["x1"] - 0.6) ** 2 + 0.1 * (1 - p["s"])

    result = gpbo.minimize(fn, space, 6, seed=0, settings={"acquisition": _acq(name), "n_initial": 4, **TINY})
    assert len(result.trials) == 6 and math.isfinite(result.best_value)
