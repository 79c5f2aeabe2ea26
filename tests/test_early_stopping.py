"""Early stopping through the facade: report / should_stop, PRUNED trials, step budgets, storage, bad input."""

from __future__ import annotations

import concurrent.futures
import json
import math
import sqlite3

import pytest
import torch

import gpbo
from gpbo.early_stopping import ASHA, Curves
from gpbo.errors import InvalidArgumentError, InvalidTrialError
from gpbo.reporting import takes_trial
from gpbo.trial import TrialState

SPACE = {"x": gpbo.Real(0.0, 1.0)}
QUICK = {"n_initial": 3, "n_raw": 64, "n_restarts": 2}


def curve(x: float, step: int) -> float:
    """A loss that falls with the step; the best configuration is x = 0.3."""
    return (x - 0.3) ** 2 + 1.0 / step


def train(params: dict, trial) -> float:
    for epoch in range(1, 9):
        loss = curve(params["x"], epoch)
        trial.report(loss, epoch)
        if trial.should_stop():
            break
    return loss


def test_ask_tell_reports_a_curve_and_a_stopped_trial_is_pruned_with_its_told_value():
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=4, settings={**QUICK, "early_stopping": "median"})
    t = opt.ask()
    assert opt.should_stop(t) is False  # no report yet
    for step in (1, 2, 3, 4):
        record = opt.report(t, curve(0.3, step), step)
    assert record.steps == tuple((s, curve(0.3, s)) for s in (1, 2, 3, 4)) and record.last_step == 4
    assert isinstance(record.steps, tuple)
    done = opt.tell(t, curve(0.3, 4))
    assert done.state is TrialState.COMPLETE and done.steps == record.steps
    short = opt.ask()
    opt.report(short, 0.01, 1)  # looks great at step 1, but never reaches max_step
    pruned = opt.tell(short, 123.0)
    assert pruned.state is TrialState.PRUNED and pruned.value == 123.0 and pruned.steps == ((1, 0.01),)
    assert pruned.stopped_early and not done.stopped_early
    assert opt.best.id == t.id  # the best trial that reached max_step


def test_should_stop_asks_the_rule_and_the_answer_sticks():
    class Always:
        calls = 0

        def should_stop(self, curves: Curves, index: int) -> bool:
            Always.calls += 1
            assert curves.X.shape == (index + 1, 1) and curves.running[index] and curves.max_step == math.inf
            return True

    opt = gpbo.Optimizer(SPACE, seed=0, settings={**QUICK, "early_stopping": Always()})
    t = opt.ask()
    opt.report(t, 1.0, 1)
    assert opt.should_stop(t) and opt.should_stop(t.id) and Always.calls == 1
    assert opt.tell(t, 1.0).state is TrialState.PRUNED  # without max_step: pruned because the rule stopped it
    off = gpbo.Optimizer(SPACE, seed=0, settings={**QUICK, "early_stopping": None})
    t = off.ask()
    off.report(t, 1.0, 1)
    assert off.should_stop(t) is False


def test_the_default_rule_without_max_step_is_the_median_rule():
    res = gpbo.minimize(train, SPACE, 10, seed=0, settings={**QUICK, "n_initial": 10})  # reports, no max_step
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.steps for t in res.trials)
    assert res.best_value is not None and any(t.state is TrialState.PRUNED for t in res.trials)
    X = torch.rand(5, 1, dtype=torch.float64)
    steps = tuple(torch.arange(1.0, k + 1, dtype=torch.float64) for k in (4, 4, 4, 2, 2))
    finals = (0.5, 0.6, 0.7, 0.55, 0.65)  # trial 3 trails the others' median at step 2, trial 4 does not
    values = tuple(torch.full((len(s),), v, dtype=torch.float64) for s, v in zip(steps, finals))
    running = torch.tensor([False, False, False, True, True])
    study = Curves(X=X, steps=steps, values=values, running=running, stopped=torch.zeros(5, dtype=torch.bool),
                   max_step=math.inf)
    rule = gpbo.early_stopping.ModelBasedRule()
    assert [rule.should_stop(study, i) for i in range(5)] == [False, False, False, True, False]
    mean, std = rule.predict_final(study)
    assert mean.tolist() == list(finals) and std.isinf().all()  # nothing to predict: the last reports


