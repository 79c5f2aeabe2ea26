"""Tests of the tensor-level engine: batched equals looped, shapes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.acquisition import qUpperConfidenceBound
from botorch.sampling import SobolQMCNormalSampler

from gpbo.acquisition.botorch_adapter import BoTorchAcquisition
from gpbo.dims import DimSpec
from gpbo.engine import suggest
from gpbo.errors import InvalidArgumentError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _problems(P: int, n: int, d: int, dtype=torch.float64, device="cpu", seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    shift = torch.rand(P, 1, d, generator=g, dtype=torch.float64)
    Y = -((X - shift) ** 2).sum(-1) + 0.3 * torch.sin(7 * X).sum(-1)
    return X.to(device, dtype), Y.to(device, dtype)


@pytest.mark.parametrize("acquisition", ["log_ei", "log_aei", "ucb", "log_aei_ucb", "log_ei_ucb", "qlog_nei", "thompson"])
def test_batched_call_equals_looped_calls(acquisition: str) -> None:
    X, Y = _problems(3, 12, 2)
    q = 1 if acquisition in ("log_ei", "ucb") else 2
    batched = suggest(X, Y, q=q, seed=5, settings={"acquisition": acquisition})
    for p in range(3):
        single = suggest(X[p : p + 1], Y[p : p + 1], q=q, seed=5, settings={"acquisition": acquisition})
        torch.testing.assert_close(batched.candidates[p], single.candidates[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_candidates_inside_cube_and_on_levels(dtype: torch.dtype, device: str) -> None:
    dims = DimSpec(d=3, categorical=(2,), levels={1: (0.0, 0.25, 0.5, 0.75, 1.0), 2: (0.0, 0.5, 1.0)})
    X, Y = _problems(2, 10, 3, dtype=dtype, device=device)
    X = dims.snap(X)
    out = suggest(X, Y, dims=dims, q=3)
    c = out.candidates
    assert c.shape == (2, 3, 3) and c.dtype == dtype and c.device.type == device
    assert bool(((c >= 0) & (c <= 1)).all())
    torch.testing.assert_close(dims.snap(c), c)
    assert out.acq_values.shape == (2,)


def test_greedy_batch_points_are_distinct_and_avoid_pending() -> None:
    X, Y = _problems(1, 10, 2)
    first = suggest(X, Y, seed=1).candidates  # (1, 1, 2)
    again = suggest(X, Y, seed=1, pending=first).candidates
    assert float((again - first).abs().max()) > 1e-3
    batch = suggest(X, Y, q=4, seed=1).candidates[0]  # (4, 2)
    gaps = torch.cdist(batch, batch) + torch.eye(4)
    assert float(gaps.min()) > 1e-3


def test_custom_acquisition_function_and_botorch_acquisition_plug_in() -> None:
    X, Y = _problems(2, 10, 2)

    def mean_only(ctx):  # the smallest custom acquisition: a plain function
        return lambda Xc: ctx.model.posterior(Xc).mean.squeeze(-1)

    out = suggest(X, Y, settings={"acquisition": mean_only})
    ref = suggest(X, Y, settings={"acquisition": "posterior_mean"})
    torch.testing.assert_close(out.candidates, ref.candidates)

    qucb = BoTorchAcquisition(
        lambda model, ctx: qUpperConfidenceBound(
            model, beta=0.1, sampler=SobolQMCNormalSampler(torch.Size([64]), seed=0)
        )
    )
    out = suggest(X, Y, q=2, settings={"acquisition": qucb})
    assert out.candidates.shape == (2, 2, 2)
    assert bool(((out.candidates >= 0) & (out.candidates <= 1)).all())


def test_categorical_search_finds_best_level_not_rounding() -> None:
    """The best level is far from where a relaxed optimum would round to."""
    from gpbo.search.multistart import maximize_acquisition

    dims = DimSpec(d=2, categorical=(1,), levels={1: (0.0, 0.25, 0.5, 0.75, 1.0)})
    bonus = torch.tensor([0.0, 0.9, 0.1, 0.0, 1.0], dtype=torch.float64)

    def fn(X):  # (..., P, 1, d): smooth in x0; categorical bonus by level
        level = (X[..., 0, 1] * 4).round().long()
        return -((X[..., 0, 0] - 0.3) ** 2) + bonus[level]

    x, v = maximize_acquisition(
        fn, dims, n_problems=1, q=1, seed=0, dtype=torch.float64, device=torch.device("cpu")
    )
    torch.testing.assert_close(x[0, 0], torch.tensor([0.3, 1.0], dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(v, torch.tensor([1.0], dtype=torch.float64), atol=1e-8, rtol=0)


BAD_INPUTS = [
    (dict(X=[[0.1]]), "X must be a float tensor"),
    (dict(X=torch.zeros(1, 0, 2)), "P, n, d >= 1"),
    (dict(Y=torch.zeros(1, 3)), r"Y must be a tensor of shape \(P, n\)"),
    (dict(Y=torch.zeros(1, 4, dtype=torch.float32)), "Y must have X's dtype"),
    (dict(X=torch.full((1, 4, 2), 1.5, dtype=torch.float64)), "unit cube"),
    (dict(Y=torch.tensor([[0.0, float("nan"), 1.0, 2.0]], dtype=torch.float64)), "Y must be finite"),
    (dict(pending=torch.zeros(1, 2, 3, dtype=torch.float64)), "pending must have shape"),
    (dict(q=0), "q must be an int >= 1, got int 0"),
    (dict(q=True), "q must be an int >= 1, got bool True"),
    (dict(seed=2**62), "seed must be an int >= 0 and < 4611686018427387904"),
    (dict(settings={"noise": "sometimes"}), "noise must be one of"),
    (dict(dims=DimSpec.continuous(5)), "dims must be a DimSpec with d=2"),
    (dict(settings={"acquisition": "nope"}), "nope"),
    (dict(Y=torch.zeros(1, 4, 2, dtype=torch.float64)), r"Y must have shape \(P, n, O\) with O = 1"),
    (dict(settings={"acquisition": lambda ctx: None}), "must return a function of X for its context, got None"),
    (dict(settings={"acquisition": lambda ctx: lambda x: x.sum(-1)}),
     r"must map X \(..., P, q, d\) to values \(..., P\)"),
]


def test_a_numpy_seed_is_a_seed() -> None:
    X, Y = _problems(1, 4, 2)
    quick = {"n_raw": 64, "n_restarts": 2}
    assert torch.equal(suggest(X, Y, seed=np.int64(3), settings=quick).candidates,
                       suggest(X, Y, seed=3, settings=quick).candidates)


@pytest.mark.parametrize("override,message", BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(override: dict, message: str) -> None:
    X, Y = _problems(1, 4, 2)
    kwargs = dict(X=X, Y=Y) | override
    with pytest.raises(InvalidArgumentError, match=message):
        suggest(kwargs.pop("X"), kwargs.pop("Y"), **kwargs)


def test_greedy_batch_on_a_small_discrete_space_has_no_repeats() -> None:
    """Kriging-believer fantasies are believed exactly, so q points stay distinct.

    With the learned noise instead (the old behaviour) 4 of these 32 points
    were repeats inside their batch.
    """
    dims = DimSpec(d=2, levels={0: tuple(i / 24 for i in range(25)), 1: (0.0, 1 / 3, 2 / 3, 1.0)})
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        X = dims.snap(torch.rand(1, 16, 2, generator=g, dtype=torch.float64))
        Y = -((X - 0.3) ** 2).sum(-1) + 0.05 * torch.randn(1, 16, generator=g, dtype=torch.float64)
        batch = suggest(X, Y, dims=dims, q=8, seed=seed).candidates[0]  # (8, 2)
        assert len({tuple(p.tolist()) for p in batch}) == 8


def test_discrete_space_suggestions_skip_observed_configurations() -> None:
    """16 batches of 8 on a 100-configuration space: no configuration is suggested twice
    (before gpbo.search.avoid, Bayesmark's kNN problem saw only 23-43 distinct of 128)."""
    dims = DimSpec(d=2, levels={0: tuple(i / 24 for i in range(25)), 1: (0.0, 1 / 3, 2 / 3, 1.0)})
    g = torch.Generator().manual_seed(0)
    X = dims.snap(torch.rand(1, 8, 2, generator=g, dtype=torch.float64))
    X = torch.unique(X[0], dim=0)[None]

    def f(x: torch.Tensor) -> torch.Tensor:
        return -((x - 0.3) ** 2).sum(-1)  # deterministic

    for it in range(8):
        batch = suggest(X, f(X), dims=dims, q=8, seed=it).candidates  # (1, 8, 2)
        X = torch.cat([X, batch], -2)
        assert len({tuple(p.tolist()) for p in X[0]}) == X.shape[-2]


def test_exhausted_discrete_space_still_suggests_a_valid_point() -> None:
    dims = DimSpec(d=1, levels={0: (0.0, 0.5, 1.0)})
    X = torch.tensor([[[0.0], [0.5], [1.0]]], dtype=torch.float64)
    s = suggest(X, torch.tensor([[1.0, 3.0, 2.0]], dtype=torch.float64), dims=dims, q=2)
    assert s.candidates.shape == (1, 2, 1)
    assert set(s.candidates.flatten().tolist()) <= {0.0, 0.5, 1.0}


def test_avoid_observed_masks_exact_repeats_only() -> None:
    from gpbo.search.avoid import avoid_observed

    observed = torch.tensor([[[0.0, 1.0], [0.5, 0.5]]], dtype=torch.float64)  # (P=1, n=2, d=2)
    fn = avoid_observed(lambda X: X.sum((-1, -2)), observed)  # (..., 1, q, 2) -> (..., 1)
    X = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.25]]], [[[0.5, 0.5]]]], dtype=torch.float64)  # (3, 1, 1, 2)
    values = fn(X)
    assert values[0, 0] == -torch.inf and values[2, 0] == -torch.inf
    assert values[1, 0] == 0.75


