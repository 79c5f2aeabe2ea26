"""GPBOSearch: the Searcher contract called directly, and a real tune.Tuner run."""

from __future__ import annotations

import math
import re

import pytest

tune = pytest.importorskip("ray.tune")

from ray.tune.search import ConcurrencyLimiter, Searcher

from gpbo.errors import InvalidArgumentError, InvalidSpaceError
from gpbo.integrations.ray_tune import GPBOSearch, convert_search_space
from gpbo.space import Categorical, Integer, Real
from gpbo.trial import TrialState

PARAM_SPACE = {
    "lr": tune.loguniform(1e-4, 1e-1),
    "model": {"width": tune.randint(16, 65), "act": tune.choice(["relu", ("gelu", 1)])},
    "depth": tune.lograndint(1, 9),
    "epochs": 3,
}


def loss(config: dict) -> float:
    return (math.log10(config["lr"]) + 2) ** 2 + (config["model"]["width"] - 40) ** 2 / 100


def test_convert_search_space_maps_every_domain():
    space, choices = convert_search_space(PARAM_SPACE)
    assert dict(space.params) == {
        "lr": Real(1e-4, 1e-1, log=True),
        "model/width": Integer(16, 64),  # Ray's upper bound is exclusive
        "model/act": Categorical([0, 1]),
        "depth": Integer(1, 8, log=True),
    }
    assert choices == {"model/act": ["relu", ("gelu", 1)]}


def test_suggest_and_complete_drive_the_optimizer():
    search = GPBOSearch(PARAM_SPACE, metric="loss", mode="min", seed=0, settings={"n_initial": 3})
    assert isinstance(search, Searcher)
    for i in range(6):
        config = search.suggest(f"t{i}")
        assert set(config) == {"lr", "model", "depth"} and set(config["model"]) == {"width", "act"}
        assert 16 <= config["model"]["width"] <= 64 and config["model"]["act"] in (["relu", ("gelu", 1)])
        search.on_trial_complete(f"t{i}", {"loss": loss(config)})
    trials = search._opt.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert trials[4].value == pytest.approx(loss(search.suggest("t6") and {
        "lr": trials[4].params["lr"], "model": {"width": trials[4].params["model/width"]}}))


def test_error_and_bad_results_are_failed_trials_and_unknown_ids_are_ignored():
    search = GPBOSearch(PARAM_SPACE, metric="loss", mode="max", seed=0)
    for i in range(4):
        search.suggest(f"t{i}")
    search.on_trial_complete("t0", error=True)
    search.on_trial_complete("t1", {"other": 1.0})
    search.on_trial_complete("t2", {"loss": "nan-ish"})
    search.on_trial_complete("t3", {"loss": 2.0})
    search.on_trial_complete("unknown", {"loss": 1.0})
    trials = search._opt.trials
    assert [t.state for t in trials] == [TrialState.FAILED] * 3 + [TrialState.COMPLETE]
    assert "errored" in trials[0].error and "reported no 'loss'" in trials[1].error
    assert search._opt.maximize


def test_set_search_properties_takes_tuner_settings_once():
    search = GPBOSearch(seed=0)
    assert search.set_search_properties("acc", "max", PARAM_SPACE)
    assert (search.metric, search.mode) == ("acc", "max")
    assert not search.set_search_properties("acc", "max", PARAM_SPACE)  # space already set
    gpbo_space = GPBOSearch({"x": Real(0.0, 1.0)})
    assert gpbo_space.set_search_properties("loss", "min", {}) and gpbo_space.suggest("a").keys() == {"x"}


def test_save_restore_continues_with_the_same_suggestions(tmp_path):
    search = GPBOSearch(PARAM_SPACE, metric="loss", mode="min", seed=1, settings={"n_initial": 2})
    for i in range(3):
        search.on_trial_complete(f"t{i}", {"loss": loss(search.suggest(f"t{i}"))})
    running = search.suggest("t3")
    search.save(str(tmp_path / "searcher.pkl"))
    restored = GPBOSearch()
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.on_trial_complete("t3", {"loss": loss(running)})
    search.on_trial_complete("t3", {"loss": loss(running)})
    assert restored.suggest("t4") == search.suggest("t4")
    assert (restored.metric, restored.mode) == ("loss", "min")


