"""`RayExecutor`: a ``concurrent.futures.Executor`` that runs each call as a Ray task.

It lets ``gpbo.minimize(..., n_workers=k, executor=RayExecutor())`` (or any
code written against ``concurrent.futures``) run trials on a local Ray
instance or on a cluster::

    import ray
    ray.init(address="auto")            # a cluster; ray.init(num_cpus=4) for a local one
    with RayExecutor(num_cpus=1) as pool:
        result = gpbo.minimize(objective, space, 100, n_workers=8, executor=pool)

Each ``submit(fn, *args)`` runs ``fn(*args)`` in one Ray task started with
``options`` (``fn`` may be any picklable callable: a function, a lambda, a
callable object) and returns the ``concurrent.futures.Future`` of that task
(``ObjectRef.future()``), so ``as_completed`` / ``wait`` work as usual. The
function and its arguments are pickled by Ray (cloudpickle): closures and
lambdas are fine; the worker processes import what the function needs. If
Ray is not initialised, the first submit starts a local instance
(``ray.init()`` with default options). An exception raised by the function
is re-raised by ``Future.result()`` as a ``RayTaskError`` that is also an
instance of the original exception's type.

Early stopping works as with threads: an objective that takes a trial
handle (``def train(params, trial)``) gets, in its Ray task, a
`gpbo.integrations.ray_relay.RayTrialHandle` in place of each
`gpbo.reporting.TrialHandle` argument of ``submit``; its ``report`` and
``should_stop`` are answered by the real handle in this process (see
`gpbo.integrations.ray_relay`: one mailbox actor per executor, started on
the first such submit, taking no CPU, and stopped by `shutdown` once the
last task has ended). Each call blocks the task for a few milliseconds.
"""

from __future__ import annotations

import concurrent.futures
import threading
import weakref
from collections.abc import Callable
from typing import Any

from gpbo.errors import InvalidArgumentError
from gpbo.integrations import require
from gpbo.integrations.ray_relay import HandleRelay, RayTrialHandle
from gpbo.reporting import TrialHandle

ray = require("ray", "ray")

__all__ = ["CANCEL_GRACE_S", "RayExecutor"]

CANCEL_GRACE_S = 5.0  # seconds a cancelled task has to end on its KeyboardInterrupt before its worker is killed


class RayExecutor(concurrent.futures.Executor):
    """Runs submitted calls as Ray tasks.

    Args:
        **options: Ray task options applied to every call, e.g. ``num_cpus=1``,
            ``num_gpus=0.5``, ``max_retries=0`` (see ``ray.remote``).

    Raises:
        InvalidArgumentError: If an option is not a Ray task option.

    Threads: ``submit`` and ``shutdown`` may be called from any thread; a
    task's future completes in a Ray thread, which releases its handles.
    """

    supports_trial_handle = True  # trial handles travel as RayTrialHandle proxies (the module docstring)

    def __init__(self, **options: Any) -> None:
        try:
            self._task = ray.remote(_call).options(**options)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"invalid Ray task options {options!r}: {exc}") from exc
        self._runtime_env = options.get("runtime_env")
        self._pending: dict[concurrent.futures.Future, tuple[Any, list[int]]] = {}  # future -> (ObjectRef, relay keys)
        self._relay: HandleRelay | None = None  # started by the first submit that carries a TrialHandle
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Starts ``fn(*args, **kwargs)`` as a Ray task and returns its future.

        A `gpbo.reporting.TrialHandle` among ``args`` or ``kwargs`` (not
        nested) reaches ``fn`` as a `RayTrialHandle`.

        Raises:
            RuntimeError: After `shutdown`.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a RayExecutor after shutdown")
            args = tuple(self._portable(a) for a in args)
            kwargs = {name: self._portable(a) for name, a in kwargs.items()}
            keys = [a.key for a in (*args, *kwargs.values()) if isinstance(a, RayTrialHandle)]
            ref = self._task.remote(fn, *args, **kwargs)
            future = ref.future()
            self._pending[future] = (ref, keys)
        future.add_done_callback(self._forget)
        return future

    def _portable(self, arg: Any) -> Any:
        """``arg``, or the proxy of a trial handle (starts the relay; called under the lock)."""
        if not isinstance(arg, TrialHandle):
            return arg
        if self._relay is None:
            self._relay = HandleRelay(self._runtime_env)
            weakref.finalize(self, self._relay.stop)  # an executor dropped without shutdown stops its relay
        return self._relay.proxy(arg)

    def _forget(self, future: concurrent.futures.Future) -> None:
        """A task ended: releases its handles (runs in a Ray callback thread, so it makes no Ray call)."""
        with self._lock:
            _, keys = self._pending.pop(future)
            if keys:
                self._relay.release(keys)
            self._stop_relay_when_idle()

    def _stop_relay_when_idle(self) -> None:
        """Stops the relay once shut down with no task left (called under the lock)."""
        if self._shutdown and not self._pending and self._relay is not None:
            self._relay.stop()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops accepting calls; optionally cancels running tasks and waits for the rest.

        A cancelled task gets a ``KeyboardInterrupt``; one still running
        `CANCEL_GRACE_S` seconds later (it caught the interrupt, or the
        interrupt was lost in a Ray call) has its worker killed
        (``ray.cancel(force=True)``), so ``shutdown(cancel_futures=True)``
        always returns.

        The trial-handle relay keeps answering the tasks that still run, and
        stops after the last one. Ray itself is left running (call
        ``ray.shutdown()`` to stop it).
        """
        with self._lock:
            self._shutdown = True
            pending = dict(self._pending)
            self._stop_relay_when_idle()
        if cancel_futures:
            self._cancel([(future, ref) for future, (ref, _) in pending.items() if not future.done()])
        if wait:
            concurrent.futures.wait(list(pending))
            if self._relay is not None:
                self._relay.join()

    @staticmethod
    def _cancel(running: list[tuple[concurrent.futures.Future, Any]]) -> None:
        """Interrupts each ``(future, ObjectRef)`` task now, and kills those still running after the grace period."""
        for _, ref in running:
            ray.cancel(ref)

        def force() -> None:
            for future, ref in running:
                if not future.done():
                    ray.cancel(ref, force=True)

        timer = threading.Timer(CANCEL_GRACE_S, force)
        timer.daemon = True
        timer.start()


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The body of every Ray task: one call of ``fn``."""
    return fn(*args, **kwargs)
