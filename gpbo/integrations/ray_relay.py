"""Trial handles across Ray: a task's `RayTrialHandle` forwards each call to the driver's `TrialHandle`.

`gpbo.integrations.ray_executor.RayExecutor` swaps every `TrialHandle` it is
given for a `RayTrialHandle` (picklable, same surface: ``id``, ``params``,
``report``, ``should_stop``, ``steps``, ``last_step``). One `HandleRelay` per
executor carries the calls::

    Ray task                           mailbox actor (async)         driver: the relay's pump thread
    proxy.should_stop() ── call ────▶  queue the request ─────────▶ exchange() returns the queued requests;
                                                                      each runs on its real TrialHandle
    returns / raises ◀── its answer ─  resolve the waiting call ◀── the next exchange(answers) posts them

Every proxy call blocks its task until the driver has answered, so a task
returns only after all it reported is recorded, in its order; nothing is
retried, so nothing is recorded twice. The pump's ``exchange`` is a long
poll: it returns as soon as a request is queued, and the answers travel
with the next poll, so a call costs two actor round trips plus the work in
the driver. An exception of the real handle (an `InvalidTrialError` for a
step that goes backwards, ...) is raised in the task with its type and
message. Requests and answers cross the actor as pickled bytes, so data
that cannot be pickled or unpickled fails the one call, not the relay.

Threads: `HandleRelay.proxy`, `HandleRelay.release` and `HandleRelay.stop`
run in any thread, a Ray callback thread included (they make no Ray call);
the pump is one daemon thread that runs the requests one after another (the
real handles are thread-safe). An idle poll returns after `POLL_S` seconds,
so the pump sees `stop` within that time; a pump that ends for any reason
kills the mailbox, so no task waits for an answer for ever (its call raises
Ray's ``ActorDiedError`` instead).

A Ray task that is retried (``max_retries``, after its worker died) runs
the objective again with the same trial: reports at steps already recorded
then fail the trial, unless the objective resumes after ``trial.last_step``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable
from typing import Any

import torch

from gpbo.errors import GpboError, InvalidTrialError
from gpbo.integrations import require
from gpbo.reporting import TrialHandle

ray = require("ray", "ray")
import ray.cloudpickle as cloudpickle

__all__ = ["POLL_S", "HandleRelay", "RayTrialHandle", "answer"]

POLL_S = 0.25  # seconds an idle poll of the pump waits: the most `HandleRelay.stop` takes to act

# what a proxy may ask of the real handle: operation name -> function of (handle, *args)
_OPERATIONS: dict[str, Callable[..., Any]] = {
    "report": TrialHandle.report,
    "should_stop": TrialHandle.should_stop,
    "steps": TrialHandle.steps.fget,
    "last_step": TrialHandle.last_step.fget,
}


class RayTrialHandle:
    """A `gpbo.reporting.TrialHandle` as a Ray task sees it; each call is answered by the driver.

    Attributes:
        id: The trial id.
        params: Its parameters (a plain dict copy).
        key: Which handle of the relay this proxy stands for.
    """

    def __init__(self, mailbox: Any, key: int, trial_id: int, params: dict[str, Any]) -> None:
        self._mailbox, self.key = mailbox, key
        self.id, self.params = trial_id, dict(params)

    def __repr__(self) -> str:
        return f"RayTrialHandle(id={self.id}, params={self.params!r})"

    @property
    def steps(self) -> tuple[tuple[float, float], ...]:
        """The trial's curve as recorded in the driver: ``(step, value)`` pairs."""
        return self._ask("steps")

    @property
    def last_step(self) -> float | None:
        """The step of the last recorded report; None before the first."""
        return self._ask("last_step")

    def report(self, value: Any, step: Any) -> None:
        """Records ``value`` at ``step`` in the driver; returns once it is recorded (see `TrialHandle.report`).

        Raises:
            InvalidTrialError: As `TrialHandle.report`, or if ``value`` or
                ``step`` cannot be pickled.
        """
        self._ask("report", _portable(value), _portable(step))

    def should_stop(self) -> bool:
        """The driver's `TrialHandle.should_stop`; blocks until it answers."""
        return self._ask("should_stop")

    def _ask(self, operation: str, *args: Any) -> Any:
        try:
            payload = cloudpickle.dumps((operation, args))
        except Exception as exc:  # noqa: BLE001 - any pickling failure names the arguments
            raise InvalidTrialError(f"trial {self.id}: cannot send {operation}{args!r:.200} to the driver: {exc}") from exc
        ok, result = cloudpickle.loads(ray.get(self._mailbox.call.remote(self.key, payload)))
        if not ok:
            raise result
        return result


