"""The facade of multi-objective and constrained studies (gpbo.metrics, Optimizer, minimize).

These tests replace the engine by a fake spy (as tests/test_optimizer.py
does), so they check what the facade hands the engine (Y (1, n, O), the
Outcomes in the settings, the signs, bounds and imputation) without the
multi-output engine. The end-to-end runs with the real engine are in
tests/test_multi_objective_e2e.py.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import gpbo
import gpbo.optimizer as optimizer_module
from gpbo.errors import InvalidArgumentError, InvalidTrialError, MetricsError
from gpbo.metrics import Metrics
from gpbo.optimizer import Optimizer
from gpbo.outcomes import Outcomes, impute_constraints
from gpbo.settings import Settings
from gpbo.space import Real
from gpbo.trial import TrialState

BOX = {"x": Real(0.0, 1.0), "y": Real(-2.0, 2.0)}
OBJ = {"error": "minimize", "latency_ms": "minimize"}
CON = {"memory_gb": ("<=", 16.0)}


class FakeEngine:
    """Records the engine's inputs; returns seeded uniform points."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, X, Y, *, dims, q, pending, seed, warm_start, settings):
        assert isinstance(settings, Settings)
        self.calls.append(dict(X=X, Y=Y, q=q, pending=pending, settings=settings, warm_start=warm_start))
        candidates = torch.rand(1, q, X.shape[-1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        model = SimpleNamespace(theta=torch.full((1, 2, X.shape[-1] + 1), float(len(self.calls))))
        return SimpleNamespace(candidates=candidates.to(X), acq_values=torch.zeros(1), model=model)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(optimizer_module, "suggest", fake)
    return fake


def metrics_of(p: dict) -> dict:
    return {"error": (p["x"] - 0.3) ** 2, "latency_ms": 10 * p["x"] + p["y"] ** 2, "memory_gb": 20 * p["x"]}


def mo_opt(**kw) -> Optimizer:
    return Optimizer(BOX, objectives=OBJ, constraints=CON, seed=0, settings={"n_initial": 4}, **kw)


def run(opt: Optimizer, n: int, fn=metrics_of) -> None:
    for _ in range(n):
        trial = opt.ask()
        opt.tell(trial, fn(trial.params))


# ------------------------------------------------------------------ what the engine gets


def test_the_engine_gets_objectives_to_maximise_then_constraints_at_zero(engine):
    opt = mo_opt()
    run(opt, 6)
    call = engine.calls[-1]
    assert call["settings"].outcomes == Outcomes(n_objectives=2, n_constraints=1, ref_point=None)
    Y, trials = call["Y"], opt.trials[:5]
    assert Y.shape == (1, 5, 3) and Y.dtype == torch.float64
    expected = torch.tensor([[-t.values["error"], -t.values["latency_ms"], t.values["memory_gb"] - 16.0]
                             for t in trials], dtype=torch.float64)
    torch.testing.assert_close(Y[0], expected)
    assert engine.calls[0]["warm_start"] is None and len(engine.calls) == 2
    assert torch.equal(call["warm_start"], torch.full((1, 2, 3), 1.0))  # the first call's theta
    assert torch.equal(opt._theta, torch.full((1, 2, 3), 2.0))  # the engine's theta is kept as is


def test_maximised_objectives_and_ge_constraints_keep_their_sign(engine):
    opt = Optimizer(BOX, objectives={"acc": "maximize"}, constraints={"acc": (">=", 0.2), "mem": ("<=", 1.0)},
                    seed=1, settings={"n_initial": 3})
    run(opt, 4, lambda p: {"acc": p["x"], "mem": p["y"]})
    Y, trials = engine.calls[0]["Y"][0], opt.trials[:3]
    assert engine.calls[0]["settings"].outcomes == Outcomes(1, 2)
    expected = [[t.params["x"], 0.2 - t.params["x"], t.params["y"] - 1.0] for t in trials]
    torch.testing.assert_close(Y, torch.tensor(expected, dtype=torch.float64))
    assert opt.metrics.names == ("acc", "mem")


def test_failed_trials_are_imputed_worst_and_infeasible(engine):
    opt = mo_opt()
    trials = opt.ask(4)
    opt.tell(trials[0], {"error": 0.1, "latency_ms": 5.0, "memory_gb": 8.0})
    opt.tell(trials[1], {"error": 0.3, "latency_ms": 2.0, "memory_gb": 12.0})
    opt.tell(trials[2], RuntimeError("out of memory"))
    opt.tell(trials[3], {"error": float("nan"), "latency_ms": 1.0, "memory_gb": 4.0})
    opt.ask()
    Y = engine.calls[-1]["Y"][0]
    # no constraint violated: imputed at the spread of g (12 - 8 = 4), the objectives at their worst
    torch.testing.assert_close(Y, torch.tensor(
        [[-0.1, -5.0, -8.0], [-0.3, -2.0, -4.0], [-0.3, -5.0, 4.0], [-0.3, -1.0, -12.0]], dtype=torch.float64))
    assert opt.trials[3].state is TrialState.FAILED and "error=nan" in opt.trials[3].error
    assert math.isnan(opt.trials[3].values["error"]) and opt.trials[3].values["latency_ms"] == 1.0  # nothing lost


def test_failed_constraints_take_the_largest_violation():
    metrics = Metrics(OBJ, CON)
    done = [gpbo.Trial(i, {}, TrialState.COMPLETE, None, None, {"error": 1.0, "latency_ms": 1.0, "memory_gb": m})
            for i, m in enumerate([10.0, 19.0])]
    failed = [gpbo.Trial(2, {}, TrialState.FAILED, None, "boom")]
    assert metrics.engine_Y(done, failed)[2].tolist() == [-1.0, -1.0, 3.0]
    one = metrics.engine_Y(done[:1], failed)
    assert one[1].tolist() == [-1.0, -1.0, 1.0]  # one observed g: +1


def test_a_given_reference_point_reaches_the_engine_in_maximisation_units(engine):
    opt = Optimizer(BOX, objectives={"error": ("minimize", 0.5), "acc": ("maximize", 0.7)}, seed=0,
                    settings={"n_initial": 2})
    run(opt, 3, lambda p: {"error": p["x"], "acc": p["y"]})
    assert engine.calls[0]["settings"].outcomes == Outcomes(2, 0, (-0.5, 0.7))
    assert opt.reference_point == {"error": 0.5, "acc": 0.7}


def test_a_single_objective_study_is_unchanged(engine):
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 2})
    run(opt, 3, lambda p: p["x"])
    assert engine.calls[0]["Y"].shape == (1, 2) and engine.calls[0]["settings"].outcomes == Outcomes()
    assert opt.settings is not None and opt.metrics.plain and opt.trials[0].values == {}
    assert opt.best.value == min(t.value for t in opt.trials)


