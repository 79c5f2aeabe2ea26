"""Median and ASHA against Optuna's MedianPruner and SuccessiveHalvingPruner on random learning curves.

Conventions: gpbo's `Curves` hold values to maximise, so each case runs once in an Optuna study that
maximises the same values and once in one that minimises their negation. A gpbo trial that is neither
running nor stopped is Optuna's COMPLETE; stopped is PRUNED; running is RUNNING. Values are finite
(a non-finite report fails its gpbo trial, so no rule sees one) and steps are ints (Optuna's).
"""

from __future__ import annotations

import pytest
import torch

from gpbo.early_stopping import ASHA, Curves, Median
from gpbo.early_stopping.asha import rung_steps, stops_at_rungs

optuna = pytest.importorskip("optuna")
TrialState = optuna.trial.TrialState
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _curves(steps: list[list[int]], values: list[list[float]], running: list[bool], stopped: list[bool],
            max_step: float) -> Curves:
    """gpbo's view of the trials (configurations are irrelevant to these rules)."""
    return Curves(
        X=torch.zeros(len(steps), 1, dtype=torch.float64),
        steps=tuple(torch.tensor(s, dtype=torch.float64) for s in steps),
        values=tuple(torch.tensor(v, dtype=torch.float64) for v in values),
        running=torch.tensor(running, dtype=torch.bool),
        stopped=torch.tensor(stopped, dtype=torch.bool),
        max_step=max_step,
    )


def _tied_values(gen: torch.Generator, k: int) -> list[float]:
    """k values on a coarse grid (quarters in [0, 1]), so ties with the median or a rung's cut are common."""
    return (torch.randint(0, 5, (k,), generator=gen).double() / 4).tolist()


def _random_median_case(gen: torch.Generator) -> tuple[dict[str, int], list[list[int]], list[list[float]], list[str]]:
    """Random MedianPruner parameters and 1-8 other trials (complete, pruned or running) then the deciding one.

    Steps are sorted random subsets of 0..5 (gaps, so some steps have no finished peer); the deciding
    trial is the last one, running, with 1-2 reports.
    """
    params = {"n_startup_trials": int(torch.randint(0, 4, (), generator=gen)),
              "n_warmup_steps": int(torch.randint(0, 3, (), generator=gen)),
              "n_min_trials": int(torch.randint(1, 3, (), generator=gen))}
    n_other = int(torch.randint(1, 9, (), generator=gen))
    states = [["complete", "complete", "pruned", "running"][int(torch.randint(0, 4, (), generator=gen))]
              for _ in range(n_other)] + ["running"]
    steps, values = [], []
    for i in range(n_other + 1):
        k = int(torch.randint(1, 3, (), generator=gen)) if i == n_other else int(torch.randint(0, 7, (), generator=gen))
        steps.append(sorted(torch.randperm(6, generator=gen)[:k].tolist()))
        values.append(_tied_values(gen, k))
    return params, steps, values, states


def _optuna_median(params: dict[str, int], steps: list[list[int]], values: list[list[float]], states: list[str],
                   direction: str) -> bool:
    """MedianPruner's decision for the last trial, the others added to the study with `create_trial`."""
    sign = 1.0 if direction == "maximize" else -1.0
    pruner = optuna.pruners.MedianPruner(**params)
    study = optuna.create_study(direction=direction, pruner=pruner)
    state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "running": TrialState.RUNNING}
    for s, v, name in zip(steps, values, states):
        inter = {t: sign * y for t, y in zip(s, v)}
        final = sign * v[-1] if v else 0.0
        study.add_trial(optuna.trial.create_trial(state=state[name], value=final if name == "complete" else None,
                                                  intermediate_values=inter))
    return pruner.prune(study, study.get_trials(deepcopy=False)[-1])


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_median_decides_as_optunas_median_pruner_on_random_histories(direction: str) -> None:
    """`Median(**p).should_stop` equals `MedianPruner(**p).prune` (same n_startup_trials, n_warmup_steps,
    n_min_trials; interval_steps=1) on 400 random snapshots of a study; both decisions occur often."""
    gen = torch.Generator().manual_seed(0)
    decisions = []
    for case in range(400):
        params, steps, values, states = _random_median_case(gen)
        c = _curves(steps, values, [s == "running" for s in states], [s == "pruned" for s in states], 6.0)
        ours = Median(**params).should_stop(c, len(steps) - 1)
        theirs = _optuna_median(params, steps, values, states, direction)
        assert ours == theirs, f"case {case}: {params} steps={steps} values={values} states={states}"
        decisions.append(ours)
    assert 30 < sum(decisions) < 370  # the comparison is not one-sided


