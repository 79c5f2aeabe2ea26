"""gpbo.Settings: validated once, at construction, with errors that name the field."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gpbo
from gpbo.errors import InvalidArgumentError
from gpbo.settings import as_settings


def test_defaults_are_the_engine_defaults():
    s = gpbo.Settings()
    assert (s.acquisition, s.model, s.kernel, s.noise, s.warp) == ("auto", "auto", "matern52", "learned", "yeo-johnson")
    assert type(gpbo.acquisition.resolve(s.acquisition, s.outcomes)) is gpbo.acquisition.RoundRobin  # "log_aei_ucb"
    assert (s.n_raw, s.n_restarts, s.n_anchors, s.warp_fence) == (512, 10, 3, 3.0)
    assert s.device == torch.device("cpu") and s.dtype is torch.float64


@pytest.mark.parametrize(("field", "value", "match"), [
    ("acquisition", "nope", "unknown acquisition 'nope'"),
    ("acquisition", 3, "acquisition must be"),
    ("model", "gp", "model must be one of"),
    ("kernel", "matern32", "kernel must be one of"),
    ("noise", "fixed", "noise must be one of"),
    ("prior_mean", "zero", "prior_mean must be one of"),
    ("warp", "log", "warp must be one of"),
    ("solver_path", "gpu", "solver_path must be one of"),
    ("n_raw", 0, "n_raw must be an int >= 1"),
    ("n_restarts", True, "n_restarts must be an int"),
    ("n_anchors", -1, "n_anchors must be an int >= 0"),
    ("n_initial", 2.5, "n_initial must be an int"),
    ("warm_start", "yes", "warm_start must be a bool"),
    ("warp_fence", 0.0, "warp_fence must be None or a finite number > 0"),
    ("freeze_lengthscale", float("nan"), "freeze_lengthscale must be None"),
    ("device", "tpu", "device"),
    ("dtype", torch.int64, "dtype must be"),
    ("dtype", ["float32"], "dtype must be"),
    ("acquisition", gpbo.acquisition.LogEI, "got the class LogEI; pass LogEI()"),
    ("early_stopping", gpbo.early_stopping.ASHA, "got the class ASHA; pass ASHA()"),
    ("early_stopping", np.array([1, 2]), "early_stopping must be one of"),
])
def test_a_bad_field_is_named_with_its_value(field, value, match):
    with pytest.raises(InvalidArgumentError, match=match):
        gpbo.Settings(**{field: value})


def test_settings_are_frozen_and_replace_validates():
    s = gpbo.Settings()
    with pytest.raises(AttributeError):
        s.kernel = "rbf"  # type: ignore[misc]
    assert s.replace(kernel="rbf").kernel == "rbf" and s.kernel == "matern52"
    with pytest.raises(InvalidArgumentError, match="kernel must be one of"):
        s.replace(kernel="x")
    with pytest.raises(InvalidArgumentError, match="unknown settings"):
        s.replace(kernal="rbf")


def test_json_round_trip_keeps_every_field():
    s = gpbo.Settings(kernel="rbf", n_anchors=0, warp_fence=None, dtype=torch.float32, acquisition="ucb")
    back = gpbo.Settings.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s


def test_a_custom_acquisition_is_saved_as_none_and_restores_the_default():
    s = gpbo.Settings(acquisition=gpbo.acquisition.UCB(beta=3.0))
    assert s.to_dict()["acquisition"] is None
    assert gpbo.Settings.from_dict(s.to_dict()).acquisition == "auto"


def test_as_settings_takes_none_a_dict_or_settings():
    assert as_settings(None) == gpbo.Settings()
    assert as_settings({"kernel": "rbf"}).kernel == "rbf"
    s = gpbo.Settings(n_raw=64)
    assert as_settings(s) is s
    with pytest.raises(InvalidArgumentError, match="unknown settings"):
        as_settings({"kernal": "rbf"})
    with pytest.raises(InvalidArgumentError, match="settings must be"):
        as_settings("rbf")


def test_outcomes_take_a_dict_and_round_trip_through_json():
    from gpbo.outcomes import Outcomes

    s = gpbo.Settings(outcomes={"n_objectives": 2, "n_constraints": 1, "ref_point": [0, -1]})
    assert s.outcomes == Outcomes(2, 1, (0.0, -1.0)) and s.outcomes.n_outcomes == 3
    assert gpbo.Settings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert gpbo.Settings().outcomes.is_single


@pytest.mark.parametrize(("outcomes", "match"), [
    ({"n_objectives": 0}, "n_objectives must be an int >= 1"),
    ({"n_constraints": -1}, "n_constraints must be an int >= 0"),
    ({"n_objectives": 2, "ref_point": [1.0]}, "ref_point must hold 2 finite numbers"),
    ("two", "outcomes must be"),
    ({"n_obj": 2}, "outcomes: unknown field 'n_obj'"),
    ({"n_objectives": 2, "ref_point": "12"}, "ref_point must be None or a list of numbers, got '12'"),
    ({"n_objectives": 2, "ref_point": ["a", "b"]}, "ref_point must be None or a list of numbers"),
])
def test_bad_outcomes_are_named(outcomes, match):
    with pytest.raises(InvalidArgumentError, match=match):
        gpbo.Settings(outcomes=outcomes)


def test_numpy_ints_are_stored_as_ints_and_bad_dicts_are_named():
    s = gpbo.Settings(n_initial=np.int64(3), n_raw=np.int64(64))
    assert type(s.n_initial) is int and type(s.n_raw) is int and json.dumps(s.to_dict())
    for bad, match in ((None, "from_dict needs a dict of fields, got NoneType"), ("abc", "got str 'abc'"),
                       ({1: 2}, "settings names must be str, got 1")):
        with pytest.raises(InvalidArgumentError, match=match):
            gpbo.Settings.from_dict(bad)


def test_a_class_that_takes_the_context_is_an_acquisition_factory():
    class ByContext:
        def __init__(self, ctx):
            self.ctx = ctx

    assert gpbo.Settings(acquisition=ByContext).acquisition is ByContext
