"""Early stopping in a study with constraints: the curve is the objective's, and only feasible trials are a bar."""

from __future__ import annotations

import math

import pytest

import gpbo
from gpbo.early_stopping import Curves, Median
from gpbo.errors import InvalidArgumentError
from gpbo.trial import TrialState

SPACE = {"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(0.0, 1.0)}
QUICK = {"n_initial": 3, "n_raw": 64, "n_restarts": 2}
CONSTRAINED = {"objectives": {"err": "minimize"}, "constraints": {"mem": ("<=", 16.0)}}


class Recorder:
    """A stopping rule that keeps what it was shown and never stops."""

    def __init__(self) -> None:
        self.seen: list[tuple[Curves, int]] = []

    def should_stop(self, curves: Curves, index: int) -> bool:
        self.seen.append((curves, index))
        return False


def run(opt: gpbo.Optimizer, errs: list[float], told):
    """Ask a trial, report ``errs`` at steps 1, 2, ..., then tell ``told``; returns the told record."""
    t = opt.ask()
    for step, err in enumerate(errs, 1):
        opt.report(t, err, step)
    return opt.tell(t, told)


def test_report_in_a_constrained_study_keeps_the_curve_and_every_metric():
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=3, settings=QUICK, **CONSTRAINED)
    whole = run(opt, [3.0, 2.0, 1.0], {"err": 1.0, "mem": 4.0})
    short = run(opt, [5.0], {"err": 5.0, "mem": 30.0})
    assert whole.state is TrialState.COMPLETE and whole.steps == ((1, 3.0), (2, 2.0), (3, 1.0))
    assert dict(whole.values) == {"err": 1.0, "mem": 4.0}
    assert short.state is TrialState.PRUNED and short.steps == ((1, 5.0),)
    assert dict(short.values) == {"err": 5.0, "mem": 30.0}
    assert opt.best.id == whole.id


def test_a_study_with_several_objectives_still_refuses_a_report():
    opt = gpbo.Optimizer(SPACE, seed=0, objectives={"err": "minimize", "ms": "minimize"})
    with pytest.raises(InvalidArgumentError, match=r"report needs a study with one objective .* \['err', 'ms'\]"):
        opt.report(opt.ask(), 1.0, 1)


@pytest.mark.parametrize("constrained", [True, False])
def test_the_rule_is_shown_the_trials_that_ended_infeasible_without_their_curves(constrained):
    rule = Recorder()
    kw = CONSTRAINED if constrained else {}
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=3, settings={**QUICK, "early_stopping": rule}, **kw)

    def told(err, mem):
        return {"err": err, "mem": mem} if constrained else err

    run(opt, [1.0, 0.5, 0.1], told(0.1, 20.0))  # complete, infeasible: no bar to beat
    run(opt, [2.0, 1.5, 1.2], told(1.2, 8.0))  # complete, feasible
    run(opt, [3.0, 2.5], told(2.5, 1.0))  # stopped early, feasible
    run(opt, [0.2], told(0.2, 99.0))  # stopped early, infeasible
    running = opt.ask()
    opt.report(running, 1.3, 1)
    opt.should_stop(running)
    curves, index = rule.seen[-1]
    assert curves.n_trials == 5 and index == running.id  # indices stay the trial ids (Hyperband's brackets)
    hidden = {0, 3} if constrained else set()  # ended infeasible: shown as a FAILED trial is, without a curve
    errs = {0: [1.0, 0.5, 0.1], 1: [2.0, 1.5, 1.2], 2: [3.0, 2.5], 3: [0.2], 4: [1.3]}
    assert [(-v).tolist() for v in curves.values] == [[] if i in hidden else errs[i] for i in range(5)]  # negated
    assert curves.running.tolist() == [i == 4 for i in range(5)]
    assert curves.stopped.tolist() == [i in (2, 3) and i not in hidden for i in range(5)]


