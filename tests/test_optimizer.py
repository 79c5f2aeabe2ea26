"""Tests for gpbo.optimizer.Optimizer and gpbo.trial.

Most tests replace the engine by a cheap fake that records its inputs, so the
facade's bookkeeping is checked without fitting GPs; a few run the real engine.
"""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import gpbo.optimizer as optimizer_module
from gpbo.errors import FitError, GpboError, InvalidArgumentError, InvalidSpaceError, InvalidTrialError
from gpbo.optimizer import Optimizer
from gpbo.settings import Settings
from gpbo.space import Categorical, Integer, Real, Space
from gpbo.trial import Trial, TrialState

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]
BOX = {"x": Real(0.0, 1.0), "y": Real(-2.0, 2.0)}


def mixed_space() -> Space:
    return Space({
        "lr": Real(1e-4, 1e-1, log=True),
        "layers": Integer(1, 4),
        "act": Categorical(["relu", "tanh", "gelu"]),
    })


class FakeEngine:
    """Stands in for gpbo.engine.suggest: records calls, returns seeded uniform points."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, X, Y, *, dims, q, pending, seed, warm_start, settings):
        assert isinstance(settings, Settings)  # validated once, by the facade
        self.calls.append(dict(X=X, Y=Y, dims=dims, q=q, pending=pending, seed=seed, warm_start=warm_start,
                               settings=settings))
        generator = torch.Generator().manual_seed(seed)
        candidates = torch.rand(1, q, X.shape[-1], generator=generator, dtype=torch.float64)
        theta = torch.full((1, X.shape[-1] + 1), float(len(self.calls)), dtype=X.dtype)
        model = SimpleNamespace(theta=theta)  # the facade keeps only the hyperparameters
        return SimpleNamespace(candidates=candidates.to(X), acq_values=torch.zeros(1), model=model)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(optimizer_module, "suggest", fake)
    return fake


def run(opt: Optimizer, n: int, fn=lambda p: p["x"] ** 2 + p["y"] ** 2) -> None:
    for _ in range(n):
        trial = opt.ask()
        opt.tell(trial, fn(trial.params))


# ------------------------------------------------------------------ bad input

BAD_OPTIONS = [
    (dict(space=5), InvalidSpaceError, "space must be a Space or a dict"),
    (dict(space={}), InvalidSpaceError, "empty"),
    (dict(space={"x": (0, 1)}), InvalidSpaceError, "(0, 1)"),
    (dict(maximize="yes"), InvalidArgumentError, "maximize must be a bool, got str 'yes'"),
    (dict(seed=-1), InvalidArgumentError, "seed must be an int >= 0"),
    (dict(seed=1.5), InvalidArgumentError, "seed must be an int >= 0 and < 9223372036854775808, got float 1.5"),
    (dict(seed=True), InvalidArgumentError, "seed must be an int"),
    (dict(seed=2**63), InvalidArgumentError, "< 9223372036854775808"),
    (dict(settings={"device": 3}), InvalidArgumentError, "device must be a str, a torch.device or None, got int 3"),
    (dict(settings={"device": "nonsense"}), InvalidArgumentError, "'nonsense' is not a valid torch device"),
    (dict(settings={"dtype": torch.float16}), InvalidArgumentError, "torch.float32 or torch.float64, got torch.float16"),
    (dict(settings={"dtype": "float16"}), InvalidArgumentError, "dtype must be torch.float32 or torch.float64"),
    (dict(settings={"acquisition": "nope"}), InvalidArgumentError, "unknown acquisition 'nope'"),
    (dict(settings={"acquisition": 42}), InvalidArgumentError, "acquisition must be a registry name"),
    (dict(settings={"n_initial": -1}), InvalidArgumentError, "n_initial must be an int >= 0, got int -1"),
    (dict(settings={"n_initial": 2.0}), InvalidArgumentError, "n_initial must be an int >= 0, got float 2.0"),
    (dict(settings={"noise": "sometimes"}), InvalidArgumentError,
     "noise must be one of ('learned', 'deterministic'), got 'sometimes'"),
    (dict(settings={"model": "huge"}), InvalidArgumentError, "model must be one of ('auto', 'exact', 'svgp'), got 'huge'"),
    (dict(settings={"nosie": "learned"}), InvalidArgumentError, "unknown settings ['nosie']"),
    (dict(settings="fast"), InvalidArgumentError, "settings must be a gpbo.Settings, a dict of its fields or None"),
    (dict(acquisition="ucb"), TypeError, "unexpected keyword argument 'acquisition'"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_OPTIONS)
def test_bad_options_raise(kwargs, error, message):
    kwargs = {"space": BOX, **kwargs}
    with pytest.raises(error, match=re.escape(message)) as info:
        Optimizer(kwargs.pop("space"), **kwargs)
    assert error is TypeError or isinstance(info.value, GpboError) and isinstance(info.value, ValueError)


def test_cuda_without_cuda_raises():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(InvalidArgumentError, match="CUDA is not available"):
        Optimizer(BOX, settings={"device": "cuda"})


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2", 10**20])
def test_bad_ask_count_raises(n):
    with pytest.raises(InvalidArgumentError, match=r"n must be an int >= 1"):
        Optimizer(BOX, seed=0).ask(n)


BAD_VALUES = [
    ("abc", "got 'abc' of type str"),
    ([1.0], "got [1.0] of type list"),
    (None, "got None of type NoneType"),
    (True, "got True of type bool"),
    (1 + 2j, "got (1+2j) of type complex"),
    (torch.tensor([1.0, 2.0]), "got tensor([1., 2.]) of type Tensor"),
]


@pytest.mark.parametrize("value, message", BAD_VALUES)
def test_tell_bad_value_raises_and_keeps_trial_running(value, message):
    opt = Optimizer(BOX, seed=0)
    trial = opt.ask()
    expected = "value must be a real number or an exception instance, " + message
    with pytest.raises(InvalidTrialError, match=re.escape(expected)):
        opt.tell(trial, value)
    assert opt.trials[0].state is TrialState.RUNNING


def test_tell_bad_trial_raises():
    opt = Optimizer(BOX, seed=0)
    trial = opt.ask()
    with pytest.raises(InvalidTrialError, match="unknown trial id 7; there are 1 trials"):
        opt.tell(7, 1.0)
    with pytest.raises(InvalidTrialError, match="trial must be a Trial, a trial id or a params dict, got str 'x'"):
        opt.tell("x", 1.0)
    with pytest.raises(InvalidTrialError, match="trial 0 does not belong to this optimizer"):
        opt.tell(Trial(id=0, params={"x": 0.5, "y": 0.0}), 1.0)
    opt.tell(trial, 1.0)
    with pytest.raises(InvalidTrialError, match=r"trial 0 was already told \(state complete\)"):
        opt.tell(trial.id, 2.0)
    assert opt.trials[0].value == 1.0


@pytest.mark.parametrize("params, message", [
    ({"x": 5.0, "y": 0.0}, "parameter 'x': value 5.0"),
    ({"x": 0.5}, r"missing parameters \['y'\]"),
    ({"x": 0.5, "y": 0.0, "z": 1}, r"unknown parameters \['z'\]"),
])
def test_tell_params_outside_space_raises(params, message):
    opt = Optimizer(BOX, seed=0)
    with pytest.raises(InvalidTrialError, match=message):
        opt.tell(params, 1.0)
    assert opt.trials == []


def test_tell_many_bad_input_records_nothing():
    opt = Optimizer(BOX, seed=0)
    good = [{"x": 0.1, "y": 0.0}, {"x": 0.2, "y": 1.0}]
    with pytest.raises(InvalidTrialError, match="tell_many got 2 params but 1 values"):
        opt.tell_many(good, [1.0])
    with pytest.raises(InvalidTrialError, match="got 'bad' of type str"):
        opt.tell_many(good, [1.0, "bad"])
    with pytest.raises(InvalidTrialError, match="trial 1: parameter 'y': value 9.0"):
        opt.tell_many([good[0], {"x": 0.2, "y": 9.0}], [1.0, 2.0])
    with pytest.raises(InvalidTrialError, match="params must be a list, got dict"):
        opt.tell_many(good[0], [1.0])
    assert opt.trials == []


# ------------------------------------------------------------------ ask / tell

def test_ask_tell_basics(engine):
    opt = Optimizer(BOX, seed=0)
    trial = opt.ask()
    assert (trial.id, trial.state, trial.value, trial.error) == (0, TrialState.RUNNING, None, None)
    assert set(trial.params) == {"x", "y"} and 0 <= trial.params["x"] <= 1 and -2 <= trial.params["y"] <= 2
    told = opt.tell(trial, np.float32(0.5))
    assert (told.id, told.state, told.value) == (0, TrialState.COMPLETE, 0.5)
    assert type(told.value) is float and told.params == trial.params
    assert opt.tell(opt.ask(), torch.tensor(0.25, dtype=torch.float32)).value == 0.25
    assert [t.id for t in opt.trials] == [0, 1]
    assert opt.n_initial == 5 and engine.calls == []


def test_initial_design_is_sobol_then_engine(engine):
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 4})
    first = opt.ask(3)
    for t in first:
        opt.tell(t, t.params["x"])
    batch = opt.ask(3)  # 1 Sobol point, then 2 from the engine with that point pending
    assert len(engine.calls) == 1
    call = engine.calls[0]
    assert call["q"] == 2 and call["X"].shape == (1, 3, 2) and call["pending"].shape == (1, 1, 2)
    assert torch.equal(call["pending"][0, 0], opt.space.encode(batch[0].params))
    assert torch.allclose(call["Y"], -torch.tensor([[t.params["x"] for t in first]], dtype=torch.float64))
    again = Optimizer(BOX, seed=0, settings={"n_initial": 4}).ask(4)
    assert [t.params for t in again] == [t.params for t in first + batch[:1]]
    assert call["settings"] == Settings(n_initial=4)


def test_settings_reach_the_engine_and_the_state(engine):
    settings = Settings(n_initial=1, noise="deterministic", model="exact", kernel="rbf", n_raw=64)
    opt = Optimizer(BOX, seed=0, settings=settings)
    assert opt.settings is settings and opt.n_initial == 1
    opt.tell(opt.ask(), 1.0)
    opt.ask()
    assert engine.calls[-1]["settings"] is settings
    restored = Optimizer.from_state_dict(json.loads(json.dumps(opt.state_dict())))
    restored.ask()
    assert engine.calls[-1]["settings"] == settings


def test_without_warm_start_the_engine_gets_no_previous_fit(engine):
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 1, "warm_start": False})
    run(opt, 3)
    assert len(engine.calls) == 2 and all(call["warm_start"] is None for call in engine.calls)
    run(Optimizer(BOX, seed=0, settings={"n_initial": 1}), 3)
    assert engine.calls[-1]["warm_start"] is not None


def test_a_format_1_state_dict_still_loads(engine):
    state = {
        "format": 1,
        "space": Space(BOX).to_dict(),
        "settings": {"maximize": True, "seed": 11, "device": "cpu", "dtype": "float32", "acquisition": "ucb",
                     "noise": "deterministic", "model": "exact", "warp": "none", "n_initial": 2},
        "counters": {"n_sobol": 2, "n_suggest": 0},
        "gp_theta": None,
        "trials": [
            {"id": 0, "params": {"x": 0.25, "y": 1.0}, "state": "complete", "value": 0.5, "error": None},
            {"id": 1, "params": {"x": 0.75, "y": -1.0}, "state": "complete", "value": 1.5, "error": None},
        ],
    }
    opt = Optimizer.from_state_dict(state)
    assert (opt.maximize, opt.seed, opt.n_initial, opt.best.value) == (True, 11, 2, 1.5)
    assert opt.settings == Settings(acquisition="ucb", noise="deterministic", model="exact", warp="none",
                                    n_initial=2, dtype=torch.float32)
    opt.ask()
    assert engine.calls[0]["X"].dtype == torch.float32 and engine.calls[0]["settings"] is opt.settings
    assert opt.state_dict()["format"] == 2 and opt.state_dict()["settings"]["acquisition"] == "ucb"


def test_from_state_dict_replaces_settings(engine):
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 1, "noise": "deterministic"})
    run(opt, 2)
    changed = Optimizer.from_state_dict(opt.state_dict(), settings={"acquisition": "log_ei"})
    assert changed.settings == opt.settings.replace(acquisition="log_ei")
    replaced = Optimizer.from_state_dict(opt.state_dict(), settings=Settings(n_raw=32))
    assert replaced.settings == Settings(n_raw=32) and replaced.n_initial == 5
    with pytest.raises(InvalidArgumentError, match="unknown settings"):
        Optimizer.from_state_dict(opt.state_dict(), settings={"acqusition": "ucb"})


def test_ask_k_gives_distinct_params_and_pending_avoids_repeats(engine):
    opt = Optimizer(BOX, seed=1, settings={"n_initial": 2})
    initial = opt.ask(2)
    assert initial[0].params != initial[1].params
    opt.tell(initial[0], 1.0)
    a, b = opt.ask(), opt.ask()
    assert a.params != b.params
    assert engine.calls[1]["pending"].shape == (1, 2, 2)  # trial 1 and trial `a` still running
    assert engine.calls[0]["seed"] != engine.calls[1]["seed"]
    assert engine.calls[0]["warm_start"] is None
    assert torch.equal(engine.calls[1]["warm_start"], torch.ones(1, engine.calls[1]["X"].shape[-1] + 1, dtype=torch.float64))


def test_failed_trials_are_recorded_and_imputed_at_worst_value(engine):
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 4})
    trials = opt.ask(4)
    assert opt.tell(trials[0], ValueError("boom")).error == "ValueError: boom"
    assert opt.tell(trials[1], float("nan")).state is TrialState.FAILED
    opt.tell(trials[2], 3.0)
    opt.tell(trials[3], -math.inf)
    assert [t.state.value for t in opt.trials] == ["failed", "failed", "complete", "failed"]
    assert opt.trials[3].error == "non-finite value -inf" and opt.trials[1].value is None
    opt.ask()
    call = engine.calls[0]
    assert call["Y"].tolist() == [[-3.0, -3.0, -3.0, -3.0]]  # the completed one, then 3 failed at the worst
    expected = opt.space.encode([trials[i].params for i in (2, 0, 1, 3)])
    assert torch.equal(call["X"][0], expected)


def test_no_completed_trial_falls_back_to_sobol(engine):
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 1})
    opt.tell(opt.ask(), RuntimeError("x"))
    more = opt.ask(3)
    assert engine.calls == [] and len({tuple(t.params.values()) for t in more}) == 3
    assert more == Optimizer(BOX, seed=0, settings={"n_initial": 4}).ask(4)[1:]


def test_fit_error_falls_back_to_sobol_with_warning(monkeypatch):
    def failing(*args, **kwargs):
        raise FitError("no Cholesky")

    monkeypatch.setattr(optimizer_module, "suggest", failing)
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 1})
    opt.tell(opt.ask(), 1.0)
    with pytest.warns(RuntimeWarning, match="GP fit failed"):
        trial = opt.ask()
    assert trial.params == Optimizer(BOX, seed=0, settings={"n_initial": 2}).ask(2)[1].params


def test_tell_never_asked_params_and_tell_many(engine, monkeypatch):
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 3})
    added = opt.tell({"y": np.float64(1.0), "x": 0.5}, 2.0)
    assert (added.id, added.state, added.params) == (0, TrialState.COMPLETE, {"x": 0.5, "y": 1.0})
    assert type(added.params["y"]) is float
    encode_calls = []
    encode = Space.encode
    monkeypatch.setattr(Space, "encode", lambda self, p: encode_calls.append(p) or encode(self, p))
    many = opt.tell_many(({"x": i / 10, "y": 0.0} for i in range(4)), np.array([1.0, 2.0, np.nan, 0.5]))
    assert len(encode_calls) == 1 and engine.calls == []
    assert [t.id for t in many] == [1, 2, 3, 4] and many[2].state is TrialState.FAILED
    assert opt.tell_many([], []) == []
    opt.ask()  # 5 trials > n_initial: straight to the engine
    assert engine.calls[0]["X"].shape == (1, 5, 2)


def test_told_params_are_stored_as_ask_would_give_them(engine):
    space = Space({"lr": Real(1e-4, 1e-1, log=True), "layers": Integer(1, 4), "k": Categorical([1, "a"])})
    opt = Optimizer(space, seed=0, settings={"n_initial": 3})
    added = opt.tell({"lr": np.float32(0.01), "layers": 2.0, "k": np.float64(1.0)}, 0.5)
    assert added.params == {"lr": float(np.float32(0.01)), "layers": 2, "k": 1}
    assert [type(v) for v in added.params.values()] == [float, int, int]


def test_best_and_trials(engine):
    for maximize, expected in [(False, 1), (True, 2)]:
        opt = Optimizer(BOX, seed=0, maximize=maximize)
        assert opt.best is None
        opt.tell_many([{"x": 0.1, "y": 0.0}, {"x": 0.2, "y": 0.0}, {"x": 0.3, "y": 0.0}, {"x": 0.4, "y": 0.0}],
                      [3.0, 1.0, 5.0, ValueError()])
        opt.tell_many([{"x": 0.5, "y": 0.0}], [math.inf])
        assert opt.best.id == expected
        trials = opt.trials
        trials.clear()
        assert len(opt.trials) == 5


def test_maximize_passes_values_unnegated(engine):
    opt = Optimizer(BOX, seed=0, maximize=True, settings={"n_initial": 0})
    opt.tell({"x": 0.5, "y": 0.0}, 2.0)
    opt.ask()
    assert engine.calls[0]["Y"].tolist() == [[2.0]]


def test_stratified_initial_design_balances_discrete_values(engine):
    space = {"c": Categorical(["a", "b", "c", "d"]), "n": Integer(1, 4), "u": Real(0, 1)}
    trials = Optimizer(space, seed=3, settings={"n_initial": 32}).ask(32)
    for name, values in [("c", "abcd"), ("n", [1, 2, 3, 4])]:
        counts = [sum(t.params[name] == v for t in trials) for v in values]
        assert counts == [8, 8, 8, 8]


def test_seed_none_draws_and_stores_a_seed():
    opt = Optimizer(BOX)
    assert isinstance(opt.seed, int) and opt.state_dict()["seed"] == opt.seed
    assert Optimizer(BOX, seed=opt.seed).ask(3) == Optimizer(BOX, seed=opt.seed).ask(3)


# ------------------------------------------------------------------ state_dict

def test_state_dict_round_trip_is_exact_in_the_facade(engine):
    opt = Optimizer(mixed_space(), seed=5, settings={"n_initial": 3})
    trials = opt.ask(3)
    opt.tell(trials[0], 1.5)
    opt.tell(trials[1], ValueError("bad"))
    opt.tell({"lr": 0.01, "layers": 2, "act": "tanh"}, 0.5)
    state = json.loads(json.dumps(opt.state_dict()))
    restored = Optimizer.from_state_dict(state)
    assert restored.trials == opt.trials and restored.state_dict() == opt.state_dict()
    assert restored.ask(2) == opt.ask(2)  # running trial 2 is pending in both
    first, second = engine.calls
    for key in ("X", "Y", "pending", "seed", "q"):
        assert torch.equal(torch.as_tensor(first[key]), torch.as_tensor(second[key]))


def test_state_dict_round_trip_continues_initial_design():
    opt = Optimizer(BOX, seed=7, settings={"n_initial": 6})
    run(opt, 2)
    restored = Optimizer.from_state_dict(json.loads(json.dumps(opt.state_dict())))
    assert restored.ask(3) == opt.ask(3)


@pytest.mark.parametrize("change, error, message", [
    (lambda s: s.pop("counters"), InvalidArgumentError, "malformed optimizer state: KeyError"),
    (lambda s: s.update(format=99), InvalidArgumentError, "unknown state format 99"),
    (lambda s: s["settings"].update(dtype="float16"), InvalidArgumentError, "dtype must be torch.float32"),
    (lambda s: s["settings"].update(acquisition=None), InvalidArgumentError, "pass settings={'acquisition': ...}"),
    (lambda s: s["trials"][0].update(state="done"), InvalidArgumentError, "'done' is not a valid TrialState"),
    (lambda s: s["trials"][0]["params"].update(x=3.0), InvalidTrialError, "parameter 'x': value 3.0"),
    (lambda s: s.update(space={"params": 1}), InvalidSpaceError, "expected a dict with a 'params' list"),
    (lambda s: s["trials"][0].update(value=None), InvalidArgumentError, "trial 0: value must be a real number"),
    (lambda s: s["trials"][0].update(value=math.nan), InvalidArgumentError, "trial 0: a complete trial with non-finite"),
    (lambda s: s["trials"][0].update(values="abc"), InvalidArgumentError, "trial 0: values must be a dict"),
    (lambda s: s["trials"][0].update(state="pruned"), InvalidArgumentError, "a PRUNED trial needs its learning curve"),
    (lambda s: s["trials"][0].update(steps=[[1, "a"]]), InvalidArgumentError, "steps must be \\(step, value\\) numbers"),
])
def test_bad_state_dict_raises(change, error, message):
    opt = Optimizer(BOX, seed=0)
    opt.tell({"x": 0.5, "y": 0.0}, 1.0)
    state = opt.state_dict()
    change(state)
    with pytest.raises(error, match=message):
        Optimizer.from_state_dict(state)


def test_custom_acquisition_is_passed_again_on_restore(engine):
    def mean(ctx):
        return lambda X: ctx.model.posterior(X).mean.sum(-1)

    opt = Optimizer(BOX, seed=0, settings={"n_initial": 1, "acquisition": mean})
    run(opt, 2)
    assert engine.calls[0]["settings"].acquisition is mean
    restored = Optimizer.from_state_dict(opt.state_dict(), settings={"acquisition": mean})
    restored.ask()
    assert engine.calls[1]["settings"].acquisition is mean


# ------------------------------------------------------------------ real engine

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_real_engine_mixed_space(device, dtype):
    opt = Optimizer(mixed_space(), seed=0, settings={"n_initial": 4, "device": device, "dtype": dtype})
    penalty = {"relu": 0.0, "tanh": 0.5, "gelu": 1.0}
    for _ in range(3):
        for trial in opt.ask(2):
            p = trial.params
            opt.tell(trial, (math.log10(p["lr"]) + 2) ** 2 + (p["layers"] - 3) ** 2 + penalty[p["act"]])
    assert len({tuple(t.params.values()) for t in opt.trials}) == 6
    for t in opt.trials:
        assert type(t.params["lr"]) is float and 1e-4 <= t.params["lr"] <= 1e-1
        assert type(t.params["layers"]) is int and 1 <= t.params["layers"] <= 4
        assert t.params["act"] in penalty and t.state is TrialState.COMPLETE


def test_real_engine_state_dict_round_trip_continues_exactly():
    opt = Optimizer(BOX, seed=0, settings={"n_initial": 4})
    run(opt, 5)  # one engine fit: both continue from the same saved hyperparameters
    restored = Optimizer.from_state_dict(json.loads(json.dumps(opt.state_dict())))
    a, b = opt.ask(2), restored.ask(2)
    assert [t.id for t in a] == [t.id for t in b] == [5, 6]
    got, expected = restored.space.encode([t.params for t in b]), opt.space.encode([t.params for t in a])
    assert torch.equal(got, expected)