def _stopping_rung(curves: Curves, index: int, rule: ASHA, prev: int) -> int:
    """The rung at which trial ``index``'s last report (its previous one at step ``prev``) stopped it, by gpbo's rule."""
    rungs = rung_steps(rule.min_step, rule.eta, rule.early_stopping_rate, curves.max_step, curves.steps[index])
    for rung in (r for r in rungs if r > prev):
        if stops_at_rungs(curves, index, range(curves.n_trials), [rung], rule.eta):
            return int(rung)
    raise AssertionError("the trial was not stopped")


def _asha_study(seed: int, *, min_step: int, eta: int, rate: int, max_step: int, direction: str,
                every_step: bool, n_trials: int = 30, parallel: int = 4) -> tuple[int, int]:
    """Replay one asynchronous study through ASHA and SuccessiveHalvingPruner side by side.

    Up to ``parallel`` trials run at once; at each event a random running trial reports its next
    step (every step 1..max_step, or a random subset ending at max_step when not ``every_step``);
    one in five ends early unpruned (a failed run: gpbo finished, Optuna COMPLETE). After each report
    both rules decide, gpbo from the curves so far, Optuna from its own stored rung values
    (``trial.should_prune()``), and a stopped trial ends.

    Not compared: a report whose step first reaches a rung equal to ``max_step`` (Optuna decides
    there, gpbo skips that rung on purpose, see asha.py). When steps are skipped, a stopped trial's
    last report is moved, in gpbo's curves only, to the rung that stopped it: Optuna records a
    pruned trial at no rung above that one, gpbo counts it at every rung its last report passed
    (see `test_asha_counts_a_stopped_trial_at_rungs_its_last_report_passed_and_optuna_does_not`).
    With every step reported the move changes nothing.

    Returns:
        (compared decisions, stops among them).
    """
    gen = torch.Generator().manual_seed(seed)
    sign = 1.0 if direction == "maximize" else -1.0
    study = optuna.create_study(direction=direction, pruner=optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_step, reduction_factor=eta, min_early_stopping_rate=rate))
    rule = ASHA(min_step=min_step, eta=eta, early_stopping_rate=rate)
    top_rung = any(min_step * eta**k == max_step for k in range(rate, 40))
    steps: list[list[int]] = []
    values: list[list[float]] = []
    running: list[bool] = []
    stopped: list[bool] = []
    plans: dict[int, tuple[optuna.trial.Trial, list[int]]] = {}
    compared = stops = 0
    while len(steps) < n_trials or plans:
        while len(plans) < parallel and len(steps) < n_trials:
            plan = list(range(1, max_step + 1))
            if not every_step:
                plan = [t for t in plan if t == max_step or bool(torch.rand((), generator=gen) < 0.4)]
            if bool(torch.rand((), generator=gen) < 0.2):
                plan = plan[: int(torch.randint(1, len(plan) + 1, (), generator=gen))]
            plans[len(steps)] = (study.ask(), plan)
            steps.append([])
            values.append([])
            running.append(True)
            stopped.append(False)
        i = list(plans)[int(torch.randint(0, len(plans), (), generator=gen))]
        trial, plan = plans[i]
        prev = steps[i][-1] if steps[i] else 0
        steps[i].append(plan[len(steps[i])])
        values[i].append(_tied_values(gen, 1)[0])
        trial.report(sign * values[i][-1], steps[i][-1])
        ours = rule.should_stop(_curves(steps, values, running, stopped, float(max_step)), i)
        theirs = trial.should_prune()
        if not (top_rung and prev < max_step <= steps[i][-1]):
            assert ours == theirs, (f"seed {seed}, trial {i} at step {steps[i][-1]}: gpbo {ours}, Optuna {theirs}; "
                                    f"steps={steps} values={values} running={running} stopped={stopped}")
            compared, stops = compared + 1, stops + ours
        if ours and not every_step:
            steps[i][-1] = _stopping_rung(_curves(steps, values, running, stopped, float(max_step)), i, rule, prev)
        if ours or len(steps[i]) == len(plan):
            running[i], stopped[i] = False, ours
            if ours:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, sign * values[i][-1])
            del plans[i]
    return compared, stops