def test_minimized_objectives_are_negated_for_the_rule():
    seen = {}

    class Spy:
        def should_stop(self, curves, index):
            seen["values"] = curves.values[index].tolist()
            return False

    opt = gpbo.Optimizer(SPACE, seed=0, settings={"early_stopping": Spy()})
    t = opt.ask()
    opt.report(t, 2.5, 1)
    opt.should_stop(t)
    assert seen["values"] == [-2.5]


def test_pruned_trials_enter_the_gp_at_their_last_report_capped_at_the_completed_median():
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=2, maximize=True, settings={**QUICK, "early_stopping": "median"})
    for value in (0.1, 0.2, 0.3):
        t = opt.ask()
        opt.report(t, value, 2)
        opt.tell(t, value)
    for value in (0.9, 0.05):  # stopped early: 0.9 must not look like a good full-fidelity result
        t = opt.ask()
        opt.report(t, value, 1)
        opt.tell(t, value)
    X, Y = opt._observations()
    assert Y.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.2, 0.05])


@pytest.mark.parametrize("as_pair", [False, True])  # ModelBasedRule returns (mean, std)
def test_pruned_trials_use_the_rules_predict_final(as_pair):
    class Predicts:
        def should_stop(self, curves, index):
            return True

        def predict_final(self, curves):
            mean = torch.full((curves.n_trials,), -7.0, dtype=torch.float64)
            return (mean, torch.ones_like(mean)) if as_pair else mean

    opt = gpbo.Optimizer(SPACE, seed=0, max_step=2, settings={**QUICK, "early_stopping": Predicts()})
    t = opt.ask()
    opt.report(t, 1.0, 1)
    opt.tell(t, 1.0)
    _, Y = opt._observations()
    assert Y.tolist() == [-7.0]  # no COMPLETE trial: no cap; the engine maximises -loss


@pytest.mark.parametrize(("steps", "message"), [
    ((2, 1), "trial 0: step 1 goes backwards; steps must increase (the last report was at step 2)"),
    ((2, 2), "trial 0: step 2 repeats; steps must increase"),
    ((1, 5), "trial 0: step 5 is above max_step=4"),
    ((1, -1), "trial 0: step must be a finite number >= 0, got -1"),
    ((1, "3"), "trial 0: step must be a finite number >= 0, got '3'"),
])
def test_bad_steps_raise_and_record_nothing(steps, message):
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=4)
    t = opt.ask()
    opt.report(t, 0.5, steps[0])
    with pytest.raises(InvalidTrialError, match=message.replace("(", r"\(").replace(")", r"\)")):
        opt.report(t, 0.4, steps[1])
    assert opt.trials[0].steps == ((steps[0], 0.5),) and opt.trials[0].state is TrialState.RUNNING


def test_a_non_finite_report_fails_the_trial_and_keeps_its_curve():
    opt = gpbo.Optimizer(SPACE, seed=0, settings={"early_stopping": "median"})
    t = opt.ask()
    opt.report(t, 0.5, 1)
    failed = opt.report(t, float("nan"), 2)
    assert failed.state is TrialState.FAILED and failed.steps == ((1, 0.5),)
    assert failed.error == "non-finite value nan reported at step 2"
    assert opt.should_stop(t) is True  # it has ended
    with pytest.raises(InvalidTrialError, match="trial 0 has ended \\(state failed\\); it cannot take a report"):
        opt.report(t, 0.4, 3)
    assert opt.tell(t, float("nan")) == failed  # the loop's own tell after the stop: the record, unchanged
    with pytest.raises(InvalidTrialError, match="already told"):
        opt.tell(t, 0.4)


def _nan_at_epoch_3(params: dict, trial) -> float:
    """The issue's training loop, diverging at epoch 3 of trial 1."""
    for epoch in range(1, 5):
        loss = float("nan") if trial.id == 1 and epoch == 3 else curve(params["x"], epoch)
        trial.report(loss, epoch)
        if trial.should_stop():
            break
    return loss


