"""upper_tail_scale: a batched leave-one-out backtest equal to the looped one, and its formula."""

from __future__ import annotations

import math

import torch

from gpbo.early_stopping.calibration import upper_tail_scale
from gpbo.early_stopping.freeze_thaw import CurveData, FreezeThaw

MAX_STEP = 12.0
THETA = torch.tensor([-1.0, -0.5, 0.3, -1.2, -3.0, 0.2, -0.7, 0.4, 0.1], dtype=torch.float64)


def _complete(n: int, seed: int, late: float = 0.0) -> CurveData:
    """n complete curves of 12 reports (one with 9 reports at every other step); ``late`` adds a late rise."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    steps, values = [], []
    for i in range(n):
        t = torch.arange(1, 13, dtype=torch.float64) if i else torch.tensor([1.0, 2, 3, 4, 6, 8, 10, 11, 12])
        rise = late * torch.rand((), generator=gen, dtype=torch.float64) * (t / MAX_STEP).pow(6)
        values.append(X[i].sum() - 0.5 * torch.exp(-t / 3) + rise + 0.01 * torch.randn(len(t), generator=gen,
                                                                                            dtype=torch.float64))
        steps.append(t)
    return CurveData.pad(X, steps, values, MAX_STEP)


def _looped_z(data: CurveData, fraction: float) -> torch.Tensor:
    """Each trial's z-score from a model conditioned on its prefix and the others' whole curves, one at a time."""
    z = []
    for c in range(data.X.shape[0]):
        mask = data.mask.clone()
        mask[c] &= data.tau[c] <= fraction
        post = FreezeThaw.condition(THETA, CurveData(data.X, data.tau, data.y, mask, 0.0, 1.0))
        last = int(data.mask[c].nonzero().max())
        z.append((data.y[c, last] - post.mean[c]) / post.std[c])
    return torch.stack(z)


def test_batched_backtest_equals_the_looped_one() -> None:
    data = _complete(7, seed=0, late=2.0)
    for fraction in (2 / 12, 5 / 12, 1.0):
        z = _looped_z(data, fraction)
        expected = max(1.0, math.sqrt(2.0 * float(z.clamp_min(0).pow(2).mean())))
        got = upper_tail_scale(THETA, data.X, data.tau, data.y, data.mask, fraction)
        assert math.isclose(got, expected, rel_tol=1e-9)


def test_late_rises_make_the_scale_larger() -> None:
    smooth = _complete(10, seed=1)
    late = _complete(10, seed=1, late=3.0)
    fraction = 3 / 12
    k_smooth = upper_tail_scale(THETA, smooth.X, smooth.tau, smooth.y, smooth.mask, fraction)
    k_late = upper_tail_scale(THETA, late.X, late.tau, late.y, late.mask, fraction)
    assert k_late > 2.0 * k_smooth >= 2.0


def test_a_model_wide_enough_and_too_few_trials_give_one() -> None:
    smooth = _complete(10, seed=1)
    for fraction in (0.25, 0.5, 1.0):
        assert upper_tail_scale(THETA, smooth.X, smooth.tau, smooth.y, smooth.mask, fraction) == 1.0
    two = _complete(2, seed=2, late=3.0)
    assert upper_tail_scale(THETA, two.X, two.tau, two.y, two.mask, 0.25) == 1.0