# ------------------------------------------------------------------ results


def test_values_best_and_front_with_constraints(engine):
    opt = Optimizer(BOX, objectives={"loss": "minimize"}, constraints=CON, seed=0, settings={"n_initial": 3})
    told = [{"loss": 0.1, "memory_gb": 30.0}, {"loss": 0.5, "memory_gb": 10.0}, {"loss": 0.3, "memory_gb": 16.0},
            {"loss": 0.3, "memory_gb": 1.0}]
    for v in told:
        opt.tell(opt.ask(), v)
    trials = opt.trials
    assert [dict(t.values) for t in trials] == told and [t.value for t in trials] == [0.1, 0.5, 0.3, 0.3]
    assert opt.best.id == 2  # 0.1 is infeasible; first on ties
    assert [t.id for t in opt.pareto_front] == [2, 3]
    with pytest.raises(TypeError, match="values are read-only"):
        trials[0].values["loss"] = 0.0


def test_pareto_front_keeps_feasible_non_dominated_trials(engine):
    opt = mo_opt()
    told = [(0.1, 5.0, 8.0), (0.3, 2.0, 12.0), (0.2, 6.0, 4.0), (0.05, 1.0, 17.0), (0.4, 2.0, 1.0)]
    for e, lat, mem in told:
        opt.tell(opt.ask(), {"error": e, "latency_ms": lat, "memory_gb": mem})
    assert [t.id for t in opt.pareto_front] == [0, 1]  # 2 dominated by 0, 3 infeasible, 4 dominated by 1
    with pytest.raises(InvalidArgumentError, match="best is for a single objective; this study has 2 objectives"):
        _ = opt.best
    ref = opt.reference_point  # nadir (0.3, 5.0) minus 10 % of the range in maximisation units
    assert ref == pytest.approx({"error": 0.32, "latency_ms": 5.3})


