"""The report's metrics for the multi-outcome problems (see :mod:`benchmarks.mo_sweep` for the records).

- several objectives: the hypervolume of the feasible points evaluated so far
  (the records' ``hv``), higher is better; plotted as log10 of the gap to the
  known maximum hypervolume (lower is better) where the problem has one, else
  as the hypervolume itself;
- one objective with constraints: the best feasible value (the records'
  ``best_feasible``, +inf while no point is feasible), lower is better;
  plotted as log10 of its regret against the constrained optimum;
- constrained problems also get the feasible fraction: the share of a run's
  evaluations that were feasible.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.mo_problems import MOProblem

__all__ = ["HIGHER_BETTER", "feasible_fraction", "metric_curves", "plot_curves"]

HV, BEST = "hypervolume", "best feasible value"
HIGHER_BETTER = {HV: True, BEST: False}
_FLOOR = 1e-12


def _runs(runs, problem: str, budget: int, q: int, methods, seeds):
    """{method: [records of one complete run, in idx order]}."""
    out = {}
    for m in methods:
        rows = []
        for s in seeds:
            rec = runs.get((m, problem, s, budget, q), {})
            if len(rec) >= budget:
                rows.append([rec[i] for i in range(budget)])
        if rows:
            out[m] = rows
    return out


def metric_curves(runs, p: MOProblem, budget: int, q: int, methods, seeds):
    """({method: (seeds, budget) metric after each evaluation}, kind, note)."""
    field = "hv" if p.n_objectives > 1 else "best_feasible"
    cur = {m: np.array([[math.inf if r.get(field) is None else float(r[field]) for r in run] for run in rows])
           for m, rows in _runs(runs, p.name, budget, q, methods, seeds).items()}
    return cur, (HV if p.n_objectives > 1 else BEST), ""


def plot_curves(p: MOProblem, cur: dict, kind: str) -> tuple[dict, str]:
    """The regret-style curves the plot shows, and their label."""
    if kind == HV and p.max_hv:
        return {m: np.log10(np.maximum(p.max_hv - c, _FLOOR)) for m, c in cur.items()}, "log10 HV gap to the max"
    if kind == BEST and math.isfinite(p.optimum):
        return {m: np.log10(np.maximum(c - p.optimum, _FLOOR)) for m, c in cur.items()}, "log10 regret (feasible)"
    return cur, kind


def feasible_fraction(runs, p: MOProblem, budget: int, q: int, methods, seeds) -> dict[str, np.ndarray]:
    """{method: (seeds,) share of feasible evaluations}, for constrained problems ({} otherwise)."""
    if not p.n_constraints:
        return {}
    return {m: np.array([np.mean([bool(r["feasible"]) for r in run]) for run in rows])
            for m, rows in _runs(runs, p.name, budget, q, methods, seeds).items()}
