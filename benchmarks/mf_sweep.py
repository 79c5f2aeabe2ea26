"""The sweep's multi-fidelity runs (``--problems mf``): one simulated run per (method, problem, seed, workers).

    python -m benchmarks.sweep --problems mf --seeds 16 --workers 1,4,16 --budget 30
    python -m benchmarks.sweep --problems mf_lcbench_3945 --methods random,asha --seeds 2 --workers 4 --budget 10

Called by :mod:`benchmarks.sweep` when every problem is multi-fidelity
(:mod:`benchmarks.mf_problems`). ``--budget`` counts full trainings: a run
stops after ``budget * max_step`` steps (LCBench: 30 x 52 = 1,560 epochs).
Each run is :func:`benchmarks.mf_sim.simulation` with ``W`` workers on the
problem's virtual clock. gpbo's runs of one (method, problem, W) go in
lockstep, up to ``--lockstep`` seeds at once (default 16), their stop
decisions batched over the seeds (:func:`run_group`); the other methods run
one seed at a time.

``OUT/results.jsonl`` is append-only, one JSON object a line:
- ``"kind": "job"``, one per ended job: ``method, problem, seed, workers,
  budget`` (steps), ``max_step``, ``attempt``, ``job``, ``params``, ``start_step``,
  ``steps`` (its last step), ``values`` (one per step run), ``t_start``,
  ``t_end`` (virtual seconds), ``stopped``;
- ``"kind": "run"``, when a run is complete: the same key, ``attempt``,
  ``optimum`` (null if unknown), ``trace``: ``[cum_steps, time, best]`` at
  each improvement of ``best``, the lowest value of a job that reached
  ``max_step`` (the metric's incumbent), ``cum_steps`` and ``time`` at the
  end, ``n_jobs``, ``n_full`` (jobs that reached max_step), ``t_real`` (real
  seconds; for a lockstep group, the group's over its size).
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
from typing import Generator

from benchmarks import mf_methods as MM
from benchmarks.mf_problems import MFProblem
from benchmarks.mf_sim import Event, Job, simulate_lockstep, simulation
from benchmarks.report import parse_records

__all__ = ["MFStore", "run_all", "run_group", "run_one", "trace_value"]

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


class _Run:
    """One simulated run (``budget`` full trainings): its method, trace and job lines as its jobs end."""

    def __init__(self, method: str, problem: MFProblem, seed: int, workers: int, budget: int, store: MFStore):
        self.problem, self.store = problem, store
        self.base = {"method": method, "problem": problem.name, "seed": seed, "workers": workers,
                     "budget": budget * problem.max_step,
                     "max_step": problem.max_step, "attempt": uuid.uuid4().hex[:12]}
        self.trace: list[list[float]] = []
        self.best, self.cum = math.inf, 0
        self.method = MM.make(method, problem, seed)

    def on_event(self, e: Event) -> None:
        self.cum = e.cum_steps
        if e.step == self.problem.max_step and math.isfinite(e.value) and e.value < self.best:
            self.best = e.value
            self.trace.append([e.cum_steps, e.time, self.best])

    def on_finish(self, j: Job) -> None:
        self.store.write({"kind": "job", **self.base, "job": j.id, "params": j.params, "start_step": j.start_step,
                          "steps": j.steps[-1] if j.steps else None, "values": [_fin(v) for v in j.values],
                          "t_start": j.t_start, "t_end": j.t_end, "stopped": j.stopped})

    def simulation(self) -> Generator[Event, bool, list[Job]]:
        return simulation(self.problem.trajectory, self.method, max_step=self.problem.max_step,
                          n_workers=self.base["workers"], step_budget=self.base["budget"],
                          on_event=self.on_event, on_finish=self.on_finish)

    def close(self, jobs: list[Job], t_real: float) -> dict:
        """Writes and returns the run line."""
        if hasattr(self.method, "close"):
            self.method.close()
        opt = self.problem.reference()
        rec = {"kind": "run", **self.base, "optimum": _fin(opt), "trace": self.trace,
               "cum_steps": self.cum,
               "time": max((j.t_end for j in jobs), default=0.0), "n_jobs": len(jobs),
               "n_full": sum(bool(j.steps) and j.steps[-1] == self.problem.max_step for j in jobs),
               "t_real": t_real}
        self.store.write(rec)
        return rec


def run_group(method: str, problem: MFProblem, seeds: list[int], workers: int, budget: int,
              store: MFStore) -> list[dict]:
    """The runs of ``seeds`` in lockstep (:func:`benchmarks.mf_sim.simulate_lockstep`); returns their run lines.

    A method whose class has ``report_many`` (gpbo's: one batched curve-model
    decision for all the runs) decides each round's reports in one call; the
    others one at a time. ``t_real`` is the group's real time over its size.
    """
    t0 = time.perf_counter()
    runs = [_Run(method, problem, seed, workers, budget, store) for seed in seeds]
    try:
        many = getattr(type(runs[0].method), "report_many", None)

        def decide(batch: list[tuple[int, Event]]) -> list[bool]:
            reports = [(runs[k].method, e.job, e.step, e.value) for k, e in batch]
            if callable(many):
                return many(reports)
            return [bool(m.report(job, step, value)) for m, job, step, value in reports]

        results = simulate_lockstep([r.simulation() for r in runs], decide)
    except BaseException:
        for r in runs:
            if hasattr(r.method, "close"):
                r.method.close()
        raise
    t_real = (time.perf_counter() - t0) / len(runs)
    return [r.close(jobs, t_real) for r, jobs in zip(runs, results)]


def run_one(method: str, problem: MFProblem, seed: int, workers: int, budget: int, store: MFStore) -> dict:
    """One simulated run (``budget`` full trainings); writes its job lines and its run line, returns the latter."""
    return run_group(method, problem, [seed], workers, budget, store)[0]


def run_all(problems: list[MFProblem], methods: list[str], seeds: list[int], workers: list[int], budget: int,
            out: Path, lockstep: int = 16) -> dict:
    """Every run not yet in ``out/results.jsonl``; returns ``{"skipped_methods": {m: why}}``.

    The seeds of one (method, problem, workers) run in lockstep groups of up to
    ``lockstep`` (:func:`run_group`) when the method batches its decisions
    (gpbo's), one at a time otherwise.
    """
    from tqdm import tqdm

    skipped = {m: why for m in methods if (why := MM.unavailable(m))}
    for m, why in skipped.items():
        print(f"sweep: skipping {m}: {why}", file=sys.stderr, flush=True)
    store = MFStore(out / "results.jsonl")
    groups: list[tuple[str, MFProblem, list[int], int]] = []
    for w in workers:
        for p in problems:
            for m in methods:
                if m in skipped:
                    continue
                left = [s for s in seeds if (m, p.name, s, w, budget * p.max_step) not in store.runs]
                size = lockstep if m in MM.BATCHED else 1
                groups += [(m, p, left[i : i + size], w) for i in range(0, len(left), size)]
    total = len(seeds) * len(workers) * len(problems) * (len(methods) - len(skipped))
    with tqdm(total=total, initial=total - sum(len(g[2]) for g in groups), desc="runs") as bar:
        for m, p, group, w in groups:
            bar.set_postfix_str(f"{m} {p.name} seeds {group[0]}-{group[-1]} W={w}")
            run_group(m, p, group, w, budget, store)
            bar.update(len(group))
    store.close()
    return {"skipped_methods": skipped}