def _nan_then_keeps_reporting(params: dict, trial) -> float:
    """Trial 1 reports NaN at epoch 2 and does not check should_stop: its next report raises."""
    for epoch in range(1, 5):
        trial.report(float("nan") if trial.id == 1 and epoch == 2 else curve(params["x"], epoch), epoch)
    return curve(params["x"], 4)


@pytest.mark.parametrize("fn", [_nan_at_epoch_3, _nan_then_keeps_reporting])
@pytest.mark.parametrize("n_workers", [1, 3])
def test_a_non_finite_report_in_minimize_fails_one_trial_and_the_study_goes_on(fn, n_workers):
    res = gpbo.minimize(fn, SPACE, 6, seed=0, max_step=4, n_workers=n_workers,
                        settings={**QUICK, "early_stopping": None})
    assert len(res.trials) == 6
    failed = res.trials[1]
    nan_step = 3 if fn is _nan_at_epoch_3 else 2
    assert failed.state is TrialState.FAILED and failed.error == f"non-finite value nan reported at step {nan_step}"
    assert [s for s, _ in failed.steps] == list(range(1, nan_step))  # the curve before the NaN is kept
    assert all(t.state is TrialState.COMPLETE and t.last_step == 4 for t in res.trials if t.id != 1)


def test_a_trial_that_reached_max_step_is_complete_even_if_the_rule_said_stop():
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=3, settings={**QUICK, "early_stopping": "median"})
    for _ in range(5):
        t = opt.ask()
        for step in (1, 2, 3):
            opt.report(t, 0.1, step)
        opt.tell(t, 0.1)
    late = opt.ask()
    for step in (1, 2, 3):
        opt.report(late, 0.5, step)
    assert opt.should_stop(late)  # behind the median, but at max_step already: nothing left to save
    done = opt.tell(late, 0.5)
    assert done.state is TrialState.COMPLETE and done.value == 0.5
    assert opt.best.value == 0.1


