"""The multi-objective and constrained suite: problems, constraint signs, the metric, a tiny sweep and its report."""

from __future__ import annotations

import json
import math

import pytest
import torch
from botorch.test_functions import multi_objective as bmo
from botorch.test_functions.synthetic import Ackley, Branin
from botorch.utils.multi_objective.hypervolume import Hypervolume

from benchmarks import mo_sweep, report, sweep
from benchmarks.mo_problems import MO, MO_SUITE, evaluate_params, get_mo
from gpbo.pareto import hypervolume

BOTORCH = {
    "branincurrin": bmo.BraninCurrin(),
    "dtlz2": bmo.DTLZ2(dim=6, num_objectives=2),
    "zdt1": bmo.ZDT1(dim=6, num_objectives=2),
    "c2dtlz2": bmo.C2DTLZ2(dim=4, num_objectives=2),
    "constrained_branincurrin": bmo.ConstrainedBraninCurrin(),
}


def _points(p, n=5, seed=0):
    lo = torch.tensor([s.low for s in p.params.values()], dtype=torch.float64)
    hi = torch.tensor([s.high for s in p.params.values()], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, len(p.params), generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64)


def test_the_suite_lists_every_problem_of_the_issue():
    assert sweep.SUITES["mo"] == MO_SUITE
    assert set(MO_SUITE) == {"branincurrin", "dtlz2", "zdt1", "c2dtlz2", "constrained_branincurrin",
                             "branin_disc", "ackley10_c2", "lcbench_3945"}
    dims = {n: len(get_mo(n).params) for n in MO_SUITE}
    assert dims == {"branincurrin": 2, "dtlz2": 6, "zdt1": 6, "c2dtlz2": 4, "constrained_branincurrin": 2,
                    "branin_disc": 2, "ackley10_c2": 10, "lcbench_3945": 7}
    assert [get_mo(n).default_budget for n in MO_SUITE] == [86] + [100] * 7


@pytest.mark.parametrize("name", sorted(BOTORCH))
def test_botorch_problems_are_negated_and_constraints_are_negated_slack(name):
    p, f = MO[name], BOTORCH[name]
    X = _points(p)
    Y = evaluate_params(p, [dict(zip(p.params, x.tolist())) for x in X])
    m = f.num_objectives
    assert torch.allclose(Y[:, :m], -f(X))  # maximised
    assert p.ref_point == tuple((-f.ref_point).tolist()) and p.max_hv == pytest.approx(f.max_hv)
    if p.n_constraints:
        assert torch.allclose(Y[:, m:], -f.evaluate_slack(X, noise=False))  # feasible iff <= 0
    assert p.fn(dict(zip(p.params, X[0].tolist()))) == pytest.approx(Y[0].tolist())


def _feasible(p, x) -> bool:
    return bool(mo_sweep.feasible_mask(p, p.evaluate_batch(torch.tensor([x]))).item())


def test_constraint_signs_at_known_feasible_and_infeasible_points():
    # C2-DTLZ2: the middle of the front (f = (1, 1) / sqrt 2) is inside the feasible disc; a point far off it is not
    assert _feasible(MO["c2dtlz2"], [0.5, 0.5, 0.5, 0.5])
    assert not _feasible(MO["c2dtlz2"], [0.5, 1.0, 1.0, 1.0])
    # ConstrainedBraninCurrin: the unit box's centre is the disc's centre (2.5, 7.5); the corner (-5, 0) is outside
    assert _feasible(MO["constrained_branincurrin"], [0.5, 0.5])
    assert not _feasible(MO["constrained_branincurrin"], [0.0, 0.0])
    # Branin with the disc: of the three minima only (pi, 2.275) is inside
    p = MO["branin_disc"]
    minima = torch.tensor([[math.pi, 2.275], [-math.pi, 12.275], [9.42478, 2.475]], dtype=torch.float64)
    y = p.evaluate_batch(minima)
    assert y[0, 0] == pytest.approx(-p.optimum, abs=1e-5) and p.optimum == pytest.approx(0.397887, abs=1e-6)
    assert y[0, 1] == pytest.approx((math.pi - 2.5) ** 2 + (2.275 - 7.5) ** 2 - 50)
    assert y[0, 1] < 0 and y[1, 1] > 0 and y[2, 1] > 0
    assert torch.allclose(-y[:, 0], Branin()(minima))
    # Ackley-10 with sum(x) <= 0 and ||x|| <= 5: the origin is the feasible optimum; x = 1 breaks the sum
    a = MO["ackley10_c2"]
    y0 = a.evaluate_batch(torch.zeros(1, 10))
    assert y0[0, 0] == pytest.approx(0.0, abs=1e-12) and _feasible(a, [0.0] * 10)
    X = torch.tensor([[1.0] * 10, [-2.0] * 10, [-1.0] * 10], dtype=torch.float64)
    Y = a.evaluate_batch(X)
    assert torch.allclose(-Y[:, 0], Ackley(dim=10)(X))
    assert Y[0, 1] == 10.0 and Y[1, 2] == pytest.approx(math.sqrt(40) - 5)
    assert mo_sweep.feasible_mask(a, Y).tolist() == [False, False, True]


