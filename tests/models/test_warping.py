"""Output warping: Yeo-Johnson against SciPy, monotonicity, batching, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from gpbo.engine import suggest
from gpbo.errors import InvalidArgumentError
from gpbo.models.warping import FENCE, LAM_STEP, fit_yeo_johnson, pull_in_far_outcomes, warp_outcomes, yeo_johnson


def _fenced(y: np.ndarray) -> np.ndarray:
    """NumPy reference: outcomes beyond the quartiles -/+ FENCE IQR pulled in by s log(1 + excess / s)."""
    q1, q3 = np.quantile(y, [0.25, 0.75])
    s = q3 - q1 if q3 > q1 else y.std()
    lo, hi = q1 - FENCE * s, q3 + FENCE * s
    y = np.where(y < lo, lo - s * np.log1p(np.maximum(lo - y, 0) / s), y)
    return np.where(y > hi, hi + s * np.log1p(np.maximum(y - hi, 0) / s), y)


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


@pytest.mark.parametrize("seed", range(3))
def test_far_outcomes_are_pulled_in_as_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    Y = np.stack([-np.exp(3.0 * rng.normal(size=40)), np.exp(3.0 * rng.normal(size=40)),  # both tails
                  np.r_[np.zeros(25), rng.normal(size=15)]])  # over half tied: the std is the scale
    Y[0, 0], Y[1, 0] = -1e5, 1e5  # at least one far-out outcome on each side
    ours, log_jac = pull_in_far_outcomes(torch.tensor(Y))
    ours = ours.numpy()
    assert (log_jac[:2] < 0).all()  # the tails were pulled in
    np.testing.assert_allclose(ours, np.stack([_fenced(y) for y in Y]), rtol=1e-12, atol=1e-12)
    assert (np.argsort(ours, -1) == np.argsort(Y, -1)).all()


def test_outcomes_within_the_fences_are_unchanged() -> None:
    Y = torch.rand(3, 30, dtype=torch.float64)  # uniform: nothing beyond the fences
    pulled, log_jac = pull_in_far_outcomes(Y)
    assert torch.equal(pulled, Y) and torch.equal(log_jac, torch.zeros(3, dtype=Y.dtype))


@pytest.mark.parametrize("seed", range(4))
def test_far_outcomes_are_pulled_in_where_the_likelihood_says_so(seed: int) -> None:
    """Per problem, the warp uses the version (as is, or pulled in) with the higher profile likelihood.

    Reference: SciPy's Yeo-Johnson log-likelihood maximised on the same grid, plus the Jacobians of
    the standardisation (-n log std) and of the pull (sum of -log(1 + excess / s)).
    """
    rng = np.random.default_rng(seed)
    Y = np.stack([-np.exp(scale * rng.normal(size=40)) for scale in (0.3, 1.0, 2.5, 4.0)])
    Y[3, :3] = -1e6  # three diverged outcomes
    grid = np.arange(-1.0, 3.0 + 0.025, 0.05)

    def profile(y: np.ndarray) -> tuple[float, float]:
        z = (y - y.mean()) / y.std()
        ll = [stats.yeojohnson_llf(lam, z) for lam in grid]
        return max(ll) - len(y) * np.log(y.std()), grid[int(np.argmax(ll))]

    expected, used = [], []
    for y in Y:
        fenced = _fenced(y)
        q1, q3 = np.quantile(y, [0.25, 0.75])
        excess = np.maximum(q1 - FENCE * (q3 - q1) - y, 0) + np.maximum(y - q3 - FENCE * (q3 - q1), 0)
        (ll_raw, lam_raw), (ll_pulled, lam_pulled) = profile(y), profile(fenced)
        use, lam = (True, lam_pulled) if ll_pulled - np.log1p(excess / (q3 - q1)).sum() > ll_raw else (False, lam_raw)
        v = fenced if use else y
        used.append(use)
        expected.append(stats.yeojohnson((v - v.mean()) / v.std(), lmbda=lam))
    np.testing.assert_allclose(warp_outcomes(torch.tensor(Y)).numpy(), np.stack(expected), rtol=1e-9, atol=1e-9)
    assert used[3] and not used[0]  # both branches: the diverged problem is pulled in, the light tail is not


def test_one_diverged_outcome_does_not_squeeze_the_others() -> None:
    """-1e6 among outcomes in [-1, 0]: with mean/std alone the rest spanned 1.2e-5 of the spread."""
    y = -torch.linspace(0.0, 1.0, 29, dtype=torch.float64)
    W = warp_outcomes(torch.cat([y, torch.tensor([-1e6], dtype=torch.float64)])[None])[0]
    assert float(W[:29].std()) > 0.5 * float(W.std())
    assert float(W[:29].diff().abs().min()) > 0.01 * float(W.std())  # neighbours stay apart
    assert float(W[29]) < float(W[:29].min())  # the diverged outcome is still the worst


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
        s = suggest(X, Y, settings={"warp": warp, "n_raw": 64, "n_restarts": 2})
        assert s.candidates.shape == (2, 1, 3)
    with pytest.raises(InvalidArgumentError, match="warp"):
        suggest(X, Y, settings={"warp": "box-cox"})
