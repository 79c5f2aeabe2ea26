"""Output warping: Yeo-Johnson against SciPy, monotonicity, batching, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from gpbo.engine import suggest
from gpbo.errors import InvalidArgumentError
from gpbo.models.warping import LAM_STEP, fit_yeo_johnson, warp_outcomes, yeo_johnson


@pytest.mark.parametrize("lam", [-1.0, 0.0, 0.5, 1.0, 2.0, 2.7])
def test_transform_matches_scipy(lam: float) -> None:
    z = np.random.default_rng(0).normal(size=200) * 3
    ours = yeo_johnson(torch.tensor(z), torch.tensor(lam, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ours, stats.yeojohnson(z, lmbda=lam), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_fitted_lambda_matches_scipy_mle(seed: int) -> None:
    """On standardised heavy-tailed data the grid optimum is SciPy's MLE to the grid step."""
    rng = np.random.default_rng(seed)
    y = -np.exp(0.6 * rng.normal(size=60))  # maximisation: a heavy *lower* tail
    z = (y - y.mean()) / y.std()
    expected = stats.yeojohnson_normmax(z)
    lam = float(fit_yeo_johnson(torch.tensor(y)[None], -1.0, 3.0)[0])
    assert -1.0 < expected < 3.0
    assert abs(lam - expected) <= LAM_STEP


def test_warp_is_increasing_and_keeps_the_incumbent() -> None:
    Y = torch.randn(5, 40, dtype=torch.float64).exp() * torch.tensor([1.0, -1.0, 1e6, -1e-6, 3.0])[:, None]
    W = warp_outcomes(Y)
    assert torch.equal(Y.argsort(-1), W.argsort(-1))
    assert torch.equal(Y.argmax(-1), W.argmax(-1))
    assert bool(W.isfinite().all())


def test_batched_equals_looped() -> None:
    Y = torch.randn(6, 30, dtype=torch.float64) ** 3
    batched = warp_outcomes(Y)
    for p in range(6):
        torch.testing.assert_close(batched[p], warp_outcomes(Y[p:p + 1])[0], rtol=1e-12, atol=1e-12)


def test_heavy_lower_tail_is_compressed() -> None:
    """Rosenbrock-like data: the bad outliers move towards the bulk."""
    y = -torch.logspace(0, 6, 50, dtype=torch.float64)[None]  # values -1 .. -1e6
    z = (y - y.mean()) / y.std(correction=0)
    w = warp_outcomes(y)
    w = (w - w.mean()) / w.std(correction=0)
    assert float(fit_yeo_johnson(y)[0]) > 1.0
    assert float(w.min()) > float(z.min())  # the worst value is less extreme after warping


@pytest.mark.parametrize("Y", [
    torch.full((2, 7), 3.5, dtype=torch.float64),  # constant
    torch.tensor([[1.0, 2.0]], dtype=torch.float64),  # n < 3
    torch.tensor([[0.0]], dtype=torch.float64),  # n = 1
    torch.tensor([[1e12, 1e12 + 1, 1e12 + 5, 1e12 - 3]], dtype=torch.float64),
    torch.tensor([[1e-12, 2e-12, -5e-12, 7e-12]], dtype=torch.float64),
    torch.tensor([[1.0, 2.0, 1e15, -1e15]], dtype=torch.float32),
])
def test_edge_cases_stay_finite(Y: torch.Tensor) -> None:
    W = warp_outcomes(Y)
    assert W.shape == Y.shape and W.dtype == Y.dtype
    assert bool(W.isfinite().all())
    if Y.shape[-1] < 3 or bool((Y == Y[..., :1]).all()):
        assert torch.equal(fit_yeo_johnson(Y), torch.ones(Y.shape[0], dtype=Y.dtype))


def test_engine_warp_option() -> None:
    X = torch.rand(2, 12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Y = -(X - 0.3).pow(2).sum(-1).mul(50).exp()  # heavy lower tail
    for warp in ("yeo-johnson", "none"):
        s = suggest(X, Y, warp=warp, n_raw=64, n_restarts=2)
        assert s.candidates.shape == (2, 1, 3)
    with pytest.raises(InvalidArgumentError, match="warp"):
        suggest(X, Y, warp="box-cox")
