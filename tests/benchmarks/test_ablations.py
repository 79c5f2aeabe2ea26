"""Engine ablations: each variant is a gpbo.Settings value that the sweep runs with, nothing patched."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import gpbo
from benchmarks import ablations
from gpbo import engine
from gpbo.acquisition import LogAugmentedEI, LogEI, RoundRobin
from gpbo.acquisition.analytic import effective_best
from gpbo.acquisition.protocol import AcquisitionContext
from gpbo.models.exact import ExactGP

SWEEP = ["--problems", "branin_noisy", "--methods", "gpbo", "--seeds", "1", "--budget", "8", "--no-report"]


@pytest.fixture
def spy(monkeypatch):
    """Records the keyword arguments of the engine's calls of maximize_acquisition and fit_surrogate."""
    calls: dict[str, list[dict]] = {"maximize_acquisition": [], "fit_surrogate": []}
    for name in calls:
        original = getattr(engine, name)

        def recorder(*args, _name=name, _original=original, **kwargs):
            calls[_name].append(kwargs)
            return _original(*args, **kwargs)

        monkeypatch.setattr(engine, name, recorder)
    return calls


@pytest.mark.parametrize("variant", sorted(ablations.VARIANTS))
def test_variant_is_a_settings_value_and_runs_the_sweep(variant, tmp_path, monkeypatch):
    from benchmarks import sweep

    settings = ablations.variant_settings(variant)
    assert isinstance(settings, gpbo.Settings) and settings != gpbo.Settings()
    seen = []
    original = engine.suggest

    def recording_suggest(*args, **kwargs):
        seen.append(kwargs["settings"])
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "suggest", recording_suggest)
    info = ablations.main([variant, *SWEEP, "--out", str(tmp_path)])
    assert seen and all(s == settings for s in seen)
    assert info["settings"] == settings.to_dict()
    recs = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 8 and all(r["true"] is not None for r in recs)
    assert sweep.main  # the sweep module was used as is


