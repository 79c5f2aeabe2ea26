"""A simulated asynchronous multi-worker backend with a virtual clock (no sleeping), as Syne Tune's simulator.

``W`` workers train configurations step by step. An event queue (a heap of
``(virtual time, sequence number, worker)``) holds, for each busy worker, the
moment its current step ends; each step advances that worker's clock by the
step's cost (``dt`` from :meth:`benchmarks.mf_problems.MFProblem.trajectory`:
the surrogate's epoch time for LCBench). Popping an event is a report at that
virtual time: the method sees ``(job, step, value)`` and says whether to stop;
a job ends when stopped, at the step the method asked for (``job.stop_at``)
or at ``max_step``. A freed worker asks the method for its next job at the
same virtual time. Ties are broken by the order in which the steps were
scheduled. Nothing sleeps: the real time is only what the methods and the
problem's computations take.

Resuming: a job names a ``key`` (the configuration's identity). A job whose
key already trained to step b (and is not running elsewhere) continues from
b + 1, paying only the new steps, as a checkpointed training run would (how
SMAC's and DEHB's successive-halving promotions are run).

The run ends when the cumulative steps reach ``step_budget`` (running jobs
are cut there) or when every worker is idle and the method has nothing to
start. Method protocol (:class:`MFMethod`): ``ask() -> Job | None``,
``report(job, step, value) -> bool`` (True: stop now) and
``finish(job, stopped)`` (once per job, after its last report).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterator, Protocol

__all__ = ["Event", "Job", "MFMethod", "simulate"]


@dataclass
class Job:
    """One training job: run ``params`` up to ``stop_at`` (default: max_step) unless stopped earlier."""

    params: dict[str, Any]
    key: Hashable = None
    stop_at: int | None = None
    tag: Any = None  # the method's own handle (an Optuna trial, a SMAC TrialInfo, ...)
    id: int = -1  # set by the simulator, 0, 1, ... in start order
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    start_step: int = 1
    t_start: float = 0.0
    t_end: float = math.nan
    worker: int = -1
    stopped: bool = False


@dataclass(frozen=True)
class Event:
    """A report: ``job`` reached ``step`` with ``value`` at virtual ``time``; ``cum_steps`` steps run so far in total."""

    time: float
    cum_steps: int
    job: Job
    step: int
    value: float


class MFMethod(Protocol):
    def ask(self) -> Job | None: ...

    def report(self, job: Job, step: int, value: float) -> bool: ...

    def finish(self, job: Job, stopped: bool) -> None: ...


@dataclass
class _Running:
    job: Job
    traj: Iterator[tuple[float, float]]
    pending: tuple[float, float] | None  # (value, dt) of the step in flight


def simulate(trajectory: Callable[[dict[str, Any]], Iterator[tuple[float, float]]], method: MFMethod, *,
             max_step: int, n_workers: int, step_budget: int,
             on_event: Callable[[Event], None] | None = None,
             on_finish: Callable[[Job], None] | None = None) -> list[Job]:
    """Runs ``method`` on ``n_workers`` simulated workers until ``step_budget`` steps; returns the jobs in start order.

    ``trajectory(params)`` yields ``(value, dt)`` per step from step 1; ``on_event`` sees every report and
    ``on_finish`` every ended job (both in virtual-time order).
    """
    heap: list[tuple[float, int, int]] = []  # (virtual end time of the step in flight, seq, worker)
    running: dict[int, _Running] = {}
    trained: dict[Hashable, tuple[int, list[float]]] = {}  # key -> (last step trained, its curve)
    jobs: list[Job] = []
    seq = cum = 0

    def schedule(w: int, now: float) -> None:
        nonlocal seq
        r = running[w]
        try:
            r.pending = next(r.traj)
        except StopIteration:  # the problem ended the curve early (cannot happen for a complete trajectory)
            r.pending = None
        if r.pending is None:
            end(w, now, stopped=False)
            return
        heapq.heappush(heap, (now + max(float(r.pending[1]), 0.0), seq, w))
        seq += 1

    def end(w: int, now: float, stopped: bool) -> None:
        r = running.pop(w)
        r.job.t_end, r.job.stopped = now, stopped
        if r.job.key is not None and r.job.steps and r.job.steps[-1] > trained.get(r.job.key, (0, []))[0]:
            before = trained.get(r.job.key, (0, []))[1][: r.job.start_step - 1]
            trained[r.job.key] = (r.job.steps[-1], before + r.job.values)  # the curve from step 1
        method.finish(r.job, stopped)
        if on_finish is not None:
            on_finish(r.job)

    def start(w: int, now: float) -> bool:
        job = method.ask()
        if job is None:
            return False
        job.id, job.worker, job.t_start = len(jobs), w, now
        jobs.append(job)
        busy = {r.job.key for r in running.values()}
        done, curve = trained.get(job.key, (0, [])) if job.key is not None and job.key not in busy else (0, [])
        job.start_step = done + 1
        traj = trajectory(job.params)
        for _ in range(done):  # fast-forward a checkpointed run: those steps are not paid again
            next(traj)
        running[w] = _Running(job, traj, None)
        target = min(job.stop_at or max_step, max_step)
        if done >= target:  # already trained that far: the checkpoint's value, no new step
            job.steps, job.values = [target], [curve[target - 1]]
            end(w, now, stopped=False)
            return True
        schedule(w, now)
        return True

    idle = list(range(n_workers))
    now = 0.0
    while True:
        while idle and cum < step_budget:
            if not start(idle[0], now):
                break
            if idle[0] not in running:  # a job that needed no training ended at once
                continue
            idle.pop(0)
        if not heap or cum >= step_budget:
            break
        now, _, w = heapq.heappop(heap)
        r = running[w]
        value, _ = r.pending
        step = r.job.start_step + len(r.job.steps)
        r.job.steps.append(step)
        r.job.values.append(float(value))
        cum += 1
        if on_event is not None:
            on_event(Event(now, cum, r.job, step, float(value)))
        stop = bool(method.report(r.job, step, float(value)))
        last = step >= min(r.job.stop_at or max_step, max_step)
        if stop or last or not math.isfinite(value):
            end(w, now, stopped=(stop or not math.isfinite(value)) and step < max_step)
            idle.append(w)
            idle.sort()
        else:
            schedule(w, now)
    for w in sorted(running, key=lambda w: running[w].job.id):  # cut by the budget
        end(w, now, stopped=True)
    return jobs
