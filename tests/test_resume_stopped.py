"""Settings(resume_stopped=True): a stopped configuration proposed again continues its trial instead of restarting."""

from __future__ import annotations

import pytest

import gpbo
from gpbo.errors import InvalidArgumentError, InvalidTrialError
from gpbo.reporting import StepBudget
from gpbo.trial import TrialState

SPACE = {"x": gpbo.Categorical(["a", "b", "c"])}
LEVEL = {"a": 1.0, "b": 0.5, "c": 0.0}
MAX_STEP = 5


class StopAtOnce:
    """A rule that stops every trial at its first report."""

    def should_stop(self, curves, index) -> bool:
        return True


def optimizer(resume: bool, **kwargs) -> gpbo.Optimizer:
    settings = gpbo.Settings(early_stopping=StopAtOnce(), resume_stopped=resume, n_initial=3, n_raw=32, n_restarts=2)
    return gpbo.Optimizer(SPACE, seed=0, maximize=True, max_step=MAX_STEP, settings=settings, **kwargs)


def value(x: str, step: int) -> float:
    return LEVEL[x] + 0.01 * step


def train(opt: gpbo.Optimizer, trial: gpbo.Trial) -> gpbo.Trial:
    """Reports from the step after the trial's last one (a checkpointed run) until stopped or at MAX_STEP."""
    step = int(trial.last_step or 0)
    while step < MAX_STEP:
        step += 1
        opt.report(trial, value(trial.params["x"], step), step)
        if opt.should_stop(trial):
            break
    return opt.tell(trial, value(trial.params["x"], step))


def first_continued(opt: gpbo.Optimizer, n_asks: int = 12) -> gpbo.Trial:
    """Runs trials until an ask hands out a trial that was stopped; returns it (RUNNING)."""
    for _ in range(n_asks):
        before = {t.id for t in opt.trials}
        trial = opt.ask()
        if trial.id in before:
            return trial
        train(opt, trial)
    raise AssertionError("no stopped configuration was proposed again")


def test_a_stopped_configuration_proposed_again_continues_its_trial():
    opt = optimizer(resume=True)
    trial = first_continued(opt)
    assert trial.state is TrialState.RUNNING and trial.value is None
    assert trial.steps == ((1, value(trial.params["x"], 1)),)  # the curve so far is kept
    with pytest.raises(InvalidTrialError, match="repeats"):
        opt.report(trial, 0.0, 1)  # it resumes after its last step
    opt.report(trial, value(trial.params["x"], 2), 2)
    assert opt.should_stop(trial) is False  # the rule would stop it: a continued trial runs to max_step
    for step in range(3, MAX_STEP + 1):
        opt.report(trial, value(trial.params["x"], step), step)
    told = opt.tell(trial, value(trial.params["x"], MAX_STEP))
    assert told.state is TrialState.COMPLETE and told.id == trial.id
    assert [s for s, _ in told.steps] == [1, 2, 3, 4, 5]
    assert opt.best is not None


def test_without_the_setting_a_stopped_configuration_starts_a_new_trial():
    opt = optimizer(resume=False)
    for k in range(8):
        assert opt.ask().id == k  # every ask is a new trial, stopped at its first report
        train(opt, opt.trials[k])
    assert {t.params["x"] for t in opt.trials} <= set(LEVEL) and len(opt.trials) == 8
    assert all(t.state is TrialState.PRUNED and t.last_step == 1 for t in opt.trials)


def test_a_stopped_trial_is_continued_at_most_once_per_ask():
    opt = optimizer(resume=False)
    for _ in range(4):
        train(opt, opt.ask())
    assert all(t.state is TrialState.PRUNED for t in opt.trials)
    state = opt.state_dict()
    opt = gpbo.Optimizer.from_state_dict(state, settings={"early_stopping": StopAtOnce(), "resume_stopped": True})
    asked = opt.ask(3)
    ids = [t.id for t in asked]
    assert len(set(ids)) == 3
    continued = [t for t in asked if t.id < 4]
    assert continued and all(t.last_step == 1 and t.state is TrialState.RUNNING for t in continued)
    for x in LEVEL:  # never more continued trials of a level than there were stopped ones
        assert sum(t.params["x"] == x for t in continued) <= sum(t.params["x"] == x for t in opt.trials[:4])
    assert all(t.steps == () for t in asked if t.id >= 4)