def test_lcbench_dev_task_gives_finite_values_and_other_tasks_are_refused():
    pytest.importorskip("onnxruntime")
    p = get_mo("lcbench_3945")
    Y = p.evaluate_batch(_points(p, n=8))
    assert Y.shape == (8, 2) and bool(Y.isfinite().all())
    assert bool(((Y[:, 0] > 0) & (Y[:, 0] <= 100)).all()) and bool((Y[:, 1] < 0).all())  # accuracy %, -time
    assert len(p.ref_point) == 2 and all(math.isfinite(v) for v in p.ref_point)
    with pytest.raises(ValueError, match="not a development task"):
        get_mo("lcbench_167149")


def test_hv_metric_matches_gpbo_pareto_and_botorch_on_every_prefix():
    p = MO["c2dtlz2"]
    Y = p.evaluate_batch(_points(p, n=30, seed=1))
    Y[7] = math.nan  # a failed evaluation
    curve = mo_sweep.metric_curve(p, Y)
    ref = torch.tensor(p.ref_point, dtype=torch.float64)
    for i in (0, 5, 7, 15, 29):
        prefix = Y[: i + 1]
        ok = mo_sweep.feasible_mask(p, prefix)
        good = prefix[ok][:, :2]
        assert curve[i] == pytest.approx(float(hypervolume(good, ref)) if len(good) else 0.0)
        above = good[(good > ref).all(-1)]
        assert curve[i] == pytest.approx(Hypervolume(ref).compute(above) if len(above) else 0.0)
    assert bool((curve[1:] >= curve[:-1]).all())


def test_best_feasible_metric_of_a_single_objective_problem():
    p = MO["branin_disc"]
    Y = torch.tensor([[-5.0, 1.0], [-9.0, -1.0], [-1.0, 2.0], [-3.0, -0.5]], dtype=torch.float64)
    assert mo_sweep.metric_curve(p, Y).tolist() == [math.inf, 9.0, 9.0, 3.0]


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_tiny_sweep_writes_records_and_a_report(tmp_path):
    pytest.importorskip("optuna")
    sweep.main(["--problems", "branincurrin", "--methods", "random,tpe_mo", "--seeds", "1", "--budget", "12",
                "--out", str(tmp_path)])
    recs = _lines(tmp_path / "results.jsonl")
    assert len(recs) == 2 * 12 and {r["q"] for r in recs} == {4}  # q = 4 by default for the mo suite
    p = MO["branincurrin"]
    for method in ("random", "tpe_mo"):
        run = sorted((r for r in recs if r["method"] == method), key=lambda r: r["idx"])
        assert [r["idx"] for r in run] == list(range(12))
        curve = mo_sweep.metric_curve(p, torch.tensor([r["outcomes"] for r in run], dtype=torch.float64))
        assert [r["hv"] for r in run] == pytest.approx(curve.tolist())
        assert all(r["feasible"] for r in run)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["table"]["branincurrin"]["kind"] == "hypervolume"
    assert (tmp_path / "plots" / "branincurrin.png").exists()
    assert "hypervolume" in (tmp_path / "summary.md").read_text()