def test_hypervolume_and_feasibility_in_user_units(engine):
    opt = Optimizer(BOX, objectives={"error": "minimize", "accuracy": "maximize"}, constraints=CON, seed=0)
    assert opt.hypervolume({"error": 1.0, "accuracy": 0.0}) == 0.0  # no feasible trial yet
    told = [(0.2, 0.9, 8.0), (0.5, 0.95, 12.0), (0.1, 0.99, 30.0), (0.4, 0.5, 1.0)]
    trials = [opt.tell(opt.ask(), {"error": e, "accuracy": a, "memory_gb": m}) for e, a, m in told]
    running = opt.ask()
    assert [opt.is_feasible(t) for t in trials] == [True, True, False, True]
    assert not opt.is_feasible(running) and opt.is_feasible(1)
    # feasible points (error, accuracy): (0.2, 0.9), (0.5, 0.95), (0.4, 0.5); the third is dominated.
    # Above ref (error 1.0, accuracy 0.0): [0.2, 1] x [0, 0.9] united with [0.5, 1] x [0, 0.95]
    # = 0.8 * 0.9 + 0.5 * 0.05
    assert opt.hypervolume({"error": 1.0, "accuracy": 0.0}) == pytest.approx(0.8 * 0.9 + 0.5 * 0.05)
    ref = opt.reference_point
    assert opt.hypervolume() == pytest.approx(opt.hypervolume(ref)) and opt.hypervolume() > 0
    for bad, message in [({"error": 1.0}, r"missing \['accuracy'\], unknown \[\]"),
                         ({"error": 1.0, "accuracy": 0.0, "loss": 1.0}, r"unknown \['loss'\]"),
                         ({"error": float("nan"), "accuracy": 0.0}, r"ref_point\['error'\] must be a finite number"),
                         ([1.0, 0.0], "ref_point must be a dict objective name -> value")]:
        with pytest.raises(InvalidArgumentError, match=message):
            opt.hypervolume(bad)
    with pytest.raises(InvalidTrialError, match="trial must be a Trial or a trial id, got str"):
        opt.is_feasible("x")
    with pytest.raises(InvalidTrialError, match="unknown trial id 9"):
        opt.is_feasible(9)
    single = Optimizer(BOX, objectives={"loss": "minimize"}, seed=0)
    with pytest.raises(InvalidArgumentError, match="hypervolume needs a study with 2 or more objectives, got 1"):
        single.hypervolume()


def test_no_feasible_trial_says_so(engine):
    opt = Optimizer(BOX, objectives={"loss": "minimize"}, constraints=CON, seed=0)
    opt.tell(opt.ask(), {"loss": 0.1, "memory_gb": 30.0})
    assert opt.best is None and opt.pareto_front == [] and opt.reference_point is None
    with pytest.warns(UserWarning, match=r"no trial satisfies the constraints \{'memory_gb': \('<=', 16.0\)\}"):
        res = gpbo.minimize(lambda p: {"loss": p["x"], "memory_gb": 99.0}, BOX, 3, seed=0,
                            objectives={"loss": "minimize"}, constraints=CON)
    assert res.best_params is None and res.best_value is None and res.pareto_front == []


def test_minimize_with_several_objectives(engine):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = gpbo.minimize(metrics_of, BOX, 6, seed=0, objectives=OBJ, constraints=CON, settings={"n_initial": 4},
                            progress=True)
    assert res.best_params is None and res.best_value is None and len(res.trials) == 6
    assert res.pareto_front == res.optimizer.pareto_front and res.pareto_front
    assert all(t.values["memory_gb"] <= 16.0 for t in res.pareto_front)
    assert engine.calls and engine.calls[0]["Y"].shape[-1] == 3


@pytest.mark.parametrize("acquisition", ["qlog_nehvi", "qlog_parego", "qlog_nehvi_parego"])
def test_a_settings_dict_may_name_a_multi_objective_acquisition(engine, acquisition):
    # the dict is validated with the study's outcomes, not the single-objective default's
    opt = Optimizer(BOX, objectives=OBJ, constraints=CON, seed=0, settings={"n_initial": 2, "acquisition": acquisition})
    run(opt, 3)
    assert opt.settings.acquisition == acquisition and opt.settings.outcomes == Outcomes(2, 1)
    assert engine.calls[-1]["settings"].acquisition == acquisition
    with pytest.raises(InvalidArgumentError, match="multi-objective and needs >= 2 objectives"):
        Optimizer(BOX, settings={"acquisition": acquisition})  # a plain study still refuses it