def test_storage_keeps_a_continued_trial_through_a_crash(tmp_path):
    path = tmp_path / "study.db"
    opt = optimizer(resume=True, storage=path)
    trial = first_continued(opt)
    opt.report(trial, value(trial.params["x"], 2), 2)
    other = optimizer(resume=True, storage=path)  # another process sees it running, with its curve
    assert other.trials[trial.id].state is TrialState.RUNNING and other.trials[trial.id].last_step == 2
    other.close()
    opt.close()  # as if the process died: the trial is handed out again

    again = optimizer(resume=True, storage=path)
    reissued = again.ask()
    assert reissued.id == trial.id and [s for s, _ in reissued.steps] == [1, 2]
    assert again.should_stop(reissued) is False  # still a continued trial after the restart
    told = train(again, reissued)
    assert told.state is TrialState.COMPLETE and [s for s, _ in told.steps] == [1, 2, 3, 4, 5]
    history = gpbo.load_study(path)
    assert history.trials[trial.id].state is TrialState.COMPLETE
    assert [s for s, _ in history.trials[trial.id].steps] == [1, 2, 3, 4, 5]
    again.close()


def test_state_dict_keeps_which_trials_are_continued():
    opt = optimizer(resume=True)
    trial = first_continued(opt)
    restored = gpbo.Optimizer.from_state_dict(opt.state_dict(), settings={"early_stopping": StopAtOnce()})
    opt.report(trial, value(trial.params["x"], 2), 2)
    restored.report(trial.id, value(trial.params["x"], 2), 2)
    assert restored.should_stop(trial.id) is False and opt.should_stop(trial) is False


@pytest.mark.parametrize("checkpointed", [True, False])
def test_minimize_continues_stopped_trials(checkpointed):
    checkpoints: dict[int, int] = {}
    starts: list[tuple[int, int]] = []

    def objective(params, trial):
        start = checkpoints.get(trial.id, 0) if checkpointed else 0  # a restart replays the recorded steps
        starts.append((trial.id, start))
        step = start
        while step < MAX_STEP:
            step += 1
            trial.report(value(params["x"], step), step)
            checkpoints[trial.id] = step
            if trial.should_stop():
                break
        return value(params["x"], step)

    res = gpbo.minimize(objective, SPACE, maximize=True, max_step=MAX_STEP, step_budget=20, seed=0,
                        settings=gpbo.Settings(early_stopping=StopAtOnce(), resume_stopped=True, n_initial=3,
                                               n_raw=32, n_restarts=2))
    handed = [i for i, _ in starts]
    assert len(handed) > len(set(handed))  # some trial was handed out twice: continued
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in res.trials)
    for t in res.trials:
        assert [s for s, _ in t.steps] == list(range(1, int(t.last_step) + 1))  # no step lost or stored twice
    assert any(t.state is TrialState.COMPLETE for t in res.trials)
    assert sum(t.last_step for t in res.trials) < 20 + MAX_STEP  # each trial's steps count once


def test_step_budget_counts_a_trial_handed_out_twice_once():
    opt = optimizer(resume=True)
    budget = StepBudget(opt, limit=100.0)
    trial = opt.ask()
    budget.add(trial.id)
    train(opt, trial)
    budget.add(trial.id)
    assert budget.used() == 1.0


def test_resume_stopped_must_be_a_bool():
    with pytest.raises(InvalidArgumentError, match="resume_stopped"):
        gpbo.Settings(resume_stopped="yes")
    assert gpbo.Settings.from_dict(gpbo.Settings(resume_stopped=True).to_dict()).resume_stopped is True
