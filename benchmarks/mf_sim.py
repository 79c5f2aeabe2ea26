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

Lockstep: :func:`simulation` is the same run as a generator that yields each
report and takes the stop decision back, so :func:`simulate_lockstep` can
advance P independent runs (seeds) one report each and decide their P
reports in one call (gpbo's batched curve model,
``gpbo.Optimizer.should_stop_many``). Each run's virtual clock is its own;
only the order in which the host computes the runs changes.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Hashable, Iterator, Protocol, Sequence

__all__ = ["Event", "Job", "MFMethod", "simulate", "simulate_lockstep", "simulation"]


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
    run = simulation(trajectory, method, max_step=max_step, n_workers=n_workers, step_budget=step_budget,
                     on_event=on_event, on_finish=on_finish)
    try:
        event = next(run)
        while True:
            event = run.send(bool(method.report(event.job, event.step, event.value)))
    except StopIteration as done:
        return done.value


def simulate_lockstep(runs: Sequence[Generator[Event, bool, list[Job]]],
                      decide: Callable[[list[tuple[int, Event]]], list[bool]]) -> list[list[Job]]:
    """Advances independent :func:`simulation` runs together, one report each per round.

    Each round, ``decide`` gets ``(run index, its pending report)`` for every
    run still going and returns their stop decisions in that order (a run's
    method decides its own reports: ``decide`` may batch them). Returns each
    run's jobs. The result equals running each alone with the same
    decisions.
    """
    results: list[list[Job]] = [[] for _ in runs]
    pending: dict[int, Event] = {}

    def advance(k: int, answer: bool | None) -> None:
        try:
            pending[k] = next(runs[k]) if answer is None else runs[k].send(answer)
        except StopIteration as done:
            pending.pop(k, None)
            results[k] = done.value

    for k in range(len(runs)):
        advance(k, None)
    while pending:
        batch = sorted(pending.items())
        for (k, _), stop in zip(batch, decide(batch)):
            advance(k, bool(stop))
    return results


def simulation(trajectory: Callable[[dict[str, Any]], Iterator[tuple[float, float]]], method: MFMethod, *,
               max_step: int, n_workers: int, step_budget: int,
               on_event: Callable[[Event], None] | None = None,
               on_finish: Callable[[Job], None] | None = None) -> Generator[Event, bool, list[Job]]:
    """:func:`simulate` as a generator: yields each report and is sent the stop decision; returns the jobs.

    ``method.report`` is not called: whoever drives the generator decides
    (``method.ask`` and ``method.finish`` are called as in :func:`simulate`).
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
        stop = bool((yield Event(now, cum, r.job, step, float(value))))
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