def test_minimize_single_objective_with_constraints(engine):
    res = gpbo.minimize(lambda p: {"loss": p["x"] ** 2, "memory_gb": 20 * p["y"]}, BOX, 5, seed=0,
                        objectives={"loss": "minimize"}, constraints=CON, settings={"n_initial": 4})
    feasible = [t for t in res.trials if t.values["memory_gb"] <= 16.0]
    assert res.best_value == min(t.value for t in feasible)


def test_a_bad_dict_from_fn_fails_the_trial_and_raises(engine):
    with pytest.raises(InvalidTrialError, match="the told metrics lack 'memory_gb' \\(constraint\\)"):
        gpbo.minimize(lambda p: {"error": 1.0, "latency_ms": 1.0}, BOX, 2, objectives=OBJ, constraints=CON)


@pytest.mark.parametrize(("told", "kept"), [
    ({"error": 0.25, "latency_ms": "fast", "memory_gb": 3}, {"error": 0.25, "latency_ms": math.nan, "memory_gb": 3.0}),
    ({"error": 0.25, "latency_ms": 7.0}, {"error": 0.25, "latency_ms": 7.0, "memory_gb": math.nan}),
    ({"error": 0.25, "latency_ms": 7.0, "memory_gb": 3, "acc": 0.9}, {"error": 0.25, "latency_ms": 7.0, "memory_gb": 3.0}),
])
def test_the_failed_record_of_a_bad_dict_keeps_its_real_metrics(engine, told, kept, tmp_path):
    """Nothing told is lost: the FAILED trial keeps every metric told as a real number (NaN for the others,
    which the error names), in minimize's record, in storage, and when the caught error is told in ask/tell."""
    storage = gpbo.Storage(tmp_path / "study.db")
    with pytest.raises(MetricsError) as caught:
        gpbo.minimize(lambda p: told, BOX, 2, objectives=OBJ, constraints=CON, storage=storage, seed=0)
    for trial in (gpbo.load_study(tmp_path / "study.db").trials[0], Optimizer(BOX, objectives=OBJ, constraints=CON,
                                                                storage=storage).trials[0]):
        assert trial.state is TrialState.FAILED and trial.error.startswith("MetricsError: ")
        assert trial.values.keys() == kept.keys()
        assert all(v == kept[k] or (math.isnan(v) and math.isnan(kept[k])) for k, v in trial.values.items())
    assert caught.value.values.keys() == kept.keys()
    opt = mo_opt()
    trial = opt.ask()
    with pytest.raises(MetricsError) as caught:
        opt.tell(trial, told)
    assert opt.tell(trial, caught.value).values.keys() == kept.keys()


def test_state_dict_keeps_every_metric_and_resumes(engine):
    opt = mo_opt()
    run(opt, 6)
    state = json.loads(json.dumps(opt.state_dict()))
    assert state["metrics"] == {"objectives": {"error": ["minimize", None], "latency_ms": ["minimize", None]},
                                "constraints": {"memory_gb": ["<=", 16.0]}}
    back = Optimizer.from_state_dict(state)
    assert back.trials == opt.trials and back.metrics == opt.metrics
    assert back.settings.outcomes == Outcomes(2, 1)
    assert [t.id for t in back.pareto_front] == [t.id for t in opt.pareto_front]
    a, b = opt.ask(), back.ask()
    assert a.params == b.params
    assert pickle.loads(pickle.dumps(a)).values == {}


def test_tell_many_with_dicts(engine):
    opt = mo_opt()
    params = [{"x": 0.1, "y": 0.0}, {"x": 0.9, "y": 1.0}]
    trials = opt.tell_many(params, [metrics_of(p) for p in params])
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert [t.id for t in opt.pareto_front] == [0]  # 1 is infeasible (memory 18 GB)


# ------------------------------------------------------------------ bad input

