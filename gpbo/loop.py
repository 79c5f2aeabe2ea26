"""`minimize`: the one-call loop over an `Optimizer`."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from gpbo.acquisition.protocol import Acquisition
from gpbo.errors import InvalidArgumentError
from gpbo.optimizer import Optimizer
from gpbo.space import Space
from gpbo.trial import Trial

__all__ = ["MinimizeResult", "minimize"]

Callback = Callable[[Optimizer, Trial], Any]


@dataclasses.dataclass(frozen=True)
class MinimizeResult:
    """What `minimize` found.

    Attributes:
        best_params: Params of the best COMPLETE trial; None if every trial failed.
        best_value: Its objective value (the largest one with
            ``maximize=True``); None if every trial failed.
        trials: All trials, in order.
        optimizer: The optimizer, to continue with ask/tell or save.
    """

    best_params: dict[str, Any] | None
    best_value: float | None
    trials: list[Trial]
    optimizer: Optimizer


def minimize(
    fn: Callable[[dict[str, Any]], Any],
    space: Space | Mapping[str, Any],
    n_trials: int,
    *,
    seed: int | None = None,
    maximize: bool = False,
    n_initial: int | None = None,
    callbacks: Sequence[Callback] | None = None,
    acquisition: str | Acquisition = "log_ei",
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> MinimizeResult:
    """Minimises (or maximises) ``fn`` over ``space`` with ``n_trials`` evaluations.

    Trials are evaluated one after the other. An exception raised by ``fn``
    (any `Exception`; `KeyboardInterrupt` still stops the loop) and a NaN or
    infinite result make a FAILED trial; the loop goes on.

    Args:
        fn: Objective, called as ``fn(params)`` with a fresh params dict;
            returns a real number (Python, NumPy scalar or 0-d tensor).
        space: A `Space`, or a dict ``name -> Real | Integer | Categorical``.
        n_trials: Number of evaluations, a positive int.
        seed, maximize, n_initial, acquisition, device, dtype: As for `Optimizer`.
        callbacks: Callables ``cb(optimizer, trial)`` run after each tell with
            the told trial.

    Returns:
        A `MinimizeResult`.

    Raises:
        InvalidArgumentError: If ``fn`` or a callback is not callable,
            ``n_trials`` is not a positive int, or an option is invalid.
        InvalidSpaceError: If ``space`` is invalid.
        InvalidTrialError: If ``fn`` returns something that is not a number.
    """
    if not callable(fn):
        raise InvalidArgumentError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or n_trials < 1:
        raise InvalidArgumentError(f"n_trials must be a positive int, got {type(n_trials).__name__} {n_trials!r}")
    callbacks = _check_callbacks(callbacks)
    opt = Optimizer(
        space, maximize=maximize, seed=seed, device=device, dtype=dtype,
        acquisition=acquisition, n_initial=n_initial,
    )
    for _ in range(int(n_trials)):
        trial = opt.ask()
        try:
            value = fn(dict(trial.params))
        except Exception as exc:  # noqa: BLE001 - a failing objective is a failed trial
            value = exc
        trial = opt.tell(trial, value)
        for callback in callbacks:
            callback(opt, trial)
    best = opt.best
    return MinimizeResult(
        best_params=None if best is None else dict(best.params),
        best_value=None if best is None else best.value,
        trials=opt.trials,
        optimizer=opt,
    )


def _check_callbacks(callbacks: Any) -> list[Callback]:
    if callbacks is None:
        return []
    if callable(callbacks) or not isinstance(callbacks, Sequence) or isinstance(callbacks, str):
        raise InvalidArgumentError(f"callbacks must be a list of callables, got {callbacks!r}")
    for cb in callbacks:
        if not callable(cb):
            raise InvalidArgumentError(f"every callback must be callable, got {type(cb).__name__} {cb!r}")
    return list(callbacks)
