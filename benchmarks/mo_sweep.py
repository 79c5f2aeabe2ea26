"""The sweep's multi-outcome runs (``--problems mo``): evaluation, the metric, the two runners.

Called by :mod:`benchmarks.sweep` for every :class:`benchmarks.mo_problems.MOProblem`.
Protocol: ``2 (d + 1)`` scrambled-Sobol initial points (the same points for
gpbo and BoTorch), then batches of q (default 4).

Each JSONL record (one evaluation) holds, beside the sweep's usual fields
(``method, problem, seed, idx, budget, q, params, t_suggest, t_eval``):
- ``outcomes``: the O outcomes in the engine's convention (objectives
  maximised, then constraints feasible iff <= 0), ``null`` for a failed
  evaluation;
- ``feasible``: finite and every constraint <= 0;
- several objectives: ``hv``, the hypervolume of the feasible points
  evaluated so far (this one included) above the problem's reference point
  (:func:`gpbo.pareto.hypervolume`);
- one objective: ``best_feasible``, the lowest objective value (in the
  problem's own, minimised units) among the feasible points so far, ``null``
  while there is none.
A rerun after a kill replays the recorded evaluations, as for the
single-objective sweep.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from benchmarks import mo_methods as MM
from benchmarks.mo_problems import MOProblem, evaluate_params
from gpbo.pareto import hypervolume

__all__ = ["feasible_mask", "metric", "metric_curve", "n_init", "run_gpbo_group", "run_sequential"]


def n_init(problem: MOProblem, budget: int) -> int:
    return min(budget, 2 * (len(problem.params) + 1))


def feasible_mask(problem: MOProblem, Y: torch.Tensor) -> torch.Tensor:
    """``Y (..., n, O)`` (NaN rows = failures) -> ``(..., n)`` bool."""
    ok = Y.isfinite().all(-1)
    if problem.n_constraints:
        ok = ok & (Y[..., problem.n_objectives:].nan_to_num(nan=1.0) <= 0).all(-1)
    return ok


def metric_curve(problem: MOProblem, Y: torch.Tensor) -> torch.Tensor:
    """The metric after each of n evaluations: ``Y (n, O)`` -> ``(n,)``.

    Hypervolume of the feasible points among the first i + 1 (several
    objectives), or the best feasible objective value in its own units, +inf
    while none is feasible (one objective). One batched call over the prefixes.
    """
    n = Y.shape[0]
    prefix = torch.ones(n, n, dtype=torch.bool).tril()  # (n, n): row i holds points 0..i
    return _metric_of(problem, Y.expand(n, *Y.shape), feasible_mask(problem, Y).unsqueeze(0) & prefix)


def _metric_of(problem: MOProblem, Y: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """The metric of the points ``ok (..., n)`` among ``Y (..., n, O)``: ``(...)``."""
    m = problem.n_objectives
    if m == 1:
        f = (-Y[..., 0]).nan_to_num(nan=math.inf)  # (..., n) minimised units
        return torch.where(ok, f, math.inf).amin(-1)
    ref = torch.tensor(problem.ref_point, dtype=Y.dtype)
    Yo = torch.where(ok.unsqueeze(-1), Y[..., :m].nan_to_num(nan=0.0), ref)  # (..., n, m)
    return hypervolume(Yo, ref, ok)


def metric(problem: MOProblem, history: list[dict]) -> dict:
    """The record's metric field after the evaluations ``history`` (records in idx order)."""
    Y = torch.tensor([r["outcomes"] if r["outcomes"] is not None else [math.nan] * problem.n_outcomes
                      for r in history], dtype=torch.float64)
    v = float(_metric_of(problem, Y, feasible_mask(problem, Y)))
    if problem.n_objectives == 1:
        return {"best_feasible": v if math.isfinite(v) else None}
    return {"hv": v}


def evaluate(problem: MOProblem, params: list[dict]) -> list[dict]:
    """One batched evaluation -> per point ``outcomes``, ``feasible``, ``t_eval``."""
    t0 = time.perf_counter()
    try:
        Y = evaluate_params(problem, params)  # (k, O)
    except Exception:  # noqa: BLE001 - a failing objective is a failed evaluation
        Y = torch.full((len(params), problem.n_outcomes), math.nan, dtype=torch.float64)
    t = (time.perf_counter() - t0) / max(1, len(params))
    ok = feasible_mask(problem, Y)
    return [{"outcomes": y.tolist() if bool(y.isfinite().all()) else None, "feasible": bool(f), "t_eval": t}
            for y, f in zip(Y, ok)]