BAD_OPTIONS = [
    (dict(objectives={"error": "min"}), "objectives['error'] must be 'minimize' or 'maximize', or (direction, "
                                        "reference value), got 'min'"),
    (dict(objectives={"error": "minimize"}, maximize=True), "maximize=True conflicts with objectives="),
    (dict(constraints=CON), "constraints need objectives="),
    (dict(objectives={}), "objectives must be a non-empty dict"),
    (dict(objectives=["error"]), "objectives must be a non-empty dict name -> spec, got ['error']"),
    (dict(objectives={"e": "minimize"}, constraints={"m": ("<", 1.0)}), "constraints['m'] must be ('<=', bound)"),
    (dict(objectives={"e": "minimize"}, constraints={"m": ("<=", "16")}), "got ('<=', '16')"),
    (dict(objectives={"e": "minimize"}, constraints={"m": ("<=", math.inf)}), "finite number bound"),
    (dict(objectives={"e": ("minimize", 1.0), "f": "minimize"}), "given for ['e'] only"),
    (dict(objectives={"e": ("minimize", "x")}), "reference value must be a finite number, got 'x'"),
    (dict(objectives={"e": "minimize"}, settings={"outcomes": Outcomes(3)}), "settings.outcomes is"),
]


@pytest.mark.parametrize("kwargs,message", BAD_OPTIONS)
def test_bad_options_name_the_bad_value(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        Optimizer(BOX, **kwargs)


BAD_TELLS = [
    ({"error": 1.0, "latency_ms": 1.0}, "the told metrics lack 'memory_gb' (constraint)"),
    ({"latency_ms": 1.0, "memory_gb": 1.0}, "the told metrics lack 'error' (objective)"),
    ({"error": 1.0, "latency_ms": 1.0, "memory_gb": 1.0, "acc": 0.5}, "unknown metric 'acc' told"),
    ({"error": "0.1", "latency_ms": 1.0, "memory_gb": 1.0}, "metric 'error' must be a real number, got '0.1' of type str"),
    ({"error": None, "latency_ms": 1.0, "memory_gb": 1.0}, "metric 'error' must be a real number, got None"),
    (0.5, "this study has the metrics ['error', 'latency_ms', 'memory_gb']: tell a dict"),
    ("0.5", "tell a dict name -> value (or an exception), got str '0.5'"),
]


@pytest.mark.parametrize("value,message", BAD_TELLS)
def test_bad_tells_name_the_metric_and_change_nothing(engine, value, message):
    opt = mo_opt()
    trial = opt.ask()
    with pytest.raises(InvalidTrialError, match=re.escape(message)):
        opt.tell(trial, value)
    assert opt.trials[0].state is TrialState.RUNNING
    told = opt.tell(trial, {"error": np.float32(0.5), "latency_ms": torch.tensor(2.0), "memory_gb": 3})
    assert told.values == {"error": 0.5, "latency_ms": 2.0, "memory_gb": 3.0}


def test_a_dict_told_to_a_plain_study_is_an_error():
    opt = Optimizer(BOX, seed=0)
    with pytest.raises(InvalidTrialError, match="this study has one objective: tell a number"):
        opt.tell(opt.ask(), {"loss": 0.5})


@pytest.mark.parametrize(("kwargs", "maximizes"), [
    ({}, False), ({"maximize": True}, True), ({"objectives": {"acc": "maximize"}}, True),
    ({"objectives": {"loss": "minimize"}}, False), ({"objectives": {"acc": "maximize", "size": "minimize"}}, True),
])
def test_maximize_is_the_first_objectives_direction(kwargs, maximizes):
    opt = Optimizer({"x": Real(0.0, 1.0)}, seed=0, **kwargs)
    assert opt.maximize is maximizes and opt.metrics.maximizes is maximizes


def test_impute_constraints_fills_violated_and_met_entries():
    G = torch.tensor([[-1.0, -2.0, math.nan], [0.5, -1.0, math.nan], [math.inf, -math.inf, math.inf]],
                     dtype=torch.float64)  # column 0 has a violation, column 1 none, column 2 nothing finite
    torch.testing.assert_close(impute_constraints(G), torch.tensor(
        [[-1.0, -2.0, 1.0], [0.5, -1.0, 1.0], [0.5, -2.0, 1.0]], dtype=torch.float64))
    F = torch.tensor([[math.nan, math.inf, -math.inf]], dtype=torch.float64)
    torch.testing.assert_close(impute_constraints(G[:2], F), torch.tensor([[0.5, 1.0, 0.0]], dtype=torch.float64))
