"""Run a fixed-shape iteration many times, replayed as one captured CUDA graph.

On a GPU, one iteration of the batched L-BFGS-B (a line search of twelve step
sizes, an acquisition or marginal-likelihood value and gradient, the compact
quasi-Newton direction) is several hundred small kernels whose arithmetic
takes far less time than launching them from Python (a suggestion is bound
by kernel launches, not arithmetic; benchmarks/RESULTS.md, "GPU").
Every iteration of one call has the same shapes and no host sync, so it can be
captured once as a CUDA graph and replayed: a replay costs one launch from
the host and the kernels' own time on the device (the last GPU figures,
with and without the replay, are in benchmarks/RESULTS.md, "GPU").

:func:`iterate` runs ``state = step(state)`` up to ``max_iter`` times, asking
the host whether every element is done only every ``check_every`` iterations:

- eagerly, as a plain loop (the CPU, or ``graph=False``);
- on CUDA with ``graph=True``: ``_WARMUP`` eager iterations on a side stream
  (they are real iterations; they also let lazily created handles and
  workspaces exist before capture), then one iteration captured with
  ``state`` in static buffers that the graph itself overwrites with the next
  state, then replays. A graph replays exactly the kernels of an eager
  iteration, so the results are the same.

A step the graph cannot hold (a host sync, a random draw from an unregistered
generator, a copy from pageable memory) makes the capture fail; the call then
warns (once per distinct failure, by Python's default warning filter) and
goes on eagerly from the same state. The capture uses the
thread-local error mode so that CUDA work in other threads (the user's
objective, say) is not disturbed. Each graph takes a private memory pool,
freed with the graph at the end of the call (one ``torch.cuda.MemPool``
shared by all captures was tried: PyTorch 2.11 refused it).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Callable, NamedTuple, TypeVar

import torch
from torch import Tensor

__all__ = ["iterate"]

_WARMUP = 1
S = TypeVar("S")  # a NamedTuple whose fields are Tensors or None
_side_streams: dict[int, torch.cuda.Stream] = {}


def iterate(
    step: Callable[[S], S], state: S, done: Callable[[S], Tensor], *,
    max_iter: int, check_every: int, graph: bool,
) -> tuple[S, bool]:
    """Iterate ``step`` until ``done(state)`` is all True or ``max_iter`` steps.

    Args:
        step: maps a state to the next one with the same fields, shapes and
            dtypes, without host syncs (on CUDA with ``graph``).
        state: a NamedTuple of tensors (``None`` fields allowed, kept None).
        done: ``state -> (*B,)`` bool; the host reads ``done(state).all()``
            before iterations ``0, check_every, 2 check_every, ...``.
        max_iter: most iterations. check_every: iterations between host checks.
        graph: replay a captured CUDA graph (needs tensors on a CUDA device).

    Returns:
        The final state and whether its iterations ran from a CUDA graph.
    """
    if not graph:
        return _eager(step, state, done, 0, max_iter, check_every)[0], False
    device = _device(state)
    current = torch.cuda.current_stream(device)
    side = _side_stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        state, graphed = _warm_up_capture_replay(step, state, done, max_iter, check_every, _capture)
    current.wait_stream(side)
    for t in _tensors(state):  # allocated on the side stream, used next on the caller's
        t.record_stream(current)
    return state, graphed


def _eager(step: Callable[[S], S], state: S, done: Callable[[S], Tensor], start: int, stop: int,
           check_every: int) -> tuple[S, int, bool]:
    """Iterations ``start .. stop - 1`` as a plain loop.

    Returns:
        The state, the next iteration's index, and whether a check found every element done.
    """
    for it in range(start, stop):
        if it % check_every == 0 and bool(done(state).all()):  # the only host sync
            return state, it, True
        state = step(state)
    return state, stop, False


def _warm_up_capture_replay(
    step: Callable[[S], S], state: S, done: Callable[[S], Tensor], max_iter: int, check_every: int,
    capture: Callable[[Callable[[S], S], S], Callable[[], None] | None],
) -> tuple[S, bool]:
    """The graph path on the current stream: warm-up, capture, replays (eager if capture fails).

    ``capture(step, static)`` returns a function that advances ``static`` by
    one step in place (a graph replay), or None.
    """
    state, it, stopped = _eager(step, state, done, 0, min(_WARMUP, max_iter), check_every)
    if stopped or it == max_iter:
        return state, False
    static = _clone(state)
    replay = capture(step, static)
    if replay is None:
        return _eager(step, state, done, it, max_iter, check_every)[0], False
    static = _eager(lambda s: (replay(), s)[1], static, done, it, max_iter, check_every)[0]
    return _clone(static), True


def _clone(state: S) -> S:
    return type(state)(*(None if t is None else t.clone() for t in state))


def _capture(step: Callable[[S], S], static: S) -> Callable[[], None] | None:
    """The replay of a graph of ``static = step(static)`` (in place); None, after a warning, if capture fails."""
    g = torch.cuda.CUDAGraph()
    began = False
    try:
        g.capture_begin(capture_error_mode="thread_local")
        began = True
        nxt = step(static)
        for s, t in zip(static, nxt):
            if s is not None:
                s.copy_(t)  # replaying advances the state in place
        began = False
        g.capture_end()
    except Exception as err:  # noqa: BLE001 - any capture failure: go on eagerly
        if began:
            with contextlib.suppress(Exception):
                g.capture_end()  # raises too once the capture is invalidated
        _warn(err)
        return None
    return g.replay


def _device(state: NamedTuple) -> torch.device:
    return next(iter(_tensors(state))).device


def _tensors(state: NamedTuple) -> list[Tensor]:
    return [t for t in state if t is not None]


def _side_stream(device: torch.device) -> torch.cuda.Stream:
    """One capture stream per device, kept so its library workspaces persist."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _side_streams:
        _side_streams[index] = torch.cuda.Stream(device=index)
    return _side_streams[index]


def _warn(err: Exception) -> None:
    """Warn that the capture failed. Python's default warning filter shows a
    warning once per message and call site, so a failure that repeats on
    every suggestion is shown once; no module flag is kept."""
    warnings.warn(
        f"gpbo: could not capture the optimiser's iteration as a CUDA graph ({err}); "
        "running it eagerly (slower, same results)", RuntimeWarning, stacklevel=3,
    )
