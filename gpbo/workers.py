"""Evaluating trials for `minimize`: inline, in threads, or on any Executor.

`run_trials` keeps up to ``n_workers`` trials in flight. As soon as one
finishes it is told, and the freed worker gets a new suggestion at once; the
trials still in flight are RUNNING, so the engine treats them as pending
points (asynchronous, pending-aware BO).

Per-trial timeouts: Python cannot kill a thread, and a process would need a
picklable objective, so a trial past ``timeout_per_trial`` is *abandoned*:
it is told FAILED with a `TrialTimeoutError`, its result is ignored when it
arrives, and the loop goes on. Without an executor such trials run in their
own daemon threads (`ThreadPerTrialExecutor`), so an abandoned call never
blocks a worker slot or the interpreter's exit. On a user executor the clock
starts at submission and an abandoned call keeps its executor worker busy
until it returns.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from gpbo.errors import InvalidArgumentError, InvalidTrialError, TrialTimeoutError
from gpbo.optimizer import Optimizer
from gpbo.reporting import StepBudget, TrialHandle
from gpbo.trial import Trial

__all__ = ["InlineExecutor", "ThreadPerTrialExecutor", "TrialTimeoutError", "run_trials"]


class InlineExecutor(concurrent.futures.Executor):
    """Runs each call in the calling thread at submission; returns a finished Future."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        _run_into(future, fn, args, kwargs)
        return future


class ThreadPerTrialExecutor(concurrent.futures.Executor):
    """Runs each call in a new daemon thread, so a call can be abandoned."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                _run_into(future, fn, args, kwargs)

        threading.Thread(target=run, name="gpbo-trial", daemon=True).start()
        return future


@dataclasses.dataclass(frozen=True)
class _InFlight:
    trial: Trial
    deadline: float  # time.monotonic() past which the trial is abandoned


def run_trials(
    opt: Optimizer,
    fn: Callable[[dict[str, Any]], Any],
    n_trials: int | None,
    *,
    executor: concurrent.futures.Executor,
    n_workers: int,
    timeout: float | None,
    on_told: Callable[[Trial], None],
    reporting: bool = False,
    budget: StepBudget | None = None,
) -> None:
    """Asks, evaluates and tells ``n_trials`` trials, ``n_workers`` at a time.

    Every `Exception` of ``fn``, and a timeout, make a FAILED trial and the
    loop goes on; a `BaseException` that is not an `Exception`
    (`KeyboardInterrupt`, `SystemExit`) is raised at once, and so is an
    exception of ``on_told`` (how a callback stops a study). When the loop
    raises, the trials still in flight stay RUNNING and ``opt`` is closed, so
    with storage the next `Optimizer.ask` on the study hands them out again.

    Args:
        opt: The optimizer to ask and tell.
        fn: Objective, called as ``fn(params)`` on ``executor``.
        n_trials: Trials to evaluate; None: until ``budget`` is spent.
        executor: Where ``fn`` runs; ``submit`` must return a
            `concurrent.futures.Future`.
        n_workers: Most trials in flight at once.
        timeout: Seconds after which a trial is abandoned; None waits forever.
        on_told: Called with each told trial.
        reporting: Call ``fn(params, handle)`` with a `gpbo.reporting.TrialHandle`.
        budget: No new trial starts once it is spent (its trials' handles
            then answer ``should_stop() == True``).
    """
    limit = math.inf if n_trials is None else n_trials
    in_flight: dict[concurrent.futures.Future, _InFlight] = {}
    n_asked = 0
    try:
        while (n_asked < limit and not _spent(budget)) or in_flight:
            while n_asked < limit and len(in_flight) < n_workers and not _spent(budget):
                trial = opt.ask()
                n_asked += 1
                if budget is not None:
                    budget.add(trial.id)
                deadline = time.monotonic() + (math.inf if timeout is None else timeout)
                handle = TrialHandle(opt, trial, budget) if reporting else None
                in_flight[_submit(executor, fn, trial, handle)] = _InFlight(trial, deadline)
            for future in _finished(in_flight):
                item = in_flight.pop(future)
                on_told(_tell(opt, item.trial, _value(future, item, timeout)))
    except BaseException:
        for future in in_flight:
            future.cancel()
        opt.close()
        raise


def _spent(budget: StepBudget | None) -> bool:
    return budget is not None and budget.spent()


def _submit(executor: Any, fn: Callable[..., Any], trial: Trial, handle: TrialHandle | None) -> concurrent.futures.Future:
    args = (dict(trial.params),) if handle is None else (dict(trial.params), handle)
    future = executor.submit(fn, *args)
    if not isinstance(future, concurrent.futures.Future):
        raise InvalidArgumentError(
            f"executor.submit must return a concurrent.futures.Future, got {type(future).__name__} {future!r:.200}"
        )
    return future


def _finished(in_flight: dict[concurrent.futures.Future, _InFlight]) -> list[concurrent.futures.Future]:
    """Waits until a trial finishes or passes its deadline; returns those, in trial id order."""
    next_deadline = min(item.deadline for item in in_flight.values())
    wait = None if next_deadline == math.inf else max(0.0, next_deadline - time.monotonic())
    done, _ = concurrent.futures.wait(in_flight, timeout=wait, return_when=concurrent.futures.FIRST_COMPLETED)
    now = time.monotonic()
    ready = [f for f in in_flight if f in done or in_flight[f].deadline <= now]
    return sorted(ready, key=lambda f: in_flight[f].trial.id)


def _value(future: concurrent.futures.Future, item: _InFlight, timeout: float | None) -> Any:
    """The result of a finished future, its exception, or a TimeoutError if it is not done."""
    if not future.done():
        future.cancel()
        return TrialTimeoutError(f"trial {item.trial.id} ran longer than timeout_per_trial={timeout} s")
    if future.cancelled():
        return concurrent.futures.CancelledError(f"the executor cancelled trial {item.trial.id}")
    return future.exception() or future.result()


def _tell(opt: Optimizer, trial: Trial, value: Any) -> Trial:
    """Tells ``value`` (an `Exception` is a FAILED trial); raises any other `BaseException`."""
    if isinstance(value, BaseException) and not isinstance(value, Exception):
        raise value
    try:
        return opt.tell(trial, value)
    except InvalidTrialError as exc:  # the objective returned a non-number: record it, then raise
        opt.tell(trial, exc)
        raise


def _run_into(future: concurrent.futures.Future, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """Calls ``fn`` and stores its result or exception in ``future``."""
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - handed to the loop, which decides
        future.set_exception(exc)
    else:
        future.set_result(result)
