"""Hypothesis bad-input campaign over spaces, params, values and engine tensors.

Every call either returns suggestions inside the space or raises a
`gpbo.errors` exception; nothing else may escape, and the stored study is
never corrupted. The default run uses a few examples per property; the
slow-marked copies run the full campaign (2,150 cases in all).
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpbo.engine import suggest
from gpbo.errors import GpboError
from gpbo.optimizer import Optimizer
from gpbo.space import Categorical, Integer, Real, Space
from gpbo.storage import load_study
from gpbo.trial import Trial

SPACE = Space({"x": Real(-1.0, 1.0), "n": Integer(1, 4, log=True), "c": Categorical(["a", "b", 0, None])})
QUICK = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
FULL = {"facade": 900, "space": 650, "engine": 600}  # examples per property with -m slow

scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20), st.booleans(),
    st.sampled_from([10**400, -(10**400)]),  # beyond float's range
    st.none(), st.text(max_size=3), st.sampled_from(["a", "b", 0, None, 1.0, 4, 2.5]),
)
values = st.one_of(
    scalars, st.lists(st.floats(), max_size=2), st.floats().map(torch.tensor),
    st.floats().map(np.float32), st.just(torch.ones(2)), st.just(ValueError("boom")), st.just(1 + 2j),
)
params = st.dictionaries(st.sampled_from(["x", "n", "c", "zz"]), scalars, max_size=4)
valid_params = st.fixed_dictionaries({
    "x": st.floats(-1.0, 1.0), "n": st.integers(1, 4), "c": st.sampled_from(["a", "b", 0, None]),
})
trial_refs = st.one_of(st.integers(-2, 12), st.booleans(), st.text(max_size=2), st.none(), params, valid_params,
                       st.just("last"))
operations = st.lists(st.one_of(
    st.tuples(st.just("ask"), st.one_of(st.none(), st.integers(-1, 3), st.floats(), st.text(max_size=1))),
    st.tuples(st.just("tell"), trial_refs, values),
    st.tuples(st.just("tell_many"), st.lists(st.one_of(params, valid_params), max_size=3), st.lists(values, max_size=3)),
    st.tuples(st.just("close")),
    st.tuples(st.just("reopen")),
), max_size=10)


def apply(opt: Optimizer, op: tuple, last: Trial | None, path: str) -> tuple[Optimizer, Trial | None]:
    """Runs one operation; returns the optimizer to continue with and the last asked trial."""
    kind = op[0]
    if kind == "ask":
        asked = opt.ask(op[1])
        trials = [asked] if isinstance(asked, Trial) else asked
        for trial in trials:
            SPACE.encode(trial.params)  # inside the space
        return opt, trials[-1]
    if kind == "tell":
        ref = last if op[1] == "last" else op[1]
        opt.tell(ref if ref is not None or last is None else last, op[2])
    elif kind == "tell_many":
        opt.tell_many(op[1], op[2])
    elif kind == "close":
        opt.close()
    else:
        opt.close()
        opt = Optimizer(SPACE, storage=path, settings={"n_initial": 2})
    return opt, last


def check_stored(path: str, opt: Optimizer) -> None:
    """The file is sound and holds exactly the optimizer's trials."""
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = load_study(path).trials
    assert stored == opt.trials and [t.id for t in stored] == list(range(len(stored)))
    for trial in stored:
        SPACE.encode(trial.params)
        assert trial.value is None or math.isfinite(trial.value)


def facade_campaign(ops: list, n_initial: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/study.db"
        opt, last = Optimizer(SPACE, storage=path, seed=0, settings={"n_initial": n_initial}), None
        for op in ops:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a FitError falls back to Sobol
                    opt, last = apply(opt, op, last, path)
            except GpboError as exc:
                assert str(exc)
        check_stored(path, opt)
        opt.close()


bounds = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20),
                   st.booleans(), st.none(), st.text(max_size=2), st.floats(-10, 10))
param_args = st.one_of(
    st.tuples(st.sampled_from([Real, Integer]), bounds, bounds, st.one_of(st.booleans(), st.none(), st.integers())),
    st.tuples(st.just(Categorical), st.one_of(st.lists(scalars, max_size=4), st.text(max_size=2), st.none())),
)
space_args = st.one_of(st.dictionaries(st.one_of(st.text(max_size=2), st.integers()), param_args, max_size=3),
                       st.lists(param_args, max_size=2), st.none())


