"""Tests for gpbo.space (Real, Integer, Categorical, Space) and gpbo.dims.DimSpec."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpbo.space as space_module
from gpbo.dims import DimSpec
from gpbo.errors import GpboError, InvalidSpaceError, InvalidTrialError
from gpbo.space import Categorical, Integer, Real, Space

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


def make_space() -> Space:
    return Space(
        {
            "lr": Real(1e-4, 1.0, log=True),
            "n": Integer(1, 10),
            "act": Categorical(["relu", 1, None]),
            "x": Real(-1, 1),
        }
    )


VALID = {"lr": 0.01, "n": 3, "act": "relu", "x": 0.0}


# ---------------------------------------------------------------- bad spaces
BAD_SPACES = [
    (lambda: Real(1, 0), InvalidSpaceError, r"Real: low=1.0 must be < high=0.0"),
    (lambda: Real(0, 0), InvalidSpaceError, r"low=0.0 must be < high=0.0"),
    (lambda: Real(float("nan"), 1), InvalidSpaceError, r"low=nan must be a finite real"),
    (lambda: Real(0, float("inf")), InvalidSpaceError, r"high=inf must be a finite real"),
    (lambda: Real("0", 1), InvalidSpaceError, r"low='0' must be a finite real"),
    (lambda: Real(True, 2), InvalidSpaceError, r"low=True must be a finite real"),
    (lambda: Real(None, 2), InvalidSpaceError, r"low=None"),
    (lambda: Real(0, 1, log=True), InvalidSpaceError, r"log=True needs low > 0, got low=0.0"),
    (lambda: Real(-1, 1, log=True), InvalidSpaceError, r"needs low > 0, got low=-1.0"),
    (lambda: Real(0, 1, log="yes"), InvalidSpaceError, r"log='yes' must be a bool"),
    (lambda: Real(0.1, 0.9, logit="yes"), InvalidSpaceError, r"logit='yes' must be a bool"),
    (lambda: Real(0.0, 0.9, logit=True), InvalidSpaceError, r"logit=True needs 0 < low < high < 1, got low=0.0"),
    (lambda: Real(0.1, 1.0, logit=True), InvalidSpaceError, r"needs 0 < low < high < 1, got low=0.1, high=1.0"),
    (lambda: Real(0.1, 0.9, log=True, logit=True), InvalidSpaceError, r"log=True and logit=True exclude"),
    (lambda: Real(-1e308, 1e308), InvalidSpaceError, r"overflows"),
    (lambda: Integer(0.5, 3), InvalidSpaceError, r"Integer: low=0.5 must be an integer"),
    (lambda: Integer(0, 2**60), InvalidSpaceError, r"high=1152921504606846976 must be an integer"),
    (lambda: Integer(0, 10**400), InvalidSpaceError, r"high=1000.* must be an integer"),
    (lambda: Integer(3, 3), InvalidSpaceError, r"low=3 must be < high=3"),
    (lambda: Integer(0, 10, log=True), InvalidSpaceError, r"log=True needs low > 0, got low=0"),
    (lambda: Integer(False, 3), InvalidSpaceError, r"low=False"),
    (lambda: Categorical([]), InvalidSpaceError, r"choices must not be empty"),
    (lambda: Categorical("abc"), InvalidSpaceError, r"must be a list or tuple, got 'abc'"),
    (lambda: Categorical({"a", "b"}), InvalidSpaceError, r"must be a list or tuple"),
    (lambda: Categorical(["a", "a"]), InvalidSpaceError, r"duplicate choice 'a'"),
    (lambda: Categorical([1, 1.0]), InvalidSpaceError, r"duplicate choice 1"),
    (lambda: Categorical([[1], 2]), InvalidSpaceError, r"choice \[1\] \(list\) is not allowed"),
    (lambda: Categorical([float("nan")]), InvalidSpaceError, r"choice nan \(float\)"),
    (lambda: Categorical([object()]), InvalidSpaceError, r"choice <object .*> \(object\)"),
    (lambda: Space({}), InvalidSpaceError, r"non-empty mapping name -> parameter, got \{\}"),
    (lambda: Space([("a", Real(0, 1))]), InvalidSpaceError, r"mapping.*got \[\('a'"),
    (lambda: Space(None), InvalidSpaceError, r"got None"),
    (lambda: Space({"": Real(0, 1)}), InvalidSpaceError, r"non-empty strings, got ''"),
    (lambda: Space({1: Real(0, 1)}), InvalidSpaceError, r"non-empty strings, got 1"),
    (lambda: Space({"a": (0, 1)}), InvalidSpaceError, r"parameter 'a': expected Real.*\(0, 1\)"),
    (lambda: Space({"a": Real}), InvalidSpaceError, r"parameter 'a': expected Real"),
]


@pytest.mark.parametrize("factory, error, match", BAD_SPACES)
def test_invalid_space_raises(factory, error, match):
    with pytest.raises(error, match=match) as info:
        factory()
    assert isinstance(info.value, (GpboError, ValueError))


def test_space_params_are_normalised():
    assert Real(0, 1) == Real(0.0, 1.0) and isinstance(Real(0, 1).low, float)
    ints = Integer(1.0, np.int64(5))
    assert (ints.low, ints.high) == (1, 5) and type(ints.low) is int and type(ints.high) is int
    assert Real(np.float32(0.5), np.int64(2)).high == 2.0
    cat = Categorical((np.int64(3), np.str_("a"), np.True_))
    assert [type(c) for c in cat.choices] == [int, str, bool]
    assert Categorical([1, True, "1", None, 1.5]).choices == (1, True, "1", None, 1.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Real(0, 1).low = 3.0  # type: ignore[misc]


def test_categorical_equality_uses_types():
    assert Categorical([1]) != Categorical([1.0])
    assert Categorical([1]) != Categorical([True])
    assert Categorical(["a", 1]) == Categorical(("a", 1))
    assert hash(Categorical(["a", 1])) == hash(Categorical(("a", 1)))


# ---------------------------------------------------------------- bad trials
BAD_TRIALS = [
    ({"x": None}, r"missing parameters \['x'\]; expected exactly"),
    ({"y": 1.0}, r"unknown parameters \['y'\]; expected exactly \['lr', 'n', 'act', 'x'\]"),
    ({"lr": "0.1"}, r"parameter 'lr': value '0.1' \(str\) is not a finite real number"),
    ({"lr": True}, r"parameter 'lr': value True \(bool\)"),
    ({"lr": np.bool_(True)}, r"parameter 'lr': value (np\.)?True_? \(bool_?\)"),
    ({"lr": float("nan")}, r"parameter 'lr': value nan"),
    ({"lr": float("inf")}, r"parameter 'lr': value inf"),
    ({"lr": None}, r"parameter 'lr': value None \(NoneType\)"),
    ({"lr": 2.0}, r"'lr': value 2.0 is not a finite real number in \[0.0001, 1.0\]"),
    ({"lr": 0}, r"'lr': value 0 is not"),
    ({"x": -1.5}, r"'x': value -1.5 is not a finite real number in \[-1.0, 1.0\]"),
    ({"n": 2.5}, r"parameter 'n': value 2.5 is not an integer in \[1, 10\]"),
    ({"n": 11}, r"parameter 'n': value 11 is not an integer in \[1, 10\]"),
    ({"n": 0}, r"parameter 'n': value 0 is not"),
    ({"n": True}, r"parameter 'n': value True \(bool\) is not an integer"),
    ({"n": "3"}, r"parameter 'n': value '3' \(str\)"),
    ({"n": 10**400}, r"parameter 'n': value 1000.*\(int\)"),
    ({"act": True}, r"'act': value True \(bool\) is not one of the choices \['relu', 1, None\]"),
    ({"act": "gelu"}, r"'act': value 'gelu' \(str\) is not one of the choices"),
    ({"act": "1"}, r"'act': value '1' \(str\)"),
    ({"act": [1]}, r"'act': value \[1\] \(list\)"),
]


@pytest.mark.parametrize("change, match", BAD_TRIALS)
def test_invalid_trial_raises(change, match):
    trial = {**VALID, **change}
    if change.get("x", 0) is None:
        del trial["x"]
    space = make_space()
    with pytest.raises(InvalidTrialError, match=match):
        space.encode(trial)
    with pytest.raises(InvalidTrialError, match=match) as info:
        space.encode([VALID, trial])
    assert str(info.value).startswith("trial 1: ")


@pytest.mark.parametrize(
    "params, match",
    [
        ("abc", r"expected a dict or a list of dicts, got 'abc'"),
        (5, r"got 5"),
        ({VALID["act"]}, r"got \{'relu'\}"),
        ([VALID, 3], r"trial 1: expected a dict name -> value, got 3"),
    ],
)
def test_encode_rejects_non_dicts(params, match):
    with pytest.raises(InvalidTrialError, match=match):
        make_space().encode(params)


def test_encode_accepts_numpy_scalars_and_integral_floats():
    space = make_space()
    ref = space.encode(VALID)
    trial = {"lr": np.float32(0.01), "n": np.int32(3), "act": np.str_("relu"), "x": np.int64(0)}
    assert torch.allclose(space.encode(trial), ref, rtol=1e-7)
    assert torch.equal(space.encode({**VALID, "n": 3.0}), ref)
    assert torch.equal(space.encode({**VALID, "act": 1}), space.encode({**VALID, "act": 1.0}))


def test_encode_shapes_and_dtype():
    space = make_space()
    one = space.encode(VALID)
    many = space.encode([VALID, VALID, VALID])
    assert one.shape == (4,) and many.shape == (3, 4) and space.encode([]).shape == (0, 4)
    for t in (one, many):
        assert t.dtype == torch.float64 and t.device.type == "cpu"
    assert torch.equal(many[1], one)


def test_real_bounds_tolerance_and_exact_bounds():
    space = Space({"a": Real(0.1, 0.3), "b": Real(1e-5, 1e-1, log=True)})
    assert space.encode({"a": 0.1 + 0.2, "b": 1e-1}).tolist() == [1.0, 1.0]  # 0.30000000000000004
    assert space.encode({"a": 0.1, "b": 1e-5}).tolist() == [0.0, 0.0]
    with pytest.raises(InvalidTrialError, match="value 0.300000001"):
        space.encode({"a": 0.300000001, "b": 1e-3})
    assert space.decode(torch.tensor([0.0, 0.0])) == {"a": 0.1, "b": 1e-5}
    assert space.decode(torch.tensor([1.0, 1.0])) == {"a": 0.3, "b": 1e-1}


def test_logit_reals_encode_on_the_logit_scale():
    space = Space({"p": Real(0.01, 0.99, logit=True)})
    assert space.encode({"p": 0.5}).item() == pytest.approx(0.5)  # logit is odd about 1/2
    u = (math.log(0.9 / 0.1) - math.log(0.01 / 0.99)) / (2 * math.log(0.99 / 0.01))
    assert space.encode({"p": 0.9}).item() == pytest.approx(u)
    assert space.encode({"p": 0.01}).tolist() == [0.0] and space.encode({"p": 0.99}).tolist() == [1.0]
    U = torch.linspace(0, 1, 11, dtype=torch.float64).unsqueeze(-1)
    values = [d["p"] for d in space.decode(U)]
    assert values[0] == 0.01 and values[-1] == 0.99 and values[5] == pytest.approx(0.5)
    assert all(a < b for a, b in zip(values, values[1:]))  # increasing
    torch.testing.assert_close(space.encode([{"p": v} for v in values]), U)  # round trip
    assert Space.from_dict(space.to_dict()) == space
    assert repr(space.params["p"]) == "Real(low=0.01, high=0.99, logit=True)"


# -------------------------------------------------------------------- decode
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_decode_any_dtype_and_device(dtype, device):
    space = make_space()
    X = space.encode([VALID, {"lr": 1.0, "n": 10, "act": None, "x": -1.0}])
    out = space.decode(X.to(dtype=dtype, device=device))
    assert out[1] == {"lr": 1.0, "n": 10, "act": None, "x": -1.0}
    assert {k: out[0][k] for k in ("n", "act")} == {"n": 3, "act": "relu"}
    assert out[0]["lr"] == pytest.approx(0.01, rel=1e-5) and abs(out[0]["x"]) < 1e-6
    assert [type(v) for v in out[0].values()] == [float, int, str, float]


def test_decode_numpy_clamps_and_shapes():
    space = make_space()
    out = space.decode(np.array([[-3.0, 7.0, 0.49, 2.0], [0.5, 0.5, 0.51, 0.5]]))
    assert out[0] == {"lr": 1e-4, "n": 10, "act": 1, "x": 1.0}
    assert out[1]["act"] == 1 and out[1]["n"] in (5, 6)
    assert isinstance(space.decode(np.zeros(4)), dict)
    assert space.decode([0.0, 0.0, 0.0, 0.0]) == space.decode(torch.zeros(4))
    assert space.decode([[0.0] * 4]) == [space.decode(torch.zeros(4))]
    assert space.decode(torch.zeros(0, 4)) == []
    assert space.decode(torch.zeros(4, dtype=torch.int64))["n"] == 1


def test_decode_returns_original_choice_objects():
    token = "".join(["re", "lu"])  # a str object not interned with any literal
    cat = Categorical([token, 1, True, 1.5, None])
    space = Space({"c": cat})
    decoded = [space.decode(torch.tensor([i / 4]))["c"] for i in range(5)]
    assert decoded[0] is token
    assert [type(v) for v in decoded] == [str, int, bool, float, type(None)]


@pytest.mark.parametrize(
    "X, match",
    [
        (torch.tensor([0.5, float("nan"), 0.5, 0.5]), r"X\[0, 1\] \(parameter 'n'\) is nan"),
        (torch.tensor([[0.5] * 4, [0.5, 0.5, 0.5, float("inf")]]), r"X\[1, 3\].*is inf"),
        (torch.zeros(3), r"shape \(4,\) or \(n, 4\), got dtype torch.float32 and shape \(3,\)"),
        (torch.zeros(2, 2, 4), r"got dtype torch.float32 and shape \(2, 2, 4\)"),
        (torch.zeros(4, dtype=torch.complex64), r"must be real"),
        ("abcd", r"cannot read X as numbers"),
        (np.array(["a", "b", "c", "d"]), r"cannot read X as numbers"),
    ],
)
def test_decode_rejects_bad_input(X, match):
    with pytest.raises(InvalidTrialError, match=match):
        make_space().decode(X)


def test_decode_does_not_modify_input_or_keep_grad():
    X = torch.full((2, 4), 1.5, requires_grad=True)
    make_space().decode(X)
    assert bool((X == 1.5).all())


# ---------------------------------------------------------------- round trip
def test_round_trip_exact_for_integers_and_categoricals():
    space = Space(
        {"n": Integer(1, 1000, log=True), "m": Integer(-50, 50), "c": Categorical(["a", "b"])}
    )
    trials = [{"n": n, "m": n % 101 - 50, "c": "ab"[n % 2]} for n in range(1, 1001)]
    assert space.decode(space.encode(trials)) == trials


def test_log_integers_round_in_value_space():
    space = Space({"n": Integer(1, 100, log=True)})
    # Halfway between 1 and 2 in value space (1.5) is at u = log(1.5)/log(100), not at u(1)+u(2)/2.
    u = math.log(1.5) / math.log(100)
    assert space.decode(torch.tensor([u - 1e-9], dtype=torch.float64))["n"] == 1
    assert space.decode(torch.tensor([u + 1e-9], dtype=torch.float64))["n"] == 2


def test_huge_integer_has_no_levels_but_still_rounds(monkeypatch):
    monkeypatch.setattr(space_module, "MAX_INTEGER_LEVELS", 10)
    space = Space({"small": Integer(0, 9), "big": Integer(0, 10), "c": Categorical([1, 2, 3])})
    dims = space.dims
    assert dims.discrete_dims == (0, 2) and dims.categorical == (2,)
    assert dims.levels[0] == tuple(i / 9 for i in range(10))
    assert dims.levels[2] == (0.0, 0.5, 1.0)
    assert space.decode(torch.tensor([0.5, 0.47, 0.5]))["big"] == 5


def test_dims_levels_match_encoding():
    space = Space({"x": Real(0, 1), "n": Integer(2, 64, log=True), "c": Categorical(["k"])})
    dims = space.dims
    assert dims == DimSpec(3, categorical=(2,), levels={1: dims.levels[1], 2: (0.0,)})
    encoded = space.encode([{"x": 0.5, "n": n, "c": "k"} for n in range(2, 65)])
    assert encoded[:, 1].tolist() == list(dims.levels[1])
    assert space.dims is dims  # cached


# ----------------------------------------------------- equality, repr, serialisation
def test_equality_repr_and_serialisation():
    space = Space(
        {"lr": Real(1e-5, 1e-1, log=True), "n": Integer(1, 8), "c": Categorical([1, True])}
    )
    assert space == make_space_from(space) and hash(space) == hash(make_space_from(space))
    assert space != Space(dict(reversed(list(space.params.items()))))
    assert space != Space({**space.params, "c": Categorical([1.0, True])})
    assert eval(repr(space), vars(space_module)) == space  # noqa: S307
    assert "Real(low=1e-05, high=0.1, log=True)" in repr(space)
    assert len(space) == 3 and space.dim == 3 and space.names == ("lr", "n", "c")
    with pytest.raises(TypeError):
        space.params["x"] = Real(0, 1)  # type: ignore[index]
    assert pickle.loads(pickle.dumps(space)) == space and copy.deepcopy(space) == space


def make_space_from(space: Space) -> Space:
    return Space.from_dict(json.loads(json.dumps(space.to_dict())))


def test_from_dict_keeps_types_after_json():
    space = Space({"c": Categorical([1, 1.0 + 0.5, True, None, "a"]), "n": Integer(0, 3)})
    loaded = make_space_from(space)
    assert [type(c) for c in loaded.params["c"].choices] == [int, float, bool, type(None), str]


@pytest.mark.parametrize(
    "data, match",
    [
        ([], r"expected a dict with a 'params' list, got \[\]"),
        ({"params": {}}, r"'params' list"),
        ({"params": []}, r"non-empty mapping"),
        ({"params": [5]}, r"bad or repeated parameter name in 5"),
        ({"params": [{"type": "real", "low": 0, "high": 1}]}, r"bad or repeated parameter name"),
        ({"params": [{"name": "a", "type": "bogus"}]}, r"'a': 'type' must be in .*'bogus'"),
        ({"params": [{"name": "a", "type": "real", "low": 0}]}, r"parameter 'a': .*high"),
        ({"params": [{"name": "a", "type": "real", "low": 0, "high": 1, "x": 1}]}, r"'a': .*'x'"),
        ({"params": [{"name": "a", "type": "integer", "low": 2, "high": 1}]}, r"'a': Integer: low"),
        (
            {"params": [{"name": "a", "type": "categorical", "choices": [1]}] * 2},
            r"repeated parameter name",
        ),
    ],
)
def test_from_dict_rejects_bad_input(data, match):
    with pytest.raises(InvalidSpaceError, match=match):
        Space.from_dict(data)


# ---------------------------------------------------------------- properties
def _kind_key(choice):
    """Choices are duplicates when equal and of the same kind (bool, number, str, None)."""
    if isinstance(choice, bool):
        return ("bool", choice)
    return ("number" if isinstance(choice, (int, float)) else type(choice).__name__, choice)


choice_values = st.one_of(
    st.text(max_size=4), st.integers(-5, 5), st.floats(-10, 10), st.booleans(), st.none()
)


@st.composite
def params(draw):
    kind = draw(st.sampled_from(["real", "real_log", "int", "int_log", "cat"]))
    if kind == "real":
        low = draw(st.floats(-1e6, 1e6))
        return Real(low, low + draw(st.floats(1e-3, 1e6)))
    if kind == "real_log":
        low = draw(st.floats(1e-8, 1e3))
        return Real(low, low * draw(st.floats(1.001, 1e8)), log=True)
    if kind in ("int", "int_log"):
        log = kind == "int_log"
        low = draw(st.integers(1, 1000) if log else st.integers(-10**6, 10**6))
        return Integer(low, low + draw(st.integers(1, 5000)), log=log)
    return Categorical(draw(st.lists(choice_values, min_size=1, max_size=6, unique_by=_kind_key)))


spaces = st.dictionaries(st.text(min_size=1, max_size=3), params(), min_size=1, max_size=5).map(
    Space
)


@st.composite
def space_and_points(draw):
    space = draw(spaces)
    coords = st.floats(-0.5, 1.5) | st.floats(0, 1) | st.sampled_from([0.0, 1.0])
    rows = st.lists(coords, min_size=space.dim, max_size=space.dim)
    return space, torch.tensor(draw(st.lists(rows, min_size=1, max_size=4)), dtype=torch.float64)


def _assert_same(space: Space, a: dict, b: dict) -> None:
    for name, p in space.params.items():
        if isinstance(p, Real):
            assert a[name] == pytest.approx(b[name], rel=1e-12, abs=1e-12 * abs(p.high - p.low))
        else:
            assert a[name] == b[name] and type(a[name]) is type(b[name])


def _assert_in_space(space: Space, trial: dict) -> None:
    for name, p in space.params.items():
        value = trial[name]
        if isinstance(p, Categorical):
            assert any(value is c for c in p.choices)
        else:
            assert type(value) is (float if isinstance(p, Real) else int)
            assert p.low <= value <= p.high


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(space_and_points())
def test_decode_encode_decode_is_stable(case):
    space, U = case
    decoded = space.decode(U)
    for trial in decoded:
        _assert_in_space(space, trial)
    E = space.encode(decoded)
    assert E.shape == U.shape and bool(((E >= 0) & (E <= 1)).all())
    for a, b in zip(space.decode(E), decoded):
        _assert_same(space, a, b)
    # Decoding a float32 copy gives values in bounds as well.
    for trial in space.decode(U.float()):
        _assert_in_space(space, trial)


@SETTINGS
@given(space_and_points())
def test_snap_to_levels_is_consistent_with_decode(case):
    space, U = case
    snapped = space.dims.snap(U.clamp(0, 1))
    encoded = space.encode(space.decode(snapped))
    for j in space.dims.discrete_dims:
        assert torch.equal(encoded[:, j], snapped[:, j])


# ------------------------------------------------------------------- DimSpec
BAD_DIMSPECS = [
    (dict(d=0), r"DimSpec.d must be >= 1, got 0"),
    (dict(d=True), r"DimSpec.d must be an integer, got bool True"),
    (dict(d=1.5), r"DimSpec.d must be an integer, got 1.5"),
    (dict(d=2, categorical=(2,)), r"categorical dim = 2 is out of range \[0, 2\)"),
    (dict(d=2, categorical=(0, 0), levels={0: (0.0, 1.0)}), r"categorical dims repeat: \[0, 0\]"),
    (dict(d=2, categorical=5), r"categorical must be a sequence of dim indices, got 5"),
    (dict(d=2, categorical=(1,)), r"categorical dims \[1\] have no levels"),
    (dict(d=2, levels={0: (0.5, 0.2)}), r"levels\[0\] must be strictly increasing, got 0.5 foll"),
    (dict(d=2, levels={0: (0.2, 0.2)}), r"strictly increasing, got 0.2 followed by 0.2"),
    (dict(d=2, levels={1: (0.0, 1.5)}), r"levels\[1\] contains 1.5; expected finite values in"),
    (dict(d=2, levels={1: (float("nan"),)}), r"levels\[1\] contains nan"),
    (dict(d=2, levels={1: ()}), r"levels\[1\] must not be empty"),
    (dict(d=2, levels={1: "ab"}), r"levels\[1\] must be a 1-D sequence of numbers, got .ab."),
    (dict(d=2, levels={2: (0.0,)}), r"levels dim = 2 is out of range"),
    (dict(d=2, levels=[(0, (0.0,))]), r"levels must be a mapping dim -> values, got list"),
]


@pytest.mark.parametrize("kwargs, match", BAD_DIMSPECS)
def test_invalid_dimspec_raises(kwargs, match):
    with pytest.raises(InvalidSpaceError, match=match):
        DimSpec(**kwargs)


def test_dimspec_is_hashable_and_immutable():
    a = DimSpec(3, categorical=[2], levels={2: [0, 0.5, 1], 0: np.array([0.0, 1.0])})
    b = DimSpec(3, categorical=(2,), levels={0: (0.0, 1.0), 2: (0.0, 0.5, 1.0)})
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert a.categorical == (2,) and a.discrete_dims == (0, 2) and a.continuous_dims == (1,)
    assert dict(a.levels) == {0: (0.0, 1.0), 2: (0.0, 0.5, 1.0)} and a.levels[2] == (0.0, 0.5, 1.0)
    assert a != DimSpec(3, categorical=(2,), levels={2: (0.0, 0.5, 1.0)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.d = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.levels[1] = (0.0,)  # type: ignore[index]
    a.snap(torch.zeros(3))  # fills the tensor cache, which must not leak into pickles
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a
    assert "levels={0: (0.0, 1.0)" in repr(a)
    assert DimSpec.continuous(4) == DimSpec(4) and DimSpec(4).is_continuous


@pytest.mark.parametrize("device", DEVICES)
def test_dimspec_masks(device):
    spec = DimSpec(4, categorical=(3,), levels={1: (0.0, 1.0), 3: (0.0, 1.0)})
    cont, cat = spec.continuous_mask(device), spec.categorical_mask(device)
    assert cont.dtype == torch.bool and cont.device.type == device
    assert cont.tolist() == [True, False, True, False]
    assert cat.tolist() == [False, False, False, True]
    assert DimSpec.continuous(2).continuous_mask().tolist() == [True, True]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_snap_matches_brute_force(dtype, device):
    levels = {0: tuple(i / 9 for i in range(10)), 2: (0.0, 0.1, 0.7, 1.0), 3: (0.25,)}
    spec = DimSpec(4, categorical=(2,), levels=levels)
    g = torch.Generator().manual_seed(0)
    X = (torch.rand(5, 3, 2, 4, generator=g, dtype=torch.float64) * 1.4 - 0.2).to(dtype=dtype)
    X = X.to(device)
    X_before = X.clone()
    out = spec.snap(X)
    assert out.shape == X.shape and out.dtype == dtype and out.device == X.device
    assert torch.equal(X, X_before)  # input untouched
    assert torch.equal(out[..., 1], X[..., 1])  # continuous dim untouched
    for j, lv in levels.items():
        lv_t = torch.tensor(lv, dtype=dtype, device=device)
        nearest = lv_t[(X[..., j, None] - lv_t).abs().argmin(-1)]
        assert torch.equal(out[..., j], nearest)


def test_snap_ties_nan_and_bad_shape():
    spec = DimSpec(2, levels={0: (0.0, 0.5, 1.0)})
    X = torch.tensor([[0.25, 0.3], [0.75, 0.3], [float("nan"), 0.3], [-1.0, 2.0]])
    out = spec.snap(X)
    assert out[:2, 0].tolist() == [0.0, 0.5]  # ties go to the lower level
    assert math.isnan(out[2, 0]) and out[3].tolist() == [0.0, 2.0]
    assert spec.snap(torch.tensor([0.9, 0.1])).tolist() == pytest.approx([1.0, 0.1])
    with pytest.raises(InvalidTrialError, match=r"shape \(\.\.\., 2\), got \(2, 3\)"):
        spec.snap(torch.zeros(2, 3))