def test_a_screen_ranks_the_raw_samples_and_anchor_perturbations_and_survives_avoid_observed() -> None:
    from gpbo.acquisition.protocol import screening, with_screen
    from gpbo.search.avoid import avoid_observed
    from gpbo.search.multistart import maximize_acquisition

    sizes: dict[str, list[int]] = {"fn": [], "screen": []}

    def value(name: str):  # noqa: ANN202
        def f(X: torch.Tensor) -> torch.Tensor:
            sizes[name].append(X.shape[0])
            return -(X - 0.3).pow(2).sum((-1, -2))  # (..., P)
        return f

    fn = with_screen(value("fn"), value("screen"))
    X, _ = maximize_acquisition(fn, DimSpec.continuous(2), n_problems=1, q=1, seed=0, dtype=torch.float64,
                                device=torch.device("cpu"), n_raw=64, n_restarts=3)
    assert sizes["screen"] == [64] and 64 not in sizes["fn"]  # the ascent and the final values use fn
    torch.testing.assert_close(X, torch.full((1, 1, 2), 0.3, dtype=torch.float64), atol=1e-4, rtol=0.0)
    observed = torch.full((1, 1, 2), 0.3, dtype=torch.float64)
    masked = avoid_observed(fn, observed)
    assert screening(masked) is not masked and screening(masked)(observed[None])[0, 0] == -torch.inf
    plain = avoid_observed(value("fn"), observed)
    assert screening(plain) is plain  # no screen: the function itself ranks the raw samples
    sizes["fn"].clear(), sizes["screen"].clear()
    anchors = torch.full((1, 2, 2), 0.5, dtype=torch.float64)  # (P, k, d)
    maximize_acquisition(fn, DimSpec.continuous(2), n_problems=1, q=1, seed=0, dtype=torch.float64,
                         device=torch.device("cpu"), n_raw=64, n_restarts=3, anchors=anchors)
    assert sizes["screen"] == [64, 16] and 16 not in sizes["fn"]  # the anchors' perturbations too


def test_condition_noiseless_collapses_variance() -> None:
    from gpbo.models.exact import ExactGP

    X, Y = _problems(1, 10, 2)
    model = ExactGP.fit(X, Y)
    x = torch.rand(1, 1, 2, dtype=torch.float64)
    mean = model.posterior(x).mean
    noisy = model.condition(x, mean).posterior(x).variance
    exact = model.condition(x, mean, noiseless=True).posterior(x).variance
    assert float(exact) < 1e-4 * float(model.y_std) ** 2 and float(exact) < float(noisy)
