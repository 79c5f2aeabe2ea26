"""The sweep's multi-fidelity runs (``--problems mf``): one simulated run per (method, problem, seed, workers).

    python -m benchmarks.sweep --problems mf --seeds 16 --workers 1,4,16 --budget 30
    python -m benchmarks.sweep --problems mf_lcbench_3945 --methods random,asha --seeds 2 --workers 4 --budget 10

Called by :mod:`benchmarks.sweep` when every problem is multi-fidelity
(:mod:`benchmarks.mf_problems`). ``--budget`` counts full trainings: a run
stops after ``budget * max_step`` steps (LCBench: 30 x 52 = 1,560 epochs).
Each run is :func:`benchmarks.mf_sim.simulate` with ``W`` workers on the
problem's virtual clock.

``OUT/results.jsonl`` is append-only, one JSON object a line:
- ``"kind": "job"``, one per ended job: ``method, problem, seed, workers,
  budget`` (steps), ``max_step``, ``attempt``, ``job``, ``params``, ``start_step``,
  ``steps`` (its last step), ``values`` (one per step run), ``t_start``,
  ``t_end`` (virtual seconds), ``stopped``;
- ``"kind": "run"``, when a run is complete: the same key, ``attempt``,
  ``optimum`` (null if unknown), ``trace``: ``[cum_steps, time, best]`` at
  each improvement of ``best``, the lowest value of a job that reached
  ``max_step`` (the metric's incumbent), ``cum_steps`` and ``time`` at the
  end, ``n_jobs``, ``n_full`` (jobs that reached max_step), ``t_real``.
Resuming is per run: rerunning the command skips every run that has its
``run`` line and reruns the others from the start (the job lines of an
unfinished attempt are ignored: a simulated LCBench run takes seconds).
"""

from __future__ import annotations

import json
import math
import sys
import time
import uuid
from pathlib import Path

from benchmarks import mf_methods as MM
from benchmarks.mf_problems import MFProblem
from benchmarks.mf_sim import Event, Job, simulate
from benchmarks.report import parse_records

__all__ = ["MFStore", "run_one", "run_all", "trace_value"]

Key = tuple[str, str, int, int, int]  # (method, problem, seed, workers, step budget)


def _fin(v: float) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def trace_value(trace: list[list[float]], x: float, axis: int) -> float:
    """The incumbent (``best``) of a run's trace once ``axis`` (0: cumulative steps, 1: time) reached ``x``;
    +inf before any job reached max_step."""
    best = math.inf
    for point in trace:
        if point[axis] <= x:
            best = min(best, point[2])
    return best


class MFStore:
    """The append-only JSONL file and the complete runs in it."""

    def __init__(self, path: Path):
        self.path = path
        self.runs: dict[Key, dict] = {}
        if path.exists():
            for r in parse_records(path.read_text().splitlines()):
                if r.get("kind") == "run":
                    self.runs.setdefault(self.key(r), r)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with path.open("a") as fh:
                fh.write("\n")
        self.fh = path.open("a")

    @staticmethod
    def key(r: dict) -> Key:
        return (r["method"], r["problem"], r["seed"], r["workers"], r["budget"])

    def write(self, rec: dict) -> None:
        self.fh.write(json.dumps(rec) + "\n")
        self.fh.flush()
        if rec["kind"] == "run":
            self.runs[self.key(rec)] = rec

    def close(self) -> None:
        self.fh.close()


def run_one(method: str, problem: MFProblem, seed: int, workers: int, budget: int, store: MFStore) -> dict:
    """One simulated run (``budget`` full trainings); writes its job lines and its run line, returns the latter."""
    base = {"method": method, "problem": problem.name, "seed": seed, "workers": workers,
            "budget": budget * problem.max_step,
            "max_step": problem.max_step, "attempt": uuid.uuid4().hex[:12]}
    trace: list[list[float]] = []
    best, cum = math.inf, 0

    def on_event(e: Event) -> None:
        nonlocal best, cum
        cum = e.cum_steps
        if e.step == problem.max_step and math.isfinite(e.value) and e.value < best:
            best = e.value
            trace.append([e.cum_steps, e.time, best])

    def on_finish(j: Job) -> None:
        store.write({"kind": "job", **base, "job": j.id, "params": j.params, "start_step": j.start_step,
                     "steps": j.steps[-1] if j.steps else None, "values": [_fin(v) for v in j.values],
                     "t_start": j.t_start, "t_end": j.t_end, "stopped": j.stopped})

    t0 = time.perf_counter()
    m = MM.make(method, problem, seed)
    try:
        jobs = simulate(problem.trajectory, m, max_step=problem.max_step, n_workers=workers,
                        step_budget=base["budget"], on_event=on_event, on_finish=on_finish)
    finally:
        if hasattr(m, "close"):
            m.close()
    opt = problem.reference()
    rec = {"kind": "run", **base, "optimum": _fin(opt), "trace": trace,
           "cum_steps": cum,
           "time": max((j.t_end for j in jobs), default=0.0), "n_jobs": len(jobs),
           "n_full": sum(bool(j.steps) and j.steps[-1] == problem.max_step for j in jobs),
           "t_real": time.perf_counter() - t0}
    store.write(rec)
    return rec


def run_all(problems: list[MFProblem], methods: list[str], seeds: list[int], workers: list[int], budget: int,
            out: Path) -> dict:
    """Every run not yet in ``out/results.jsonl``, seed by seed; returns ``{"skipped_methods": {m: why}}``."""
    from tqdm import tqdm

    skipped = {m: why for m in methods if (why := MM.unavailable(m))}
    for m, why in skipped.items():
        print(f"sweep: skipping {m}: {why}", file=sys.stderr, flush=True)
    todo = [(m, p, s, w) for s in seeds for w in workers for p in problems for m in methods if m not in skipped]
    store = MFStore(out / "results.jsonl")
    left = [t for t in todo if (t[0], t[1].name, t[2], t[3], budget * t[1].max_step) not in store.runs]
    with tqdm(total=len(todo), initial=len(todo) - len(left), desc="runs") as bar:
        for m, p, s, w in left:
            bar.set_postfix_str(f"{m} {p.name} seed {s} W={w}")
            run_one(m, p, s, w, budget, store)
            bar.update(1)
    store.close()
    return {"skipped_methods": skipped}
