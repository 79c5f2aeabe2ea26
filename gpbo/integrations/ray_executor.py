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

Intermediate reports are not supported on Ray: an objective that takes a
trial handle (``def train(params, trial)``) reports to the optimizer in the
driver process, and the handle cannot travel to a Ray worker, so `minimize`
refuses that combination with a clear error before the study starts
(``supports_trial_handle = False``). Use threads (``n_workers``) for such
objectives, or Ray Tune with its schedulers (`gpbo.integrations.ray_tune`).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from gpbo.errors import InvalidArgumentError
from gpbo.integrations import require

ray = require("ray", "ray")

__all__ = ["RayExecutor"]


class RayExecutor(concurrent.futures.Executor):
    """Runs submitted calls as Ray tasks.

    Args:
        **options: Ray task options applied to every call, e.g. ``num_cpus=1``,
            ``num_gpus=0.5``, ``max_retries=0`` (see ``ray.remote``).

    Raises:
        InvalidArgumentError: If an option is not a Ray task option.
    """

    supports_trial_handle = False  # minimize refuses objectives that report (see the module docstring)

    def __init__(self, **options: Any) -> None:
        try:
            self._task = ray.remote(_call).options(**options)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"invalid Ray task options {options!r}: {exc}") from exc
        self._pending: dict[concurrent.futures.Future, Any] = {}  # future -> ObjectRef
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Starts ``fn(*args, **kwargs)`` as a Ray task and returns its future.

        Raises:
            RuntimeError: After `shutdown`.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a RayExecutor after shutdown")
            ref = self._task.remote(fn, *args, **kwargs)
            future = ref.future()
            self._pending[future] = ref
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future) -> None:
        with self._lock:
            self._pending.pop(future, None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops accepting calls; optionally cancels running tasks and waits for the rest.

        Ray itself is left running (call ``ray.shutdown()`` to stop it).
        """
        with self._lock:
            self._shutdown = True
            pending = dict(self._pending)
        if cancel_futures:
            for future, ref in pending.items():
                if not future.done():
                    ray.cancel(ref)
        if wait:
            concurrent.futures.wait(list(pending))


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The body of every Ray task: one call of ``fn``."""
    return fn(*args, **kwargs)