def test_concurrency_limiter_caps_running_trials():
    limited = ConcurrencyLimiter(GPBOSearch(PARAM_SPACE, metric="loss", mode="min", seed=0), max_concurrent=2)
    assert limited.suggest("a") is not None and limited.suggest("b") is not None
    assert limited.suggest("c") is None
    limited.on_trial_complete("a", {"loss": 1.0})
    assert limited.suggest("c") is not None


def test_several_metrics_and_constraints_make_a_multi_objective_study():
    search = GPBOSearch(PARAM_SPACE, metric=["loss", "latency"], mode=["min", "max"], seed=0,
                        constraints={"memory": ("<=", 4.0)}, settings={"n_initial": 10})
    assert search.set_search_properties("other", "min", {}) and search.metric == ["loss", "latency"]  # lists stay
    results = [{"loss": 1.0, "latency": 2.0, "memory": 1.0}, {"loss": 0.5, "latency": 1.0, "memory": 8.0},
               {"loss": 2.0, "latency": 3.0, "memory": 2.0}, {"loss": 1.0}]
    for i, result in enumerate(results):
        search.suggest(f"t{i}")
        search.on_trial_complete(f"t{i}", result)
    opt = search._opt
    assert opt.metrics.arguments() == {"objectives": {"loss": "minimize", "latency": "maximize"},
                                       "constraints": {"memory": ("<=", 4.0)}}
    assert [dict(t.values) for t in opt.trials[:3]] == results[:3]
    assert "reported no 'latency'" in opt.trials[3].error
    assert [t.id for t in opt.pareto_front] == [0, 2]  # 1 is infeasible
    restored = GPBOSearch()
    restored.set_state(search.get_state())
    assert restored._opt.metrics == opt.metrics and restored.suggest("t4") == search.suggest("t4")


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: GPBOSearch(mode="minimum"), InvalidArgumentError, "mode must be 'min' or 'max', got 'minimum'"),
    (lambda: GPBOSearch({"x": tune.grid_search([1, 2])}), InvalidSpaceError, "cannot tune grid_search"),
    (lambda: GPBOSearch({"x": tune.qrandint(0, 10, 2)}), InvalidSpaceError, "does not support parameter 'x'"),
    (lambda: GPBOSearch({"x": 3}), InvalidSpaceError, "has no tunable parameter"),
    (lambda: GPBOSearch([1]), InvalidSpaceError, "space must be a dict or a gpbo.Space, got list"),
    (lambda: GPBOSearch(PARAM_SPACE).suggest("a"), InvalidArgumentError, "GPBOSearch has no metric, mode"),
    (lambda: GPBOSearch(metric=["a", "b"], mode="min"), InvalidArgumentError,
     "several metrics need a list of modes of the same length, got metric=['a', 'b'], mode='min'"),
    (lambda: GPBOSearch(metric=["a"], mode=["min", "lowest"]), InvalidArgumentError, "got 'lowest'"),
    (lambda: GPBOSearch(PARAM_SPACE, metric="a", mode="min", constraints={"m": ("<", 1)}).suggest("x"),
     InvalidArgumentError, "constraints['m'] must be ('<=', bound)"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def _train(config: dict) -> None:
    if config["model"]["act"] == "relu" and config["lr"] < 3e-4:
        raise RuntimeError("diverged")  # an error trial
    tune.report({"loss": loss(config)})


def test_tuner_fit_under_a_concurrency_limiter(ray_local, tmp_path):
    search = ConcurrencyLimiter(GPBOSearch(seed=0, settings={"n_initial": 2}), max_concurrent=2)
    tuner = tune.Tuner(
        _train,
        param_space=PARAM_SPACE,
        tune_config=tune.TuneConfig(search_alg=search, metric="loss", mode="min", num_samples=5,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 5
    best = results.get_best_result()
    assert best.config["epochs"] == 3 and best.metrics["loss"] == pytest.approx(loss(best.config))
    told = search.searcher._opt.trials
    assert len(told) == 5 and all(t.state is not TrialState.RUNNING for t in told)
    assert sum(t.state is TrialState.FAILED for t in told) == sum(r.error is not None for r in results)
