"""upper_tail_scale: a batched leave-one-out backtest equal to the looped one, and its formula."""

from __future__ import annotations

import dataclasses
import math

import torch

from gpbo.early_stopping.calibration import tail_scale, tail_scales, upper_tail_scale
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
    for c in range(data.X.shape[1]):
        mask = data.mask.clone()
        mask[0, c] &= data.tau[0, c] <= fraction
        post = FreezeThaw.condition(THETA, dataclasses.replace(data, mask=mask, y_mean=torch.zeros(1),
                                                               y_std=torch.ones(1)))
        last = int(data.mask[0, c].nonzero().max())
        z.append((data.y[0, c, last] - post.mean[0, c]) / post.std[0, c])
    return torch.stack(z)


def _scale(data: CurveData, fraction: float) -> float:
    k, ok = upper_tail_scale(THETA.unsqueeze(0), data, torch.tensor([fraction], dtype=torch.float64))
    assert bool(ok.all())
    return float(k[0])


def test_batched_backtest_equals_the_looped_one() -> None:
    data = _complete(7, seed=0, late=2.0)
    for fraction in (2 / 12, 5 / 12, 1.0):
        z = _looped_z(data, fraction)
        expected = max(1.0, math.sqrt(2.0 * float(z.clamp_min(0).pow(2).mean())))
        assert math.isclose(_scale(data, fraction), expected, rel_tol=1e-9)


def test_studies_backtested_together_equal_each_alone() -> None:
    """P = 4 studies of 7, 2, 10 and 5 complete trials (padded to 10), each with its own theta and
    fraction, in one call: the scales equal each study's alone; the 2-trial study gives 1.0."""
    studies = [_complete(7, seed=0, late=2.0), _complete(2, seed=2, late=3.0), _complete(10, seed=1, late=3.0),
               _complete(5, seed=4, late=1.0)]
    theta = torch.stack([THETA, THETA + 0.1, THETA - 0.2, THETA + 0.3])
    fraction = torch.tensor([2 / 12, 0.25, 3 / 12, 7 / 12], dtype=torch.float64)
    k, ok = upper_tail_scale(theta, CurveData.stack(studies), fraction)
    assert bool(ok.all()) and k.shape == (4,)
    for p, data in enumerate(studies):
        alone, _ = upper_tail_scale(theta[p : p + 1], data, fraction[p : p + 1])
        torch.testing.assert_close(k[p], alone[0], rtol=1e-9, atol=0)
    assert float(k[1]) == 1.0 and float(k[2]) > 2.0


def test_late_rises_make_the_scale_larger() -> None:
    smooth = _complete(10, seed=1)
    late = _complete(10, seed=1, late=3.0)
    fraction = 3 / 12
    assert _scale(late, fraction) > 2.0 * _scale(smooth, fraction) >= 2.0


def test_a_model_wide_enough_and_too_few_trials_give_one() -> None:
    smooth = _complete(10, seed=1)
    for fraction in (0.25, 0.5, 1.0):
        assert _scale(smooth, fraction) == 1.0
    assert _scale(_complete(2, seed=2, late=3.0), 0.25) == 1.0


def test_tail_scale_of_errors() -> None:
    assert tail_scale(torch.tensor([-3.0, 0.5, -1.0])) == 1.0
    z = torch.tensor([2.0, -1.0, 1.0, 0.0], dtype=torch.float64)
    assert math.isclose(tail_scale(z), math.sqrt(2.0 * 5.0 / 4.0))
    rows = tail_scales(torch.stack([z, z]), torch.tensor([[True] * 4, [True, True, False, False]]))
    torch.testing.assert_close(rows, torch.tensor([math.sqrt(2.5), 2.0], dtype=torch.float64))