def test_a_report_after_the_tell_and_bad_values_raise():
    opt = gpbo.Optimizer(SPACE, seed=0)
    t = opt.ask()
    with pytest.raises(InvalidTrialError, match="a reported value must be a real number, got 'high'"):
        opt.report(t, "high", 1)
    opt.tell(t, 1.0)
    with pytest.raises(InvalidTrialError, match="trial 0 has ended \\(state complete\\); it cannot take a report"):
        opt.report(t, 1.0, 1)
    with pytest.raises(InvalidTrialError, match="unknown trial id 5"):
        opt.report(5, 1.0, 1)
    multi = gpbo.Optimizer(SPACE, seed=0, objectives={"a": "minimize", "b": "maximize"})
    with pytest.raises(InvalidArgumentError, match="report needs a study with one objective"):
        multi.report(multi.ask(), 1.0, 1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_trials": 3, "step_budget": 10}, "step_budget=10 needs max_step"),
    ({"n_trials": None}, "minimize needs n_trials, or step_budget with max_step"),
    ({"n_trials": 3, "max_step": 0}, "max_step must be None or a finite number > 0, got int 0"),
    ({"n_trials": 3, "max_step": 5, "step_budget": -1}, "step_budget must be None or a finite number > 0"),
])
def test_minimize_checks_max_step_and_step_budget(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        gpbo.minimize(train, SPACE, seed=0, **kwargs)


def test_the_objective_gets_a_handle_only_when_it_takes_two_parameters():
    assert takes_trial(train) and takes_trial(lambda p, t: 0) and takes_trial(lambda p, t, extra=1: 0)
    assert not takes_trial(lambda p: 0) and not takes_trial(lambda p, scale=1.0: 0) and not takes_trial(abs)
    assert not takes_trial(lambda *args: 0)


def test_minimize_with_a_step_budget_stops_early_and_reports_the_best_full_run():
    res = gpbo.minimize(train, SPACE, seed=0, max_step=8, step_budget=8 * 6,
                        settings={**QUICK, "early_stopping": ASHA(min_step=1, eta=2)})
    used = sum(t.steps[-1][0] for t in res.trials)
    assert 8 * 6 <= used < 8 * 6 + 8  # the last trial was told to stop once the budget was spent
    assert any(t.state is TrialState.PRUNED for t in res.trials)
    full = [t for t in res.trials if t.state is TrialState.COMPLETE]
    assert all(t.last_step == 8 for t in full)
    assert res.best_value == min(t.value for t in full) and len(res.trials) > 6
    few = gpbo.minimize(train, SPACE, 2, seed=0, max_step=8, step_budget=1000, settings={"early_stopping": None})
    assert len(few.trials) == 2  # n_trials ends first


def test_a_budget_counts_max_step_for_an_objective_that_never_reports():
    res = gpbo.minimize(lambda p: curve(p["x"], 8), SPACE, seed=0, max_step=8, step_budget=8 * 4, settings=QUICK)
    assert len(res.trials) == 4 and all(t.state is TrialState.COMPLETE and t.steps == () for t in res.trials)


def test_threads_report_through_the_optimizer():
    res = gpbo.minimize(train, SPACE, 8, seed=0, max_step=8, n_workers=3, settings={**QUICK, "early_stopping": "median"})
    assert all(t.steps and t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in res.trials)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        res = gpbo.minimize(train, SPACE, 16, seed=0, max_step=8, n_workers=4, executor=pool,
                            settings={**QUICK, "early_stopping": "asha"})
    pruned = [t for t in res.trials if t.state is TrialState.PRUNED]
    assert len(res.trials) == 16 and all(t.steps for t in res.trials)
    assert pruned and all(t.last_step < 8 and t.value == t.steps[-1][1] for t in pruned)  # asynchronous stops
    assert all(t.last_step == 8 for t in res.trials if t.state is TrialState.COMPLETE)


def test_a_reporting_objective_is_refused_on_a_process_pool():
    with concurrent.futures.ProcessPoolExecutor(1) as pool, pytest.raises(
            InvalidArgumentError, match="takes a trial handle .* cannot run on ProcessPoolExecutor"):
        gpbo.minimize(train, SPACE, 2, executor=pool, max_step=8)


def test_an_executor_that_cannot_carry_a_handle_says_so():
    class Remote(concurrent.futures.ThreadPoolExecutor):
        supports_trial_handle = False  # RayExecutor sets True: it passes its tasks a proxy

    with Remote(1) as pool, pytest.raises(InvalidArgumentError, match="cannot run on Remote: .*RayExecutor"):
        gpbo.minimize(train, SPACE, 2, executor=pool, max_step=8)


def test_the_default_model_rule_runs_a_reporting_study():
    res = gpbo.minimize(train, SPACE, 8, seed=0, max_step=8, settings=QUICK)
    assert all(t.steps for t in res.trials) and res.best_value is not None


def test_settings_keep_the_rule_in_json():
    assert gpbo.Settings().early_stopping == "model"
    assert gpbo.Settings(early_stopping="none").early_stopping is None
    for rule in ("asha", "hyperband", "median", "model", None):
        s = gpbo.Settings(early_stopping=rule)
        assert gpbo.Settings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    custom = gpbo.Settings(early_stopping=ASHA(eta=2))
    assert custom.to_dict()["early_stopping"] is None
    opt = gpbo.Optimizer(SPACE, seed=0, settings=custom)
    with pytest.raises(InvalidArgumentError, match="a custom stopping rule"):
        gpbo.Optimizer.from_state_dict(opt.state_dict())
    with pytest.raises(InvalidArgumentError, match="early_stopping must be one of"):
        gpbo.Settings(early_stopping="wilcoxon")


def test_state_dict_keeps_curves_pruned_trials_and_max_step():
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=3, settings={"early_stopping": "median"})
    t = opt.ask()
    opt.report(t, 0.5, 1)
    opt.report(t, 0.25, 2.5)
    opt.tell(t, 0.25)
    back = gpbo.Optimizer.from_state_dict(json.loads(json.dumps(opt.state_dict())))
    assert back.max_step == 3 and back.trials == opt.trials
    assert back.trials[0].state is TrialState.PRUNED and back.trials[0].steps == ((1, 0.5), (2.5, 0.25))


