"""Tests for gpbo.trial: a handed-out trial's params cannot change the study."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

import gpbo
from gpbo.trial import Trial, TrialParams, TrialState

SPACE = {"x": gpbo.Real(0.0, 1.0), "n": gpbo.Integer(1, 8), "c": gpbo.Categorical(["a", "b"])}


def test_the_issue_scenario_pop_then_tell_then_restore():
    opt = gpbo.Optimizer(SPACE, seed=0)
    t = opt.ask()
    asked = dict(t.params)
    with pytest.raises(TypeError, match=r"read-only .*dict\(trial.params\)"):
        t.params.pop("c")
    assert t.params == asked
    opt.tell(t, 0.5)
    restored = gpbo.Optimizer.from_state_dict(opt.state_dict())
    assert restored.trials[0].params == asked and restored.trials[0].value == 0.5


@pytest.mark.parametrize("change", [
    lambda p: p.__setitem__("x", 0.99), lambda p: p.__delitem__("x"), lambda p: p.update(x=0.99),
    lambda p: p.setdefault("y", 1), lambda p: p.clear(), lambda p: p.popitem(),
    lambda p: p.__ior__({"x": 0.99}),
])
def test_every_mutation_raises_and_the_study_keeps_its_params(change, tmp_path):
    db = tmp_path / "study.db"
    opt = gpbo.Optimizer(SPACE, seed=0, storage=db)
    t = opt.ask()
    asked = dict(t.params)
    with pytest.raises(TypeError):
        change(t.params)
    with pytest.raises(TypeError):
        change(opt.trials[0].params)
    mine = dict(t.params)  # the way to get a mutable copy
    mine["x"] = 0.99
    opt.tell(t, 1.0)
    assert opt.trials[0].params == asked
    assert opt.state_dict()["trials"][0]["params"] == asked
    assert gpbo.load_study(db).trials[0].params == asked
    assert opt._log.X[0].tolist() == opt.space.encode([asked])[0].tolist()  # the GP's input
    opt.close()


def test_a_trial_copies_the_dict_it_is_built_from():
    mine = {"x": 0.5, "n": 2, "c": "a"}
    opt = gpbo.Optimizer(SPACE, seed=0)
    told = opt.tell(mine, 1.0)
    mine["x"] = 0.9
    assert told.params["x"] == 0.5 and opt.trials[0].params["x"] == 0.5
    t = Trial(id=0, params=mine)
    mine["n"] = 7
    assert t.params == {"x": 0.9, "n": 2, "c": "a"}


def test_params_stay_a_plain_dict_for_json_pickle_and_unpacking():
    t = Trial(id=3, params={"x": 0.5, "c": "a"}, state=TrialState.COMPLETE, value=1.0)
    assert isinstance(t.params, dict) and isinstance(t.params, TrialParams)
    assert json.loads(json.dumps(t.params)) == {"x": 0.5, "c": "a"}
    assert json.loads(json.dumps(t.to_dict()))["params"] == {"x": 0.5, "c": "a"}
    for back in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t), copy.copy(t)):
        assert back == t and isinstance(back.params, TrialParams)
    assert dict(t.params) == {**t.params} == t.params
    mutable = t.params.copy()
    mutable["x"] = 0.1
    assert type(mutable) is dict and type(t.params | {"y": 1}) is dict and t.params["x"] == 0.5
    assert repr(t.params) == "{'x': 0.5, 'c': 'a'}"
