"""GPBOSampler against Optuna's sampler contract: distributions, n_jobs, failures, errors."""

from __future__ import annotations

import logging
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

optuna = pytest.importorskip("optuna")

from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

import gpbo
from gpbo.errors import InvalidArgumentError
from gpbo.integrations.optuna import GPBOSampler
from gpbo.outcomes import Outcomes

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "float": FloatDistribution(-1.0, 2.0),
    "float_log": FloatDistribution(1e-4, 1.0, log=True),
    "float_step": FloatDistribution(0.0, 1.0, step=0.25),
    "int": IntDistribution(-3, 3),
    "int_log": IntDistribution(1, 128, log=True),
    "int_step": IntDistribution(0, 10, step=5),
    "cat": CategoricalDistribution(["a", 1, 2.5, None, True]),
}


class CountingSampler(GPBOSampler):
    """Counts which parameters were sampled independently."""

    independent: list[tuple[int, str]]

    def sample_independent(self, study, trial, param_name, param_distribution):
        self.independent = [*getattr(self, "independent", []), (trial.number, param_name)]
        return super().sample_independent(study, trial, param_name, param_distribution)


def branin(trial: optuna.Trial) -> float:
    x1, x2 = trial.suggest_float("x1", -5.0, 10.0), trial.suggest_float("x2", 0.0, 15.0)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def test_one_line_switch_finds_the_branin_minimum():
    best = []
    for seed in range(3):  # one seed of 25 trials can end in the wrong basin (seed 0: 1.94)
        study = optuna.create_study(sampler=GPBOSampler(seed=seed, n_startup_trials=5))
        study.optimize(branin, n_trials=25)
        best.append(study.best_value)
    assert sorted(best)[1] < 1.5  # median; global minimum 0.398; random search needs ~100 trials for this


def test_every_distribution_kind_is_sampled_relatively_and_stays_valid():
    sampler = CountingSampler(seed=1, n_startup_trials=4)

    def objective(trial: optuna.Trial) -> float:
        p = {
            "float": trial.suggest_float("float", -1.0, 2.0),
            "float_log": trial.suggest_float("float_log", 1e-4, 1.0, log=True),
            "float_step": trial.suggest_float("float_step", 0.0, 1.0, step=0.25),
            "int": trial.suggest_int("int", -3, 3),
            "int_log": trial.suggest_int("int_log", 1, 128, log=True),
            "int_step": trial.suggest_int("int_step", 0, 10, step=5),
            "cat": trial.suggest_categorical("cat", ["a", 1, 2.5, None, True]),
        }
        return (p["float"] - 0.5) ** 2 + math.log(p["float_log"]) ** 2 / 50 + p["int"] ** 2 + (p["cat"] == "a")

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=9)
    assert {number for number, _ in sampler.independent} == {0, 1, 2, 3}  # startup only
    for t in study.trials:
        for name, dist in DISTRIBUTIONS.items():
            value = t.params[name]
            assert t.distributions[name] == dist
            if isinstance(dist, CategoricalDistribution):
                assert any(value is c or (value == c and type(value) is type(c)) for c in dist.choices)
            else:
                assert dist.low <= value <= dist.high
                step = dist.step or (1 if isinstance(dist, IntDistribution) else None)
                if step is not None:
                    assert (value - dist.low) / step == pytest.approx(round((value - dist.low) / step))


def test_direction_maximize():
    study = optuna.create_study(direction="maximize", sampler=GPBOSampler(seed=0, n_startup_trials=4))
    study.optimize(lambda t: -(t.suggest_float("x", 0.0, 1.0) - 0.3) ** 2, n_trials=12)
    assert abs(study.best_params["x"] - 0.3) < 0.05


def test_same_seed_same_trials():
    def run() -> list[dict]:
        study = optuna.create_study(sampler=GPBOSampler(seed=3, n_startup_trials=3))
        study.optimize(branin, n_trials=6)
        return [t.params for t in study.trials]

    assert run() == run()


def test_running_trials_are_pending_so_asked_points_differ():
    study = optuna.create_study(sampler=GPBOSampler(seed=0, n_startup_trials=5))
    study.optimize(branin, n_trials=5)
    asked = [study.ask() for _ in range(3)]
    points = [(t.suggest_float("x1", -5.0, 10.0), t.suggest_float("x2", 0.0, 15.0)) for t in asked]
    for i in range(3):
        for j in range(i):
            assert math.dist(points[i], points[j]) > 0.1, points