def test_mo_sweep_resumes_without_redoing(tmp_path):
    argv = ["--problems", "branin_disc", "--methods", "random", "--seeds", "2", "--budget", "10", "--no-report"]
    sweep.main([*argv, "--out", str(tmp_path / "a")])
    lines = (tmp_path / "a" / "results.jsonl").read_text().splitlines()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.jsonl").write_text("\n".join(lines[:13]) + "\n" + lines[13][:20])  # cut by a kill
    sweep.main([*argv, "--out", str(tmp_path / "b")])
    a = {(r["seed"], r["idx"]): r for r in _lines(tmp_path / "a" / "results.jsonl")}
    b = {(r["seed"], r["idx"]): r for r in report.load(tmp_path / "b")[("random", "branin_disc", 0, 10, 4)].values()}
    b |= {(r["seed"], r["idx"]): r for r in report.load(tmp_path / "b")[("random", "branin_disc", 1, 10, 4)].values()}
    assert set(a) == set(b)
    assert all(a[k]["params"] == b[k]["params"] and a[k]["best_feasible"] == b[k]["best_feasible"] for k in a)


def test_report_takes_higher_hypervolume_as_better(tmp_path):
    rows = []
    for m, hv in {"gpbo_mo": 50.0, "random": 10.0}.items():
        for s in range(8):
            rows.append({"method": m, "problem": "branincurrin", "seed": s, "idx": 0, "budget": 1, "q": 4,
                         "params": {}, "outcomes": [0.0, 0.0], "feasible": True, "hv": hv + 0.1 * s})
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    s = report.write(tmp_path, methods=["gpbo_mo", "random"], problems=["branincurrin"], seeds=list(range(8)),
                     budget_of={"branincurrin": 1}, q=4)
    assert s["wtl"]["random"]["win"] == 1 and s["wtl"]["random"]["median>="] == 1
    assert report.higher_better("hypervolume") and not report.higher_better("best feasible value")


@pytest.mark.slow
def test_gpbo_mo_end_to_end_through_the_sweep(tmp_path, monkeypatch):
    """All seeds in one engine call per iteration, Y (P, n, O)."""
    from gpbo import engine

    shapes, real = [], engine.suggest

    def counting(X, Y, **kw):
        shapes.append((tuple(X.shape), tuple(Y.shape), kw["q"], kw["settings"].outcomes.n_constraints))
        return real(X, Y, **kw)

    monkeypatch.setattr(engine, "suggest", counting)
    sweep.main(["--problems", "constrained_branincurrin", "--methods", "gpbo_mo", "--seeds", "2", "--budget", "12",
                "--out", str(tmp_path)])
    # n_init = 2 (d + 1) = 6, then batches of 4 and 2
    assert shapes == [((2, 6, 2), (2, 6, 3), 4, 1), ((2, 10, 2), (2, 10, 3), 2, 1)]
    recs = _lines(tmp_path / "results.jsonl")
    assert len(recs) == 24 and all(r["hv"] is not None for r in recs)
    assert (tmp_path / "summary.md").exists()


def test_gpbo_mo_variants_change_one_setting_and_stay_out_of_the_default_sweep():
    from benchmarks import mo_methods

    p = get_mo("ackley10_c2")
    default = mo_methods.gpbo_settings("gpbo_mo", p)
    det = mo_methods.gpbo_settings("gpbo_mo_det", p)
    assert default.noise == "learned" and det.noise == "deterministic"
    assert det.replace(noise="learned") == default
    assert (det.outcomes.n_objectives, det.outcomes.n_constraints) == (1, 2)
    defaults = mo_methods.DEFAULT_MO_METHODS.split(",")
    assert "gpbo_mo" in defaults
    assert not set(mo_methods.GPBO_MO_VARIANTS) & set(defaults)
    assert set(mo_methods.GPBO_MO_VARIANTS) <= set(mo_methods.GPBO_MO_METHODS)
