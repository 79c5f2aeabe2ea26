"""End to end: multi-objective and constrained studies through the REAL engine.

The facade, its bookkeeping and the engine's multi-output acquisitions
(qLogNEHVI with ParEGO turns, the constrained single-objective default)
together, on small studies. The facade alone is tested against a fake
engine in tests/test_multi_objective.py.
"""

from __future__ import annotations

import math
import warnings

import pytest

import gpbo
from gpbo.space import Real

BOX = {"x": Real(0.0, 1.0), "y": Real(0.0, 1.0)}
FAST = {"n_initial": 5, "n_raw": 64, "n_restarts": 2}


def branin_currin(p: dict) -> dict:
    """BraninCurrin (both minimised here) and a disc constraint."""
    x0, x1 = p["x"], p["y"]
    u, v = 15 * x0 - 5, 15 * x1
    branin = (v - 5.1 / (4 * math.pi**2) * u**2 + 5 / math.pi * u - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(u) + 10
    factor = 1 - math.exp(-1 / (2 * x1)) if x1 > 0 else 1.0
    currin = factor * (2300 * x0**3 + 1900 * x0**2 + 2092 * x0 + 60) / (100 * x0**3 + 500 * x0**2 + 4 * x0 + 20)
    return {"branin": branin, "currin": currin, "disc": (x0 - 0.5) ** 2 + (x1 - 0.5) ** 2}


def test_minimize_two_objectives_and_a_constraint_uses_the_engine():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no Sobol fallback after a failed fit
        res = gpbo.minimize(branin_currin, BOX, 10, seed=0, settings=FAST,
                            objectives={"branin": "minimize", "currin": "minimize"},
                            constraints={"disc": ("<=", 0.2)})
    opt = res.optimizer
    assert opt._n_suggest == 5 and opt._theta is not None
    assert res.pareto_front and all(t.values["disc"] <= 0.2 for t in res.pareto_front)
    assert gpbo.plot.hypervolume(res).axes[0].get_lines()[0].get_ydata()[-1] > 0


def test_single_objective_with_constraints_finds_a_feasible_best():
    res = gpbo.minimize(lambda p: {"loss": branin_currin(p)["branin"], "disc": branin_currin(p)["disc"]}, BOX, 10,
                        seed=0, settings=FAST, objectives={"loss": "minimize"}, constraints={"disc": ("<=", 0.1)})
    assert res.best_value is not None and res.optimizer.best.values["disc"] <= 0.1


def test_a_restored_state_continues_with_the_same_suggestions():
    opt = gpbo.Optimizer(BOX, seed=1, settings=FAST, objectives={"branin": "minimize", "currin": "minimize"},
                         constraints={"disc": ("<=", 0.2)})
    for _ in range(7):
        trial = opt.ask()
        opt.tell(trial, branin_currin(trial.params))
    back = gpbo.Optimizer.from_state_dict(opt.state_dict())
    assert back.ask(2) == opt.ask(2)


def test_the_optuna_sampler_runs_a_constrained_multi_objective_study():
    optuna = pytest.importorskip("optuna")
    from gpbo.integrations.optuna import GPBOSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = GPBOSampler(seed=0, n_startup_trials=5, settings=FAST,
                          constraints_func=lambda t: [t.user_attrs["disc"] - 0.2])

    def objective(trial):
        out = branin_currin({"x": trial.suggest_float("x", 0, 1), "y": trial.suggest_float("y", 0, 1)})
        trial.set_user_attr("disc", out["disc"])
        return out["branin"], out["currin"]

    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=8)
    assert len(study.trials) == 8 and study.best_trials