def test_a_trial_finishing_while_the_next_samples_is_observed_or_pending(monkeypatch):
    """Regression (n_jobs=2 repeated a point): the sampler read the complete and the
    running trials in two storage reads; a trial that finished between them was neither
    an observation nor pending, and its point was suggested again."""
    study = optuna.create_study(sampler=GPBOSampler(seed=0, n_startup_trials=5))
    study.optimize(branin, n_trials=5)
    first = study.ask()
    p = (first.suggest_float("x1", -5.0, 10.0), first.suggest_float("x2", 0.0, 15.0))
    read = study.get_trials

    def read_then_finish_first(*args, **kwargs):  # the other thread's tell lands right after a read
        trials = read(*args, **kwargs)
        if study._storage.get_trial(first._trial_id).state == TrialState.RUNNING:
            study._storage.set_trial_state_values(first._trial_id, TrialState.COMPLETE, [branin(first)])
        return trials

    monkeypatch.setattr(study, "get_trials", read_then_finish_first)
    second = study.ask()
    q = (second.suggest_float("x1", -5.0, 10.0), second.suggest_float("x2", 0.0, 15.0))
    assert math.dist(p, q) > 0.1, (p, q)


def test_study_optimize_with_two_jobs():
    """Trials that ran at the same time never share a point. (A later trial may repeat a
    finished one: LogEI can pick an observed corner of the box again; seen in CI.)"""
    study = optuna.create_study(sampler=GPBOSampler(seed=0, n_startup_trials=4))
    study.optimize(branin, n_trials=12, n_jobs=2)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 12
    for i, a in enumerate(trials):
        for b in trials[:i]:
            overlapped = a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
            assert not (overlapped and a.params == b.params), (a.number, b.number, a.params)


def test_pruned_failed_and_nan_trials_do_not_stop_the_study():
    def objective(trial: optuna.Trial) -> float:
        value = branin(trial)
        if trial.number % 4 == 1:
            raise optuna.TrialPruned()
        if trial.number % 4 == 2:
            raise ValueError("diverged")
        return math.nan if trial.number == 7 else value

    study = optuna.create_study(sampler=GPBOSampler(seed=0, n_startup_trials=3))
    study.optimize(objective, n_trials=14, catch=(ValueError,))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) == 4 and states.count(TrialState.FAIL) == 4
    assert states.count(TrialState.COMPLETE) == 6


def test_dynamic_parameters_fall_back_to_the_independent_sampler(caplog):
    sampler = CountingSampler(seed=0, n_startup_trials=3)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number % 2:
            return x + trial.suggest_float("extra", 0.0, 1.0)
        return x

    study = optuna.create_study(sampler=sampler)
    with caplog.at_level(logging.WARNING, logger="gpbo.integrations.optuna"):
        study.optimize(objective, n_trials=8)
    late = [(n, p) for n, p in sampler.independent if n >= 3]
    assert late and all(p == "extra" for _, p in late)
    assert "samples parameter 'extra' with RandomSampler" in caplog.text


def test_trials_the_gp_cannot_use_keep_the_startup_without_a_warning(caplog):
    values = iter([math.inf, math.inf, math.inf, 1.0, 2.0])
    study = optuna.create_study(sampler=GPBOSampler(seed=0, n_startup_trials=3))
    with caplog.at_level(logging.WARNING, logger="gpbo.integrations.optuna"):
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0) * 0.0 + next(values), n_trials=5)
    assert "outside the intersection search space" not in caplog.text


def test_multi_objective_study_with_constraints_feeds_the_engine(monkeypatch):
    import gpbo.integrations.optuna as module

    seen = []

    def spy(X, Y, *, dims, pending, settings, seed, warm_start):  # the multi-output engine's contract
        seen.append((Y, settings.outcomes, warm_start))
        theta = torch.full((1, 3, X.shape[-1] + 1), float(len(seen)))
        return SimpleNamespace(candidates=torch.rand(1, 1, X.shape[-1], dtype=X.dtype), model=SimpleNamespace(theta=theta))

    monkeypatch.setattr(module, "suggest", spy)
    sampler = GPBOSampler(seed=0, n_startup_trials=3, constraints_func=lambda t: [t.params["x"] - 0.5])
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1) ** 2, t.suggest_float("y", 0, 1)), n_trials=5)
    assert len(seen) == 2 and all(o == Outcomes(2, 1) for _, o, _ in seen)
    Y, trials = seen[-1][0], study.trials[:4]
    expected = [[-t.values[0], t.values[1], t.params["x"] - 0.5] for t in trials]
    torch.testing.assert_close(Y[0], torch.tensor(expected, dtype=torch.float64))
    assert [t.system_attrs["constraints"] for t in trials] == [(t.params["x"] - 0.5,) for t in trials]
    assert seen[0][2] is None and torch.equal(seen[1][2], torch.full((1, 3, 3), 1.0))  # warm start kept