CONFIGS = [  # (min_step, eta, early_stopping_rate, max_step): a rung on max_step (8, 9, 27, 16) or none (20, 12)
    (1, 2, 0, 8), (1, 3, 0, 9), (1, 3, 1, 27), (1, 4, 0, 16), (2, 2, 0, 20), (3, 2, 0, 12), (1, 4, 0, 20),
]


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize(("min_step", "eta", "rate", "max_step"), CONFIGS)
@pytest.mark.parametrize("every_step", [True, False], ids=["every-step", "skipped-steps"])
def test_asha_decides_as_optunas_successive_halving_pruner_in_replayed_studies(
        every_step: bool, min_step: int, eta: int, rate: int, max_step: int, direction: str) -> None:
    """`ASHA(min_step, eta, early_stopping_rate)` equals `SuccessiveHalvingPruner(min_resource,
    reduction_factor, min_early_stopping_rate)` (bootstrap_count 0) at each report of two replayed
    studies of 30 trials, 4 at a time, but where `_asha_study` says they are meant to differ.
    Integer eta and min_step only: Optuna takes no others."""
    compared = stops = 0
    for seed in range(2):
        n, s = _asha_study(seed, min_step=min_step, eta=eta, rate=rate, max_step=max_step, direction=direction,
                           every_step=every_step)
        compared, stops = compared + n, stops + s
    assert compared > 70 and stops > 30


def test_asha_counts_a_stopped_trial_at_rungs_its_last_report_passed_and_optuna_does_not() -> None:
    """A known difference, pinned: gpbo's peers at a rung are every trial's value at its first step >= the
    rung (asha.py), a trial stopped at a lower rung by the same report included; Optuna records a pruned
    trial at no rung above the one that pruned it. Rungs 1, 2, 4 (eta 2): A reports 1.0 at step 1; B
    reports 0.5 at step 2 and is stopped at rung 1 (not the best of two); A reports 0.25 at step 2: at
    rung 2 Optuna sees A alone and keeps it, gpbo compares it with B's 0.5 and stops it."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.SuccessiveHalvingPruner(
        min_resource=1, reduction_factor=2))
    a, b = study.ask(), study.ask()
    a.report(1.0, 1)
    assert a.should_prune() is False
    b.report(0.5, 2)
    assert b.should_prune() is True
    study.tell(b, state=TrialState.PRUNED)
    a.report(0.25, 2)
    c = _curves([[1, 2], [2]], [[1.0, 0.25], [0.5]], [True, False], [False, True], 8.0)
    assert a.should_prune() is False
    assert ASHA(min_step=1, eta=2).should_stop(c, 0) is True
    c = _curves([[1, 2], [1]], [[1.0, 0.25], [0.5]], [True, False], [False, True], 8.0)  # B's report at its rung
    assert ASHA(min_step=1, eta=2).should_stop(c, 0) is False