def test_storage_keeps_curves_and_pruned_trials(tmp_path):
    db = tmp_path / "s.db"
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=3, storage=db, settings={"early_stopping": "median"})
    a, b = opt.ask(2)
    opt.report(a, 0.5, 1)
    opt.report(b, 0.7, 1)
    opt.tell(a, 0.5)
    other = gpbo.Optimizer(SPACE, storage=db, max_step=3)  # another process's view
    assert other.trials[0].state is TrialState.PRUNED and other.trials[1].steps == ((1, 0.7),)
    other.close()
    opt.report(b, 0.6, 2)
    study = gpbo.load_study(db)
    assert study.trials[0].state is TrialState.PRUNED and study.trials[0].value == 0.5
    assert study.trials[1].steps == ((1, 0.7), (2, 0.6))
    with pytest.raises(InvalidTrialError, match="repeats"):
        opt.report(b, 0.6, 2)
    opt.close()
    resumed = gpbo.Optimizer(SPACE, storage=db, max_step=3)
    again = resumed.ask()  # the orphan comes back with its curve
    assert again.id == 1 and again.steps == ((1, 0.7), (2, 0.6))
    resumed.report(again, 0.55, 3)
    assert resumed.tell(again, 0.55).state is TrialState.COMPLETE


def test_a_resumed_trial_replays_its_stored_steps_without_storing_them_twice(tmp_path):
    db = tmp_path / "s.db"
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=8, storage=db, settings={"early_stopping": None})
    t = opt.ask()
    for step in (1, 2, 3):
        opt.report(t, curve(t.params["x"], step), step)
    opt.close()  # as if the process died: trial 0 is an orphan
    res = gpbo.minimize(train, SPACE, 1, storage=db, max_step=8, settings={"early_stopping": None})
    (trial,) = res.trials
    assert trial.state is TrialState.COMPLETE and [s for s, _ in trial.steps] == list(range(1, 9))


def test_an_older_file_without_the_reports_table_still_opens(tmp_path):
    db = tmp_path / "old.db"
    opt = gpbo.Optimizer(SPACE, seed=0, storage=db)
    opt.tell(opt.ask(), 1.0)
    opt.close()
    with sqlite3.connect(db) as conn:  # the schema before learning curves
        conn.execute("DROP TABLE reports")
        conn.execute("ALTER TABLE trials DROP COLUMN stopped")
    assert gpbo.load_study(db).trials[0].value == 1.0
    opt = gpbo.Optimizer(SPACE, storage=db, max_step=2)
    t = opt.ask()
    opt.report(t, 0.5, 1)
    assert opt.tell(t, 0.5).state is TrialState.PRUNED
    opt.close()
    assert gpbo.load_study(db).trials[1].state is TrialState.PRUNED


def test_a_curve_model_that_cannot_be_fitted_leaves_the_last_report():
    class CannotFit:
        def should_stop(self, curves, index):
            return True

        def predict_final(self, curves):
            raise gpbo.errors.FitError("no fit")

    opt = gpbo.Optimizer(SPACE, seed=0, max_step=2, settings={**QUICK, "early_stopping": CannotFit()})
    t = opt.ask()
    opt.report(t, 1.0, 1)
    opt.tell(t, 1.0)
    _, Y = opt._observations()
    assert Y.tolist() == [-1.0]  # the last report, negated: the engine maximises -loss


def test_steps_beyond_float_precision_are_kept_as_floats_and_stored(tmp_path):
    opt = gpbo.Optimizer(SPACE, seed=0, storage=tmp_path / "s.db", max_step=1e30)
    t = opt.ask()
    opt.report(t, 0.3, 2**53 - 1)
    opt.report(t, 0.2, 1e30)
    opt.tell(t, 0.2)
    stored = gpbo.load_study(tmp_path / "s.db").trials[0].steps
    assert stored == ((2**53 - 1, 0.3), (1e30, 0.2))
    assert isinstance(stored[0][0], int) and isinstance(stored[1][0], float)