def test_infinite_constraint_values_enter_the_engine_imputed(monkeypatch):
    import gpbo.integrations.optuna as module

    seen = []

    def spy(X, Y, **kwargs):
        seen.append(Y)
        return SimpleNamespace(candidates=torch.rand(1, 1, X.shape[-1], dtype=X.dtype),
                               model=SimpleNamespace(theta=torch.zeros(1, 2, X.shape[-1] + 1)))

    monkeypatch.setattr(module, "suggest", spy)
    g = {0: math.inf, 1: -math.inf, 2: 0.25, 3: -0.5}  # Optuna: inf violated, -inf met
    sampler = GPBOSampler(seed=0, n_startup_trials=4, constraints_func=lambda t: [g.get(t.number, 0.0)])
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5
    torch.testing.assert_close(seen[0][0, :, 1], torch.tensor([0.25, -0.5, 0.25, -0.5], dtype=torch.float64))


def test_an_infinite_constraint_value_runs_with_the_real_engine():
    sampler = GPBOSampler(seed=0, n_startup_trials=3,
                          constraints_func=lambda t: [math.inf if t.number == 0 else t.params["x"] - 0.5])
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.3) ** 2, n_trials=5)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5


def test_constraints_func_alone_keeps_one_objective(monkeypatch):
    import gpbo.integrations.optuna as module

    seen = []

    def spy(X, Y, **kwargs):
        seen.append((Y.shape, kwargs["settings"].outcomes))
        return SimpleNamespace(candidates=torch.rand(1, 1, X.shape[-1], dtype=X.dtype),
                               model=SimpleNamespace(theta=torch.zeros(1, 2)))

    monkeypatch.setattr(module, "suggest", spy)
    sampler = GPBOSampler(seed=0, n_startup_trials=2, constraints_func=lambda t: (1.0, -1.0))
    optuna.create_study(sampler=sampler).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert seen == [((1, 2, 3), Outcomes(1, 2))]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_startup_trials": 0}, "n_startup_trials must be an int >= 1, got int 0"),
    ({"independent_sampler": "random"}, "independent_sampler must be an optuna BaseSampler, got 'random'"),
    ({"settings": {"acquisition": "nope"}}, "unknown acquisition 'nope'"),
    ({"settings": {"dtype": float}}, "dtype must be torch.float32 or torch.float64, got <class 'float'>"),
    ({"seed": -1}, "seed must be an int >= 0, got int -1"),
    ({"constraints_func": [1.0]}, "constraints_func must be callable or None, got [1.0]"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        GPBOSampler(**kwargs)


def test_settings_reach_the_engine(monkeypatch):
    import gpbo.integrations.optuna as module

    seen = []

    def spy(X, Y, **kwargs):
        seen.append((X.dtype, kwargs["settings"]))
        return module_suggest(X, Y, **kwargs)

    module_suggest = module.suggest
    monkeypatch.setattr(module, "suggest", spy)
    settings = gpbo.Settings(acquisition="ucb", dtype=torch.float32, n_raw=64, n_restarts=2)
    study = optuna.create_study(sampler=GPBOSampler(seed=0, n_startup_trials=3, settings=settings))
    study.optimize(branin, n_trials=5)
    assert seen == [(torch.float32, settings)] * 2


# ------------------------------------------------------------------ GPBOPruner


def _pruned_objective(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    k = trial.suggest_categorical("k", ["a", "b"])
    loss = 0.0
    for step in range(1, 9):
        loss = (x - 0.3) ** 2 + 0.1 * (k == "b") + 1.0 / step
        trial.report(loss, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return loss


@pytest.mark.parametrize("rule", ["median", "asha"])
@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_gpbo_pruner_prunes_studies_with_any_sampler(rule, sampler):
    from gpbo.integrations.optuna import GPBOPruner

    make = {"tpe": lambda: optuna.samplers.TPESampler(seed=0),
            "gp": lambda: optuna.samplers.GPSampler(seed=0, n_startup_trials=4)}[sampler]
    study = optuna.create_study(sampler=make(), pruner=GPBOPruner(rule, max_step=8))
    study.optimize(_pruned_objective, n_trials=14 if sampler == "tpe" else 8)
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    assert study.best_trial.state is TrialState.COMPLETE


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_gpbo_pruner_with_the_model_rule_prunes_and_keeps_the_best_whole(sampler):
    from gpbo.integrations.optuna import GPBOPruner

    make = {"tpe": lambda: optuna.samplers.TPESampler(seed=0),
            "gp": lambda: optuna.samplers.GPSampler(seed=0, n_startup_trials=4)}[sampler]
    study = optuna.create_study(sampler=make(), pruner=GPBOPruner("model", max_step=8))
    study.optimize(_pruned_objective, n_trials=12)
    pruned = [t for t in study.trials if t.state is TrialState.PRUNED]
    assert pruned and all(max(t.intermediate_values) < 8 for t in pruned)
    assert study.best_trial.state is TrialState.COMPLETE and max(study.best_trial.intermediate_values) == 8


def test_gpbo_pruner_with_its_defaults_runs_before_max_step_is_known():
    from gpbo.integrations.optuna import GPBOPruner

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), pruner=GPBOPruner())
    study.optimize(_pruned_objective, n_trials=10)
    states = [t.state for t in study.trials]
    assert TrialState.FAIL not in states and TrialState.PRUNED in states


def test_gpbo_pruner_is_direction_aware():
    from gpbo.integrations.optuna import GPBOPruner

    seen = {}

    class Spy:
        def should_stop(self, curves, index):
            seen["values"], seen["max_step"], seen["X"] = curves.values[index].tolist(), curves.max_step, curves.X
            return False

    def objective(trial):
        trial.suggest_float("x", 0.0, 1.0)
        trial.report(2.0, 1)
        trial.should_prune()
        return 2.0

    optuna.create_study(direction="minimize", pruner=GPBOPruner(Spy())).optimize(objective, n_trials=1)
    assert seen["values"] == [-2.0] and seen["max_step"] == math.inf and seen["X"].shape == (1, 1)
    optuna.create_study(direction="maximize", pruner=GPBOPruner(Spy())).optimize(objective, n_trials=2)
    assert seen["values"] == [2.0] and seen["max_step"] == 1.0


@pytest.mark.parametrize("constrained", [True, False])
def test_gpbo_pruner_leaves_out_trials_that_ended_infeasible(constrained):
    """With a sampler's constraints_func, an infeasible trial is no bar; a feasible one is."""
    from gpbo.early_stopping import Median
    from gpbo.integrations.optuna import GPBOPruner

    constraints = (lambda t: [t.user_attrs["mem"] - 16.0]) if constrained else None
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, constraints_func=constraints),
                                pruner=GPBOPruner(Median(n_startup_trials=1, n_min_trials=1), max_step=3))

    def whole(loss: float, mem: float) -> None:
        t = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
        t.set_user_attr("mem", mem)
        for step in (1, 2, 3):
            t.report(loss, step)
        study.tell(t, loss)

    def stopped_at_step_one(loss: float) -> bool:
        t = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
        t.report(loss, 1)
        answer = t.should_prune()
        t.set_user_attr("mem", 1.0)
        study.tell(t, state=TrialState.PRUNED)
        return answer

    whole(0.1, mem=20.0)  # infeasible under the constraint
    assert stopped_at_step_one(1.0) is not constrained
    whole(0.5, mem=1.0)  # a feasible rival better than 1.0 at step 1
    assert stopped_at_step_one(1.0) is True


def test_gpbo_pruner_rejects_bad_arguments():
    from gpbo.integrations.optuna import GPBOPruner

    with pytest.raises(InvalidArgumentError, match="early_stopping must be one of"):
        GPBOPruner("wilcoxon")
    for bad in (0, 10**400, float("inf"), True):
        with pytest.raises(InvalidArgumentError, match="max_step must be None or a finite number > 0"):
            GPBOPruner("median", max_step=bad)
    assert GPBOPruner("median", max_step=np.int64(8))._max_step == 8
    with pytest.raises(InvalidArgumentError, match="NopPruner"):
        GPBOPruner(None)
