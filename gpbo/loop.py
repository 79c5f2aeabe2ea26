"""`minimize`: the one-call loop over an `Optimizer` (evaluation itself is in `gpbo.workers`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from gpbo.errors import InvalidArgumentError
from gpbo.optimizer import Optimizer
from gpbo.settings import Settings
from gpbo.space import Space
from gpbo.storage import Storage
from gpbo.trial import Trial
from gpbo.validation import check_bool, check_int, check_positive_seconds
from gpbo.workers import InlineExecutor, ThreadPerTrialExecutor, run_trials

__all__ = ["MinimizeResult", "minimize"]

Callback = Callable[[Optimizer, Trial], Any]


@dataclasses.dataclass(frozen=True)
class MinimizeResult:
    """What `minimize` found.

    Attributes:
        best_params: Params of the best feasible COMPLETE trial; None if
            every trial failed, if no trial satisfies the constraints (a
            warning then says so), or with several objectives.
        best_value: Its objective value (the largest one with
            ``maximize=True`` or a maximised objective); None likewise.
        trials: All trials, in order.
        optimizer: The optimizer, to continue with ask/tell or save.
        pareto_front: The feasible COMPLETE trials no other feasible one
            dominates (`gpbo.Optimizer.pareto_front`); with one objective the
            best trials.
    """

    best_params: dict[str, Any] | None
    best_value: float | None
    trials: list[Trial]
    optimizer: Optimizer
    pareto_front: list[Trial] = dataclasses.field(default_factory=list)


def minimize(
    fn: Callable[[dict[str, Any]], Any],
    space: Space | Mapping[str, Any],
    n_trials: int,
    *,
    seed: int | None = None,
    maximize: bool = False,
    settings: Settings | Mapping[str, Any] | None = None,
    storage: str | os.PathLike[str] | Storage | None = None,
    n_workers: int = 1,
    executor: concurrent.futures.Executor | None = None,
    timeout_per_trial: float | None = None,
    callbacks: Sequence[Callback] | None = None,
    progress: bool = False,
    objectives: Mapping[str, Any] | None = None,
    constraints: Mapping[str, Any] | None = None,
) -> MinimizeResult:
    """Minimises (or maximises) ``fn`` over ``space`` with ``n_trials`` evaluations.

    Every `Exception` raised by ``fn``, a NaN or infinite result, and a call
    longer than ``timeout_per_trial`` make a FAILED trial (recorded with its
    reason), and the study goes on. A `KeyboardInterrupt` stops it at once,
    and so does an exception raised by a callback: to stop a study early,
    raise from a callback (e.g. once ``trial.value`` is good enough). Either
    way the storage stays consistent: trials in flight stay RUNNING and are
    handed out again when the study is resumed.

    Args:
        fn: Objective, called as ``fn(params)`` with a fresh params dict;
            returns a real number (Python, NumPy scalar or 0-d tensor), or
            with ``objectives=`` a dict of every metric (objectives and
            constraints) -> real number.
        space: A `Space`, or a dict ``name -> Real | Integer | Categorical``.
        n_trials: Evaluations made by this call (a resumed study keeps its
            earlier trials and adds ``n_trials`` more), a positive int.
        seed, maximize, storage: As for `Optimizer`.
        settings: A `gpbo.Settings` or a dict of its fields (acquisition,
            noise, model, warp, device, dtype, n_initial, ...), as for `Optimizer`.
        n_workers: Trials evaluated at once. Each finished trial is told and
            its worker gets a new suggestion at once, with the trials still
            running as pending points.
        executor: Where ``fn`` runs: any `concurrent.futures.Executor` (or an
            object whose ``submit`` returns a `concurrent.futures.Future`),
            e.g. a ``ProcessPoolExecutor`` (``fn`` must then be picklable) or
            one that runs Ray tasks. It is not shut down. None runs ``fn`` in
            the calling thread, or in one daemon thread per trial when
            ``n_workers > 1`` or ``timeout_per_trial`` is set.
        timeout_per_trial: Seconds after which a trial is abandoned and
            FAILED (see `gpbo.workers`: the call runs in a daemon thread that
            is left behind); None waits forever.
        callbacks: Callables ``cb(optimizer, trial)`` run after each tell with
            the told trial; an exception they raise stops the study.
        progress: Show a tqdm progress bar with the best value so far (the
            size of the Pareto front with several objectives).
        objectives, constraints: Several metrics, as for `Optimizer`:
            ``objectives={"error": "minimize", "latency_ms": "minimize"}``,
            ``constraints={"memory_gb": ("<=", 16.0)}``.

    Returns:
        A `MinimizeResult`.

    Raises:
        InvalidArgumentError: If ``fn`` or a callback is not callable,
            ``n_trials`` is not a positive int, or an option is invalid.
        InvalidSpaceError: If ``space`` is invalid or differs from the stored study's.
        InvalidTrialError: If ``fn`` returns something that is not a number
            (with ``objectives=``: a dict lacking a metric, naming an unknown
            one, or holding a value that is not a number); the trial is
            recorded as FAILED first.
    """
    if not callable(fn):
        raise InvalidArgumentError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
    n_trials = check_int("n_trials", n_trials, 1)
    callbacks = _check_callbacks(callbacks)
    timeout = check_positive_seconds("timeout_per_trial", timeout_per_trial)
    n_workers = check_int("n_workers", n_workers, 1)
    executor = _executor(executor, n_workers, timeout)
    progress = check_bool("progress", progress)
    opt = Optimizer(space, settings=settings, maximize=maximize, seed=seed, storage=storage,
                    objectives=objectives, constraints=constraints)
    with _progress_bar(progress, n_trials) as bar:

        def on_told(trial: Trial) -> None:
            for callback in callbacks:
                callback(opt, trial)
            if bar is not None:
                bar.set_postfix(_progress_postfix(opt), refresh=False)
                bar.update()

        run_trials(
            opt, fn, n_trials, executor=executor, n_workers=n_workers, timeout=timeout, on_told=on_told,
        )
    trials, metrics = opt.trials, opt.metrics
    best = metrics.best(trials) if metrics.n_objectives == 1 else None
    if metrics.constraints and not any(metrics.feasible(t) for t in trials):
        warnings.warn(
            f"gpbo: no trial satisfies the constraints {metrics.arguments()['constraints']}; "
            "best_params, best_value are None and pareto_front is empty", UserWarning, stacklevel=2)
    return MinimizeResult(
        best_params=None if best is None else dict(best.params),
        best_value=None if best is None else best.value,
        trials=trials,
        optimizer=opt,
        pareto_front=metrics.pareto_front(trials),
    )


def _progress_postfix(opt: Optimizer) -> dict[str, str]:
    """The progress bar's postfix: the best value, or the size of the Pareto front."""
    metrics, trials = opt.metrics, opt.trials
    if metrics.n_objectives > 1:
        return {"pareto_front": str(len(metrics.pareto_front(trials)))}
    best = metrics.best(trials)
    if best is None:
        return {"best": "no feasible trial yet" if metrics.constraints else "None"}
    return {"best": f"{best.value:.6g}"}


def _check_callbacks(callbacks: Any) -> list[Callback]:
    if callbacks is None:
        return []
    if callable(callbacks) or not isinstance(callbacks, Sequence) or isinstance(callbacks, str):
        raise InvalidArgumentError(f"callbacks must be a list of callables, got {callbacks!r}")
    for cb in callbacks:
        if not callable(cb):
            raise InvalidArgumentError(f"every callback must be callable, got {type(cb).__name__} {cb!r}")
    return list(callbacks)


def _executor(executor: Any, n_workers: int, timeout: float | None) -> Any:
    """The user's executor, or the default one for these options."""
    if executor is None:
        return ThreadPerTrialExecutor() if n_workers > 1 or timeout is not None else InlineExecutor()
    if not callable(getattr(executor, "submit", None)):
        raise InvalidArgumentError(
            f"executor must be a concurrent.futures.Executor (with a submit method), got {type(executor).__name__} {executor!r:.200}"
        )
    return executor


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Any]:
    """A tqdm bar over ``total`` trials, or None when disabled."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="gpbo", unit="trial") as bar:
        yield bar
