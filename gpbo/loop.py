"""`minimize`: the one-call loop over an `Optimizer` (evaluation itself is in `gpbo.workers`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from gpbo.early_stopping import get as get_stopping_rule
from gpbo.errors import InvalidArgumentError
from gpbo.fidelity import check_max_step
from gpbo.optimizer import Optimizer
from gpbo.reporting import StepBudget, takes_trial
from gpbo.settings import Settings
from gpbo.space import Space
from gpbo.storage import Storage
from gpbo.trial import Trial, TrialState
from gpbo.validation import check_bool, check_int, check_positive_seconds
from gpbo.workers import InlineExecutor, ThreadPerTrialExecutor, run_trials

__all__ = ["MinimizeResult", "minimize"]

Callback = Callable[[Optimizer, Trial], Any]


@dataclasses.dataclass(frozen=True)
class MinimizeResult:
    """What `minimize` found.

    Attributes:
        best_params: Params of the best feasible COMPLETE trial (with
            ``max_step``: the best one that reached it; a trial stopped
            early is PRUNED); None if
            every trial failed or no trial satisfies the constraints (a
            warning then says so, with the first failed trial's error), or
            with several objectives.
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
    fn: Callable[..., Any],
    space: Space | Mapping[str, Any],
    n_trials: int | None = None,
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
    max_step: float | None = None,
    step_budget: float | None = None,
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
            constraints) -> real number. An objective with two positional
            parameters (the second without a default: ``def train(params,
            trial)``; the signature is inspected once) is called as
            ``fn(params, trial)`` with a `gpbo.reporting.TrialHandle`, whose
            ``trial.report(value, step)`` records its learning curve and
            ``trial.should_stop()`` asks the settings' ``early_stopping`` rule.
        space: A `Space`, or a dict ``name -> Real | Integer | Categorical``.
        n_trials: Evaluations made by this call (a resumed study keeps its
            earlier trials and adds ``n_trials`` more), a positive int; None
            (only with ``step_budget``): no limit on the number.
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
            ``n_workers > 1`` or ``timeout_per_trial`` is set. An objective
            that takes a trial handle cannot run on a process pool;
            `gpbo.integrations.ray_executor.RayExecutor` passes it a proxy.
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
        max_step: The step at which a reporting trial is complete, as for
            `Optimizer`; the best trial is the best one that reached it.
        step_budget: End the study once the steps of this call's trials
            (each one's last reported step; ``max_step`` for a COMPLETE trial
            that never reported) sum to it: no new trial starts, running ones
            are told to stop. Needs ``max_step``; with ``n_trials`` too,
            whichever ends first.

    Returns:
        A `MinimizeResult`.

    Raises:
        InvalidArgumentError: If ``fn`` or a callback is not callable,
            ``n_trials`` is not a positive int, or an option is invalid.
        InvalidSpaceError: If ``space`` is invalid or differs from the stored study's.
        InvalidTrialError: If ``fn`` returns something that is not a number
            (with ``objectives=``: a dict lacking a metric, naming an unknown
            one, or holding a value that is not a number: a `MetricsError`);
            the trial is recorded as FAILED first, with every metric told as
            a real number.
    """
    if not callable(fn):
        raise InvalidArgumentError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
    max_step, step_budget = _check_budget(n_trials, max_step, step_budget)
    n_trials = None if n_trials is None else check_int("n_trials", n_trials, 1)
    reporting = takes_trial(fn)
    callbacks = _check_callbacks(callbacks)
    timeout = check_positive_seconds("timeout_per_trial", timeout_per_trial)
    n_workers = check_int("n_workers", n_workers, 1)
    executor = _executor(executor, n_workers, timeout)
    if reporting:
        _check_reporting(executor)
    progress = check_bool("progress", progress)
    opt = Optimizer(space, settings=settings, maximize=maximize, seed=seed, storage=storage,
                    objectives=objectives, constraints=constraints, max_step=max_step)
    if reporting:
        get_stopping_rule(opt.settings.early_stopping)  # a rule that cannot be built fails here, not in every trial
    budget = None if step_budget is None else StepBudget(opt, step_budget)
    with _progress_bar(progress, n_trials) as bar:

        def on_told(trial: Trial) -> None:
            for callback in callbacks:
                callback(opt, trial)
            if bar is not None:
                bar.set_postfix(_progress_postfix(opt), refresh=False)
                bar.update()

        run_trials(
            opt, fn, n_trials, executor=executor, n_workers=n_workers, timeout=timeout, on_told=on_told,
            reporting=reporting, budget=budget,
        )
    trials, metrics = opt.trials, opt.metrics
    best = metrics.best(trials) if metrics.n_objectives == 1 else None
    if trials and all(t.state is TrialState.FAILED for t in trials):
        warnings.warn(f"gpbo: all {len(trials)} trials failed; the first one's error: {trials[0].error}",
                      UserWarning, stacklevel=2)
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


def _check_budget(n_trials: Any, max_step: Any, step_budget: Any) -> tuple[Any, float | None]:
    """Checks ``max_step`` and ``step_budget`` (which needs it); one of ``n_trials`` / ``step_budget`` is needed."""
    max_step = check_max_step(max_step)
    if step_budget is None:
        if n_trials is None:
            raise InvalidArgumentError("minimize needs n_trials, or step_budget with max_step, to know when to stop")
        return max_step, None
    ok = isinstance(step_budget, numbers.Real) and not isinstance(step_budget, bool) and math.isfinite(step_budget)
    if not ok or step_budget <= 0:
        raise InvalidArgumentError(
            f"step_budget must be None or a finite number > 0, got {type(step_budget).__name__} {step_budget!r:.200}")
    if max_step is None:
        raise InvalidArgumentError(
            f"step_budget={step_budget!r} needs max_step (the step at which a trial is complete), e.g. "
            "minimize(train, space, max_step=52, step_budget=52 * 30)")
    return max_step, float(step_budget)


def _check_reporting(executor: Any) -> None:
    """An objective that takes a trial handle must run where it can reach this process.

    The handle cannot be pickled: a process pool, or an executor whose
    ``supports_trial_handle`` is False, cannot run it (`RayExecutor` passes a proxy).
    """
    remote = isinstance(executor, concurrent.futures.ProcessPoolExecutor) or not getattr(
        executor, "supports_trial_handle", True)
    if remote:
        raise InvalidArgumentError(
            f"the objective takes a trial handle (params, trial), which reports to this process and cannot run on "
            f"{type(executor).__name__}: use n_workers threads (executor=None), a ThreadPoolExecutor or "
            "gpbo.integrations.ray_executor.RayExecutor, or an objective fn(params) without intermediate reports")


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
def _progress_bar(enabled: bool, total: int | None) -> Iterator[Any]:
    """A tqdm bar over ``total`` trials, or None when disabled."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="gpbo", unit="trial") as bar:
        yield bar