@pytest.mark.parametrize(("variant", "expected"), [
    ("noanchor", {"anchors_k": 0}),
    ("noprecond", {"scale": None}),
    ("accelerator", {"accelerator_path": True}),
])
def test_search_fields_reach_maximize_acquisition(spy, variant, expected):
    X = torch.rand(2, 9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Y = torch.sin(5 * X).sum(-1)
    engine.suggest(X, Y, seed=1, settings=ablations.variant_settings(variant).replace(n_raw=32, n_restarts=2))
    (call,) = spy["maximize_acquisition"]
    got = {"anchors_k": call["anchors"].shape[1], "scale": call["scale"], "accelerator_path": call["accelerator_path"]}
    assert {k: got[k] for k in expected} == expected
    assert call["n_raw"] == 32 and call["n_restarts"] == 2


def test_default_search_gets_anchors_preconditioning_and_the_auto_path(spy):
    X = torch.rand(2, 9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    engine.suggest(X, torch.sin(5 * X).sum(-1), seed=1, settings={"n_raw": 32, "n_restarts": 2})
    (call,) = spy["maximize_acquisition"]
    assert call["anchors"].shape[1] == 3 and call["scale"] is not None and call["scale"].shape == (2, 3)
    assert call["hold"] is None and call["accelerator_path"] is False


def test_freeze_holds_the_dims_with_long_lengthscales(spy):
    X = torch.rand(2, 9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    s = engine.suggest(X, torch.sin(5 * X[..., :1]).sum(-1), seed=1,
                       settings=ablations.variant_settings("freeze").replace(n_raw=32, n_restarts=2))
    (call,) = spy["maximize_acquisition"]
    torch.testing.assert_close(call["hold"], s.model.lengthscale > ablations.FREEZE_LENGTHSCALE)
    assert call["hold"].shape == (2, 3)


def test_freeze_keeps_held_dims_at_their_start():
    from gpbo.dims import DimSpec
    from gpbo.search.multistart import maximize_acquisition

    def fn(X):  # (..., P, 1, d): best at (0.8, 0.8) for both problems
        return -((X[..., 0, :] - 0.8) ** 2).sum(-1)

    hold = torch.tensor([[False, True], [False, False]])
    x, _ = maximize_acquisition(fn, DimSpec.continuous(2), n_problems=2, q=1, seed=0, dtype=torch.float64,
                                device=torch.device("cpu"), n_raw=64, n_restarts=1, hold=hold)
    raw = torch.quasirandom.SobolEngine(2, scramble=True, seed=0).draw(64, dtype=torch.float64)  # the raw samples
    assert abs(float(x[0, 0, 0]) - 0.8) < 1e-3 and float(x[0, 0, 1]) in raw[:, 1].tolist()  # dim 1 held on problem 0
    torch.testing.assert_close(x[1, 0], torch.tensor([0.8, 0.8], dtype=torch.float64), atol=1e-3, rtol=0)
    assert float(x[1, 0, 1]) not in raw[:, 1].tolist()


def test_nowarm_ignores_the_warm_start(spy):
    X = torch.rand(1, 8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    Y = torch.sin(5 * X).sum(-1)
    small = {"n_raw": 32, "n_restarts": 2}
    first = engine.suggest(X, Y, seed=0, settings=small)
    cold = engine.suggest(X, Y, seed=1, settings=small)
    nowarm = engine.suggest(X, Y, seed=1, warm_start=first.model,
                            settings=ablations.variant_settings("nowarm").replace(**small))
    torch.testing.assert_close(nowarm.candidates, cold.candidates, atol=0, rtol=0)


@pytest.mark.parametrize(("variant", "field", "value"), [
    ("rbf", "kernel", "rbf"), ("averagemean", "prior_mean", "average"), ("nofence", "warp_fence", None),
    ("fence10", "warp_fence", 10.0), ("accelerator", "solver_path", "accelerator"),
])
def test_model_fields_are_settings_the_engine_receives(variant, field, value):
    settings = ablations.variant_settings(variant)
    assert getattr(settings, field) == value
    others = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != field}
    assert others == {f.name: getattr(gpbo.Settings(), f.name) for f in dataclasses.fields(settings) if f.name != field}


def test_variants_combine_with_plus(tmp_path):
    combined = ablations.variant_settings("averagemean+freeze")
    assert (combined.prior_mean, combined.freeze_lengthscale) == ("average", ablations.FREEZE_LENGTHSCALE)
    ablations.main(["averagemean+freeze", "--problems", "branin", "--methods", "gpbo", "--seeds", "1",
                    "--budget", "7", "--out", str(tmp_path), "--no-report"])
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 7


def test_unknown_variant_is_refused():
    with pytest.raises(SystemExit, match="usage"):
        ablations.main(["nope"])
    with pytest.raises(SystemExit, match="usage"):
        ablations.main(["rbf+nope"])


def test_merge_renames_the_chosen_method(tmp_path):
    src = tmp_path / "a"
    src.mkdir()
    rows = [{"method": "gpbo", "problem": "branin", "seed": 0, "idx": 0},
            {"method": "tpe", "problem": "branin", "seed": 0, "idx": 0}]
    (src / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert ablations.main(["merge", str(tmp_path / "out"), f"{src}:gpbo=abl_x", f"{src}:tpe"]) == 2
    merged = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["method"] for r in merged] == ["abl_x", "tpe"]


def test_nodiscount_variant_is_log_ei_at_the_effective_best():
    acquisition = ablations.variant_settings("nodiscount").acquisition
    g = torch.Generator().manual_seed(0)
    X = torch.rand(2, 8, 2, dtype=torch.float64, generator=g)
    Y = torch.sin(6 * X).sum(-1) + 0.3 * torch.randn(2, 8, dtype=torch.float64, generator=g)
    ctx = AcquisitionContext.from_data(ExactGP.fit(X, Y), X, Y)  # n = 8: the EI member's turn
    at_best = dataclasses.replace(ctx, best_f=effective_best(ctx, 1.0))
    points = torch.rand(5, 2, 1, 2, dtype=torch.float64, generator=g)
    torch.testing.assert_close(acquisition(ctx)(points), LogEI()(at_best)(points))
    assert isinstance(acquisition, RoundRobin) and not acquisition.members[0].discount
    with_discount = LogAugmentedEI()(ctx)(points)
    assert not torch.allclose(with_discount, LogEI()(at_best)(points))
