"""The named stopping rules (ASHA, Hyperband, Median) on hand-made curves with known decisions."""

from __future__ import annotations

import math

import pytest
import torch

from gpbo.early_stopping import ASHA, Curves, Hyperband, Median, StoppingRule, check, get
from gpbo.errors import InvalidArgumentError


def curves(rows: list[list[float]], *, running: list[bool] | None = None, stopped: list[bool] | None = None,
           max_step: float = 27.0, steps: list[list[float]] | None = None) -> Curves:
    """Curves whose trial i reported ``rows[i]`` at steps 1, 2, ... (or ``steps[i]``)."""
    T = len(rows)
    steps = steps or [list(range(1, len(r) + 1)) for r in rows]
    return Curves(
        X=torch.rand(T, 2, dtype=torch.float64),
        steps=tuple(torch.tensor(s, dtype=torch.float64) for s in steps),
        values=tuple(torch.tensor(r, dtype=torch.float64) for r in rows),
        running=torch.tensor(running or [False] * T),
        stopped=torch.tensor(stopped or [False] * T),
        max_step=max_step,
    )


@pytest.mark.parametrize("rule", [ASHA(), Hyperband(), Median()])
def test_named_rules_follow_the_protocol(rule):
    assert isinstance(rule, StoppingRule)
    assert rule.should_stop(curves([[0.5]], running=[True]), 0) is False  # alone: nothing to compare


def test_asha_stops_at_a_rung_outside_the_top_fraction():
    # eta = 2, rungs at 1, 2, 4, 8, 16 (below max_step 27). Three finished trials reached step 2.
    rule = ASHA(min_step=1, eta=2)
    done = [[0.9, 0.95], [0.5, 0.6], [0.1, 0.2]]
    c = curves(done + [[0.3]], running=[False] * 3 + [True])
    # at rung 1 the values are 0.9, 0.5, 0.1, 0.3: the top 4 // 2 = 2 are 0.9, 0.5 -> 0.3 stops
    assert rule.should_stop(c, 3) is True
    c = curves(done + [[0.7]], running=[False] * 3 + [True])
    assert rule.should_stop(c, 3) is False


def test_asha_decides_only_when_a_rung_is_reached():
    rule = ASHA(min_step=1, eta=2)
    # the new trial is at step 3: rung 2 was reached at its previous report, rung 4 not yet
    c = curves([[0.9, 0.95, 0.97], [0.8, 0.9, 0.92], [0.1, 0.05, 0.04]], running=[False, False, True])
    assert rule.should_stop(c, 2) is False
    c = curves([[0.9, 0.95], [0.8, 0.9], [0.1, 0.05]], running=[False, False, True])
    assert rule.should_stop(c, 2) is True  # at rung 2 now, last of three


def test_asha_uses_the_first_report_at_or_after_a_rung():
    rule = ASHA(min_step=2, eta=2)  # rungs 2, 4, 8, 16
    c = curves([[0.9], [0.4]], steps=[[2.0], [3.0]], running=[False, True])
    assert rule.should_stop(c, 1) is True  # 0.4 at step 3 counts for rung 2; 1 < eta values: must be the best


def test_asha_never_stops_a_trial_that_is_best_so_far_and_ignores_rungs_at_max_step():
    rule = ASHA(min_step=1, eta=3)
    assert rule.should_stop(curves([[0.1], [0.9]], running=[False, True]), 1) is False
    c = curves([[0.9, 0.9], [0.1, 0.1]], steps=[[1, 3], [1, 3]], max_step=3, running=[False, True])
    assert rule.should_stop(c, 1) is False  # rung 3 is max_step: no rung; rung 1 decided at its first report


