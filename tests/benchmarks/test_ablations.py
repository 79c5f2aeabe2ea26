"""Engine ablations: each variant patches its piece of gpbo and runs the sweep."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from benchmarks import ablations
from gpbo.acquisition import LogEI, RoundRobin
from gpbo.acquisition.analytic import effective_best
from gpbo.acquisition.protocol import AcquisitionContext
from gpbo.models import exact, kernel, marginal, warping
from gpbo.search import multistart

pytestmark = pytest.mark.usefixtures("restore_engine")


@pytest.mark.parametrize("variant", sorted(ablations.VARIANTS))
def test_variant_patches_the_engine_and_runs_the_sweep(variant, tmp_path, restore_engine):
    before = {(m.__name__, n): getattr(m, n) for m, n in restore_engine}
    fit_before = exact.ExactGP.__dict__["fit"]
    ablations.main([variant, "--problems", "branin_noisy", "--methods", "gpbo", "--seeds", "1",
                    "--budget", "8", "--out", str(tmp_path), "--no-report"])
    after = {(m.__name__, n): getattr(m, n) for m, n in restore_engine}
    changed = [k for k in before if before[k] is not after[k]]
    assert changed or exact.ExactGP.__dict__["fit"] is not fit_before
    recs = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 8 and all(r["true"] is not None for r in recs)


def test_rbf_variant_is_the_squared_exponential():
    ablations.VARIANTS["rbf"]()
    sq = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(kernel.matern52(sq), torch.exp(-0.5 * sq))
    torch.testing.assert_close(marginal.matern52_dsq(sq), -0.5 * torch.exp(-0.5 * sq))


def test_accelerator_variant_takes_the_gpu_code_path():
    ablations.VARIANTS["accelerator"]()
    for fn in (exact.minimize_lbfgsb, multistart.minimize_lbfgsb):
        assert fn.keywords == {"check_every": 10, "unit_first": False} == ablations.ACCELERATOR_PATH


def test_averagemean_variant_puts_the_prior_mean_at_the_average_observation():
    ablations.VARIANTS["averagemean"]()
    X = torch.rand(2, 6, 3, dtype=torch.float64)
    Y = torch.randn(2, 6, dtype=torch.float64)
    model = exact.ExactGP.fit(X, Y, max_iter=5)
    torch.testing.assert_close(model.y_mean, Y.mean(-1))
    torch.testing.assert_close(model.y_std, Y.std(-1))
    torch.testing.assert_close(model.Y_train.mean(-1), torch.zeros(2, dtype=torch.float64))


def test_freeze_variant_holds_the_long_lengthscale_dims(monkeypatch):
    seen = {}

    def ascend(fn, X, fixed, max_iter, scale):
        seen["fixed"] = fixed
        return X

    monkeypatch.setattr(multistart, "_ascend", ascend)
    ablations.VARIANTS["freeze"]()
    X = torch.rand(4, 2, 1, 3, dtype=torch.float64)  # (R, P, q, d)
    scale = torch.tensor([[0.5, 3.0, 1.0], [2.5, 0.1, 0.2]], dtype=torch.float64)
    multistart._ascend(None, X, torch.tensor([False, False, True]), 10, scale)
    assert seen["fixed"].tolist() == [[False, True, True], [True, False, True]]


def test_nofence_variant_standardises_the_outcomes_as_they_are():
    y = torch.cat([-torch.linspace(0.0, 1.0, 29, dtype=torch.float64), torch.tensor([-1e6], dtype=torch.float64)])
    assert float(warping.pull_in_far_outcomes(y[None])[0][0, -1]) > -100.0
    ablations.VARIANTS["nofence"]()
    z = (y - y.mean()) / y.std(correction=0)
    lam = warping.fit_yeo_johnson(y[None])
    torch.testing.assert_close(warping.warp_outcomes(y[None]), warping.yeo_johnson(z, lam)[None])


def test_fence10_variant_moves_the_fences():
    y = torch.cat([torch.zeros(10), torch.ones(10), torch.tensor([6.0])]).double()[None]  # IQR 1, 5 beyond q3
    assert float(warping.pull_in_far_outcomes(y)[1]) < 0.0
    ablations.VARIANTS["fence10"]()
    assert float(warping.pull_in_far_outcomes(y)[1]) == 0.0


def test_variants_combine_with_plus(tmp_path):
    ablations.main(["averagemean+freeze", "--problems", "branin", "--methods", "gpbo", "--seeds", "1",
                    "--budget", "7", "--out", str(tmp_path), "--no-report"])
    assert exact._standardisation.__name__ == "average" and multistart._ascend.__name__ == "frozen"
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
    ablations.VARIANTS["nodiscount"]()
    g = torch.Generator().manual_seed(0)
    X = torch.rand(2, 8, 2, dtype=torch.float64, generator=g)
    Y = torch.sin(6 * X).sum(-1) + 0.3 * torch.randn(2, 8, dtype=torch.float64, generator=g)
    ctx = AcquisitionContext.from_data(exact.ExactGP.fit(X, Y), X, Y)  # n = 8: the EI member's turn
    at_best = dataclasses.replace(ctx, best_f=effective_best(ctx, 1.0))
    points = torch.rand(5, 2, 1, 2, dtype=torch.float64, generator=g)
    torch.testing.assert_close(RoundRobin()(ctx)(points), LogEI()(at_best)(points))