def _write(store, key, problem, budget, idx, params, res, ts) -> dict:
    history = [store.done[key][i] for i in range(idx)] + [res]
    return store.write(key, idx, budget, params, {**res, **metric(problem, history)}, ts)


def _outcomes(problem: MOProblem, rec: dict) -> list[float]:
    return rec["outcomes"] if rec["outcomes"] is not None else [math.nan] * problem.n_outcomes


def run_sequential(method: str, problem: MOProblem, seed: int, budget: int, q: int, store, bar) -> None:
    """One run of a sequential method (ask k, evaluate, tell k)."""
    key = (method, problem.name, seed)
    rec = store.done.get(key, {})
    n0 = n_init(problem, budget)
    m = MM.make(method, problem, seed, n0, q)
    n = 0
    while n in rec and n < budget:  # replay the recorded prefix
        n += 1
    if n:
        m.tell([rec[i]["params"] for i in range(n)], [_outcomes(problem, rec[i]) for i in range(n)])
    while n < budget:
        k = n0 - n if n < n0 else min(q, budget - n)  # the initial design is one batch, as for gpbo
        t0 = time.perf_counter()
        batch = m.ask(k)
        ts = (time.perf_counter() - t0) / k
        recs = [_write(store, key, problem, budget, n + j, p, r, ts)
                for j, (p, r) in enumerate(zip(batch, evaluate(problem, batch)))]
        bar.update(k)
        m.tell(batch, [_outcomes(problem, r) for r in recs])
        n += k


def run_gpbo_group(method: str, problem: MOProblem, seeds: list[int], budget: int, q: int, store, bar,
                   device: str, dtype: torch.dtype) -> int:
    """All seeds of one problem through ONE ``gpbo.engine.suggest`` call per iteration.

    Y is (P, n, O) with ``settings.outcomes`` = the problem's objectives,
    constraints and reference point (the engine's multi-outcome convention, `gpbo.outcomes`).
    Returns the number of ``suggest`` calls.
    """
    from gpbo import engine

    space, P = problem.space(), len(seeds)
    keys = [(method, problem.name, s) for s in seeds]
    X: list[list[list[float]]] = [[] for _ in seeds]
    obs: list[list[list[float]]] = [[] for _ in seeds]

    def take(r: int, start: int, params: list[dict], ts: float) -> None:
        done = store.done.get(keys[r], {})
        todo = [j for j in range(len(params)) if start + j not in done]
        fresh = dict(zip(todo, evaluate(problem, [params[j] for j in todo]))) if todo else {}
        for j in range(len(params)):
            rec = done.get(start + j) or _write(store, keys[r], problem, budget, start + j, params[j], fresh[j], ts)
            X[r].append(space.encode([rec["params"]])[0].tolist())
            obs[r].append(_outcomes(problem, rec))
        bar.update(len(todo))

    n0 = n_init(problem, budget)
    for r, s in enumerate(seeds):
        take(r, 0, MM.initial_design(problem, n0, s), 0.0)
    n, calls, model = n0, 0, None
    settings = MM.gpbo_settings(method, problem)
    while n < budget:
        k = min(q, budget - n)
        if all(n + j in store.done.get(key, {}) for key in keys for j in range(k)):
            for r in range(P):  # fully recorded batch: replay, no engine call
                take(r, n, [store.done[keys[r]][n + j]["params"] for j in range(k)], 0.0)
            n += k
            continue
        Xt = torch.tensor(X, dtype=dtype, device=device)  # (P, n, d)
        Yt = torch.tensor(np.stack([MM.impute(problem, o) for o in obs]), dtype=dtype, device=device)  # (P, n, O)
        t0 = time.perf_counter()
        s = engine.suggest(Xt, Yt, dims=space.dims, q=k, seed=n, warm_start=model, settings=settings)
        cand = s.candidates.cpu().to(torch.float64)  # (P, k, d)
        ts = (time.perf_counter() - t0) / (P * k)
        calls, model = calls + 1, getattr(s, "model", None)
        for r in range(P):
            take(r, n, space.decode(cand[r]), ts)
        n += k
    return calls