def _portable(value: Any) -> Any:
    """``value``, with a tensor moved to the CPU (the driver may have no GPU)."""
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value


def answer(handle: TrialHandle | None, payload: bytes) -> bytes:
    """Runs one pickled request ``(operation, args)`` on ``handle``; the pickled ``(True, result)`` or ``(False, exception)``.

    ``handle`` is None when its task has ended (the request then fails).
    Never raises: every failure becomes the answer.
    """
    try:
        operation, args = cloudpickle.loads(payload)
        if handle is None:
            raise InvalidTrialError(f"the Ray task that sent {operation}{args!r:.200} has ended; its trial handle is released")
        outcome = (True, _OPERATIONS[operation](handle, *args))
    except Exception as exc:  # noqa: BLE001 - raised again in the task
        outcome = (False, exc)
    try:
        return cloudpickle.dumps(outcome)
    except Exception as exc:  # noqa: BLE001 - e.g. an exception holding a lock
        return cloudpickle.dumps((False, GpboError(f"the driver's answer {outcome[1]!r:.200} cannot be pickled: {exc}")))


class _Mailbox:
    """The Ray actor between the proxies and the pump (async: one event loop, so no locks).

    At most one ``exchange`` runs at a time (the relay has one pump thread).
    """

    def __init__(self) -> None:
        self._queued: list[tuple[int, int, bytes]] = []  # (request id, handle key, pickled request)
        self._waiting: dict[int, asyncio.Future] = {}  # request id -> the answer its call awaits
        self._arrived = asyncio.Event()  # set while requests are queued
        self._ids = itertools.count()

    async def call(self, key: int, payload: bytes) -> bytes:
        """Queues a proxy's request and returns the driver's answer to it."""
        request_id = next(self._ids)
        self._waiting[request_id] = asyncio.get_running_loop().create_future()
        self._queued.append((request_id, key, payload))
        self._arrived.set()
        return await self._waiting[request_id]

    async def exchange(self, answers: list[tuple[int, bytes]], timeout: float) -> list[tuple[int, int, bytes]]:
        """Delivers ``(request id, answer)`` pairs, then waits up to ``timeout`` s for requests; hands over all queued ones."""
        for request_id, reply in answers:
            waiting = self._waiting.pop(request_id)
            if not waiting.cancelled():  # Ray cancels the call of a task that was cancelled
                waiting.set_result(reply)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout)
        queued, self._queued = self._queued, []
        self._arrived.clear()
        return queued


class HandleRelay:
    """The driver's side: the mailbox actor, the real handles by key, and the pump thread that answers.

    Args:
        runtime_env: The Ray runtime environment of the mailbox actor (the
            tasks' one, so it imports gpbo as they do); None: the job's.
    """

    def __init__(self, runtime_env: dict[str, Any] | None = None) -> None:
        options: dict[str, Any] = {"num_cpus": 0}  # a mailbox takes no CPU from the trials
        if runtime_env is not None:
            options["runtime_env"] = runtime_env
        self._mailbox = ray.remote(_Mailbox).options(**options).remote()
        self._handles: dict[int, TrialHandle] = {}
        self._keys = itertools.count()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="gpbo-ray-relay", daemon=True)
        self._thread.start()

    def proxy(self, handle: TrialHandle) -> RayTrialHandle:
        """A picklable stand-in for ``handle``, answered by this relay until `release`."""
        with self._lock:
            key = next(self._keys)
            self._handles[key] = handle
        return RayTrialHandle(self._mailbox, key, handle.id, handle.params)

    def release(self, keys: list[int]) -> None:
        """Forgets the handles of a finished task."""
        with self._lock:
            for key in keys:
                del self._handles[key]

    def stop(self) -> None:
        """Asks the pump to end once it has no answer to post (within `POLL_S` s when idle)."""
        self._stopping.set()

    def join(self) -> None:
        """Waits for the pump thread to end (after `stop`)."""
        self._thread.join()

    def _pump(self) -> None:
        """Answers requests until stopped or the mailbox dies; then kills the mailbox."""
        replies: list[tuple[int, bytes]] = []
        try:
            with contextlib.suppress(ray.exceptions.RayError):
                while replies or not self._stopping.is_set():
                    requests = ray.get(self._mailbox.exchange.remote(replies, POLL_S))
                    replies = [(request_id, answer(self._handle(key), payload)) for request_id, key, payload in requests]
        finally:
            if ray.is_initialized():  # not when Ray's shutdown ended the poll
                ray.kill(self._mailbox)

    def _handle(self, key: int) -> TrialHandle | None:
        with self._lock:
            return self._handles.get(key)