def test_an_infeasible_trial_does_not_stop_a_feasible_one_but_a_feasible_rival_does():
    rule = {"early_stopping": Median(n_startup_trials=1, n_min_trials=1)}
    plain = gpbo.Optimizer(SPACE, seed=0, max_step=3, settings={**QUICK, **rule})
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=3, settings={**QUICK, **rule}, **CONSTRAINED)
    run(plain, [0.1, 0.1, 0.1], 0.1)
    run(opt, [0.1, 0.1, 0.1], {"err": 0.1, "mem": 20.0})  # infeasible
    for study, expected in ((plain, True), (opt, False)):
        t = study.ask()
        study.report(t, 1.0, 1)
        assert study.should_stop(t) is expected
    run(opt, [0.5, 0.5, 0.5], {"err": 0.5, "mem": 1.0})  # a feasible rival, better than 1.0 at step 1
    t = opt.ask()
    opt.report(t, 1.0, 1)
    assert opt.should_stop(t) is True


def test_stopped_trials_enter_the_gp_with_their_told_constraints():
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=2, settings={**QUICK, "early_stopping": "median"}, **CONSTRAINED)
    for err, mem in ((0.3, 1.0), (0.2, 30.0), (0.1, 2.0)):
        run(opt, [err, err], {"err": err, "mem": mem})
    run(opt, [0.05], {"err": 0.05, "mem": 40.0})  # stopped early, infeasible: must not look like the best
    run(opt, [0.9], {"err": 0.9, "mem": 3.0})
    failed = opt.ask()
    opt.tell(failed, {"err": math.nan, "mem": 5.0})
    X, Y = opt._observations()
    assert X.shape == (6, 2) and Y.shape == (6, 2)  # engine columns: -err, then mem - 16 (<= 0 feasible)
    # complete, then PRUNED (last report capped at the completed median, -0.2), then FAILED (the worst value)
    assert Y[:, 0].tolist() == pytest.approx([-0.3, -0.2, -0.1, -0.2, -0.9, -0.9])
    assert Y[:5, 1].tolist() == pytest.approx([-15.0, 14.0, -14.0, 24.0, -13.0])


def test_minimize_with_constraints_and_early_stopping_ends_with_a_feasible_best():
    def train(params, trial):
        for epoch in range(1, 7):
            err = (params["x"] - 0.3) ** 2 + 1.0 / epoch
            trial.report(err, epoch)
            if trial.should_stop():
                break
        return {"err": err, "mem": 32.0 * params["y"]}

    rule = Median(n_startup_trials=2, n_min_trials=1)
    res = gpbo.minimize(train, SPACE, n_trials=14, seed=0, max_step=6, settings={**QUICK, "early_stopping": rule},
                        **CONSTRAINED)
    states = {t.state for t in res.trials}
    assert TrialState.FAILED not in states and TrialState.PRUNED in states
    best = [t for t in res.trials if t.params == res.best_params]
    assert len(best) == 1 and best[0].state is TrialState.COMPLETE and best[0].values["mem"] <= 16.0
    assert all(t.steps for t in res.trials)


def test_storage_keeps_the_curves_and_every_metric_of_a_constrained_study(tmp_path):
    db = tmp_path / "s.db"
    opt = gpbo.Optimizer(SPACE, seed=0, max_step=3, storage=db, settings=QUICK, **CONSTRAINED)
    run(opt, [0.9, 0.4, 0.2], {"err": 0.2, "mem": 20.0})
    run(opt, [0.8], {"err": 0.8, "mem": 2.0})
    open_trial = opt.ask()
    opt.report(open_trial, 0.7, 1)
    opt.close()
    resumed = gpbo.Optimizer(SPACE, storage=db, max_step=3, **CONSTRAINED)
    first, second = resumed.trials[:2]
    assert first.state is TrialState.COMPLETE and dict(first.values) == {"err": 0.2, "mem": 20.0}
    assert second.state is TrialState.PRUNED and second.steps == ((1, 0.8),)
    assert resumed.best is None  # the only complete trial is infeasible
    again = resumed.ask()  # the orphan comes back with its curve
    assert again.id == 2 and again.steps == ((1, 0.7),)
    resumed.report(again, 0.3, 3)
    assert resumed.tell(again, {"err": 0.3, "mem": 1.0}).state is TrialState.COMPLETE
    assert resumed.best.id == 2