def build(args: object) -> object:
    """A space from generated arguments (raises like user code would)."""
    if not isinstance(args, dict):
        return Space(args)
    made = {}
    for name, (cls, *rest) in args.items():
        made[name] = Categorical(rest[0]) if cls is Categorical else cls(rest[0], rest[1], log=rest[2])
    return Space(made)


def space_campaign(args: object, told: list) -> None:
    try:
        space = build(args)
        opt = Optimizer(space, seed=0, settings={"n_initial": 1})
        opt.tell_many([space.decode(torch.full((space.dim,), 0.5))] * len(told), told)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            trials = opt.ask(2)
    except GpboError as exc:
        assert str(exc)
        return
    for trial in trials:
        space.encode(trial.params)


tensors = st.one_of(
    st.tuples(st.integers(0, 2), st.integers(0, 4), st.integers(0, 3)),
    st.tuples(st.integers(1, 2), st.integers(1, 4)),
    st.just(None), st.just("X"),
)


def make(shape: object, dtype: torch.dtype, fill: float | None, scale: float) -> object:
    if not isinstance(shape, tuple):
        return shape
    t = torch.rand(*shape, dtype=torch.float64) * scale
    if fill is not None and t.numel():
        t.view(-1)[0] = fill
    return t.to(dtype)


def engine_campaign(x: tuple, y: tuple, pending: tuple, q: object, acquisition: object) -> None:
    X, Y, P = make(*x), make(*y), make(*pending)
    try:
        result = suggest(X, Y, pending=P, q=q, settings={"acquisition": acquisition, "n_raw": 32, "n_restarts": 2})
    except GpboError as exc:
        assert str(exc)
        return
    assert result.candidates.shape == (X.shape[0], q, X.shape[-1])
    assert bool(((result.candidates >= 0) & (result.candidates <= 1)).all())


tensor_args = st.tuples(
    tensors, st.sampled_from([torch.float64, torch.float32, torch.float16, torch.int64]),
    st.one_of(st.none(), st.sampled_from([math.nan, math.inf, -0.5, 1.5])), st.sampled_from([1.0, 1e-300, 1e300]),
)
engine_args = (
    tensor_args, tensor_args, tensor_args, st.one_of(st.integers(-1, 3), st.floats(), st.none()),
    st.sampled_from(["log_ei", "ucb", "qlog_nei", "thompson", "nope", 3, None]),
)
facade_args = (operations, st.integers(0, 4))


def campaign(fn, strategies: tuple, examples: int, full: bool = False):
    """``fn`` as a hypothesis test with ``examples`` examples (derandomized unless ``full``)."""
    return settings(QUICK, max_examples=examples, derandomize=not full)(given(*strategies)(fn))


test_facade_campaign = campaign(facade_campaign, facade_args, 12)
test_space_campaign = campaign(space_campaign, (space_args, st.lists(values, max_size=3)), 20)
test_engine_campaign = campaign(engine_campaign, engine_args, 6)
test_facade_campaign_full = pytest.mark.slow(campaign(facade_campaign, facade_args, FULL["facade"], full=True))
test_space_campaign_full = pytest.mark.slow(
    campaign(space_campaign, (space_args, st.lists(values, max_size=3)), FULL["space"], full=True))
test_engine_campaign_full = pytest.mark.slow(campaign(engine_campaign, engine_args, FULL["engine"], full=True))


ENGINE_GAPS = [
    pytest.param(dict(device="meta"), id="X-on-meta-device"),
    pytest.param(dict(settings={"n_raw": 0}), id="n_raw-0"),
    pytest.param(dict(settings={"n_restarts": 0}), id="n_restarts-0"),
    pytest.param(dict(seed=2**70), id="seed-beyond-int64"),
]


@pytest.mark.parametrize("change", ENGINE_GAPS)
def test_engine_edge_arguments_raise_gpbo_errors(change):
    X, Y = torch.rand(1, 5, 2, dtype=torch.float64), torch.rand(1, 5, dtype=torch.float64)
    device = change.pop("device", "cpu")
    with pytest.raises(GpboError):
        suggest(X.to(device), Y.to(device), **change)