def test_hyperband_assigns_brackets_deterministically_and_compares_within_one():
    rule = Hyperband(min_step=1, eta=3)
    assert rule.n_brackets(27) == 4 and rule.n_brackets(math.inf) == 1
    brackets = [rule.bracket(i, 27) for i in range(200)]
    assert brackets == [Hyperband().bracket(i, 27) for i in range(200)]
    assert set(brackets) == {0, 1, 2, 3}
    assert brackets.count(0) > brackets.count(3)  # more trials go to the aggressive bracket
    # trials of bracket 0 only: the last one is at rung 1 and worst
    ids = [i for i, b in enumerate(brackets) if b == 0][:3]
    rows = [[0.0]] * (ids[-1] + 1)
    rows = [list(r) for r in rows]
    rows[ids[0]], rows[ids[1]], rows[ids[2]] = [0.9], [0.8], [0.1]
    others = [i for i in range(ids[-1]) if i not in ids]
    for i in others:  # better trials of other brackets do not compete
        rows[i] = [1.0]
    running = [i == ids[2] for i in range(len(rows))]
    c = curves(rows, running=running)
    assert rule.should_stop(c, ids[2]) is True
    rows[ids[2]] = [0.95]  # 3 values, eta 3: only the best continues
    assert rule.should_stop(curves(rows, running=running), ids[2]) is False


def test_median_matches_optunas_median_pruner_semantics():
    rule = Median(n_startup_trials=2, n_warmup_steps=1)
    done = [[0.5, 0.6, 0.7], [0.3, 0.4, 0.5], [0.1, 0.2, 0.3]]
    # median at step 2 of the finished trials: 0.4; best so far 0.45 -> continue, 0.35 -> stop
    assert rule.should_stop(curves(done + [[0.2, 0.45]], running=[False] * 3 + [True]), 3) is False
    assert rule.should_stop(curves(done + [[0.35, 0.3]], running=[False] * 3 + [True]), 3) is True
    # warm-up: step 1 < 1 is false, so step 0 would be exempt; here step 1 compares (median 0.3)
    assert rule.should_stop(curves(done + [[0.25]], running=[False] * 3 + [True]), 3) is True
    # even count: linear interpolation between 0.4 and 0.2 -> 0.3 at step 2 of two finished trials
    two = [[0.3, 0.4], [0.1, 0.2]]
    assert rule.should_stop(curves(two + [[0.0, 0.31]], running=[False, False, True]), 2) is False
    assert rule.should_stop(curves(two + [[0.0, 0.29]], running=[False, False, True]), 2) is True


def test_median_waits_for_startup_trials_and_ignores_running_and_stopped_ones():
    rule = Median(n_startup_trials=2)
    c = curves([[0.9], [0.9], [0.1]], running=[False, True, True])
    assert rule.should_stop(c, 2) is False  # one finished trial < 2
    c = curves([[0.9], [0.9], [0.1]], stopped=[False, True, False], running=[False, False, True])
    assert rule.should_stop(c, 2) is False
    c = curves([[0.9], [0.9], [0.1]], running=[False, False, True])
    assert rule.should_stop(c, 2) is True
    c = curves([[0.9, 0.9], [0.9, 0.9], [0.1]], steps=[[2, 3], [2, 3], [1]], running=[False, False, True])
    assert rule.should_stop(c, 2) is False  # no finished trial reported at step 1


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ASHA(min_step=0), "min_step must be a finite number > 0, got int 0"),
    (lambda: ASHA(eta=1), "eta must be a finite number > 1"),
    (lambda: ASHA(early_stopping_rate=-1), "early_stopping_rate must be an int >= 0"),
    (lambda: Hyperband(eta=float("nan")), "eta must be a finite number > 1"),
    (lambda: Median(n_startup_trials=1.5), "n_startup_trials must be an int >= 0, got float 1.5"),
    (lambda: Median(n_min_trials=0), "n_min_trials must be an int >= 1"),
    (lambda: check("wilcoxon"), "early_stopping must be one of ['asha', 'hyperband', 'median', 'model']"),
    (lambda: check(42), "should_stop(curves, index) -> bool"),
])
def test_bad_rule_parameters_raise_clear_errors(make, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        make()


def test_registry_resolves_names_and_passes_objects_through():
    assert isinstance(get("asha"), ASHA) and isinstance(get("hyperband"), Hyperband) and isinstance(get("median"), Median)
    rule = ASHA(eta=2)
    assert get(rule) is rule and get(None) is None and get("none") is None


def test_the_model_rule_is_the_default():
    from gpbo.early_stopping import DEFAULT_RULE, ModelBasedRule

    assert DEFAULT_RULE == "model" and isinstance(get("model"), ModelBasedRule)
