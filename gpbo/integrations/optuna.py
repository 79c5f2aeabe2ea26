"""`GPBOSampler`: gpbo's GP Bayesian optimisation as an Optuna sampler;
`GPBOPruner`: gpbo's early-stopping rules as an Optuna pruner.

An Optuna user switches with one line::

    study = optuna.create_study(sampler=GPBOSampler(seed=0))

How it samples (the same scheme as Optuna's own ``GPSampler``):

- **Relative sampling** over the intersection search space (the parameters
  with the same distribution in every COMPLETE trial). Each trial is one
  call of :func:`gpbo.engine.suggest` (P = 1, q = 1) on the COMPLETE trials.
- **Independent fallback**: parameters outside that space (dynamic or
  conditional ones), and every parameter during the first
  ``n_startup_trials`` trials, come from ``independent_sampler``
  (``RandomSampler`` by default).
- **Running trials are pending points**: the points suggested to trials that
  have not finished (for example with ``study.optimize(n_jobs=4)``) are
  passed to the engine as pending, so parallel trials do not repeat.
- FAILED and PRUNED trials, and COMPLETE ones with a non-finite value, never
  enter the GP.
- **Several objectives and constraints**: a study made with
  ``directions=[...]`` gives the engine ``Y (1, n, O)``, one column per
  objective (maximised), and with ``constraints_func`` one more column per
  constraint value. As in Optuna's own samplers, ``constraints_func(trial)``
  is called after each COMPLETE or PRUNED trial and its values are stored in
  the trial's system attrs ``"constraints"`` (feasible iff every value is
  ``<= 0``, Optuna's convention and the engine's); COMPLETE trials without
  stored constraint values (the function raised) do not enter the GP. An
  infinite constraint value enters it imputed as `gpbo.metrics` imputes a
  failed trial's (`gpbo.outcomes.impute_constraints`): ``+inf`` violated,
  ``-inf`` met.

`GPBOPruner` works with any sampler::

    study = optuna.create_study(pruner=GPBOPruner(max_step=52), sampler=optuna.samplers.TPESampler())

At each ``trial.should_prune()`` it builds `gpbo.early_stopping.Curves` from
the study's trials (their intermediate values, negated in a minimised study;
configurations encoded over the parameters every such trial shares, else
none), and asks a gpbo rule (default ``"model"``, the model-based one; or
``"asha"``, ``"hyperband"``, ``"median"``, or any `StoppingRule`). FAILED
trials take part with an empty curve; PRUNED ones count as stopped.

Distributions map to gpbo parameters as follows: ``FloatDistribution`` ->
``Real`` (log as given) or, with a ``step``, an ``Integer`` index of the grid;
``IntDistribution`` -> ``Integer`` (log as given; a ``step`` > 1 becomes an
index of the grid); ``CategoricalDistribution`` -> ``Categorical`` over the
choice indices.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from gpbo.early_stopping import Curves, StoppingRule
from gpbo.early_stopping import get as get_stopping_rule
from gpbo.engine import suggest
from gpbo.errors import InvalidArgumentError
from gpbo.fidelity import check_max_step
from gpbo.integrations import require
from gpbo.outcomes import Outcomes, impute_constraints
from gpbo.settings import Settings, as_settings
from gpbo.space import Categorical, Integer, Param, Real, Space
from gpbo.validation import check_int

require("optuna", "optuna")
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler, RandomSampler
from optuna.samplers._base import _CONSTRAINTS_KEY, _process_constraints_after_trial
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["GPBOPruner", "GPBOSampler"]

_logger = logging.getLogger(__name__)
_MAX_SEED = 2**62


def _to_param(dist: BaseDistribution) -> Param:
    """The gpbo parameter that encodes an Optuna distribution (see the module docstring)."""
    if isinstance(dist, CategoricalDistribution):
        return Categorical(list(range(len(dist.choices))))
    if isinstance(dist, FloatDistribution) and dist.step is None:
        return Real(dist.low, dist.high, log=dist.log)
    if isinstance(dist, IntDistribution) and dist.step == 1:
        return Integer(dist.low, dist.high, log=dist.log)
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        return Integer(0, round((dist.high - dist.low) / dist.step))
    raise InvalidArgumentError(f"GPBOSampler does not support the distribution {dist!r}")


def _to_gpbo(dist: BaseDistribution, value: Any) -> Any:
    """An Optuna parameter value -> the value of its gpbo parameter."""
    if isinstance(dist, CategoricalDistribution):
        return dist.to_internal_repr(value)
    if dist.step is None or isinstance(dist, IntDistribution) and dist.step == 1:
        return value
    return round((value - dist.low) / dist.step)


def _to_optuna(dist: BaseDistribution, value: Any) -> Any:
    """The value of a gpbo parameter -> the Optuna parameter value."""
    if isinstance(dist, CategoricalDistribution):
        return dist.to_external_repr(value)
    if dist.step is None or isinstance(dist, IntDistribution) and dist.step == 1:
        return value
    return min(dist.low + value * dist.step, dist.high)


class GPBOSampler(BaseSampler):
    """Optuna sampler driven by gpbo's GP, acquisition and optimiser.

    Args:
        seed: Seed of the engine and of the default independent sampler;
            None draws one.
        n_startup_trials: COMPLETE trials sampled independently before the
            GP takes over, >= 1.
        independent_sampler: Sampler of the parameters outside the relative
            search space; ``RandomSampler(seed)`` if None.
        settings: A `gpbo.Settings` or a dict of its fields (acquisition,
            noise, model, warp, device, dtype, search sizes, ...); None is
            the defaults. Its ``n_initial`` is not used (``n_startup_trials`` is).
        warn_independent_sampling: Log a warning when a parameter is sampled
            independently after the startup trials.
        constraints_func: None, or Optuna's constraints function
            ``f(FrozenTrial) -> Sequence[float]``, feasible iff every value
            is ``<= 0`` (as for Optuna's ``GPSampler`` and ``NSGAIISampler``).

    Raises:
        InvalidArgumentError: If an option is invalid.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        independent_sampler: BaseSampler | None = None,
        settings: Settings | Mapping[str, Any] | None = None,
        warn_independent_sampling: bool = True,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ) -> None:
        self._n_startup = check_int("n_startup_trials", n_startup_trials, 1)
        if constraints_func is not None and not callable(constraints_func):
            raise InvalidArgumentError(f"constraints_func must be callable or None, got {constraints_func!r:.200}")
        self._constraints_func = constraints_func
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise InvalidArgumentError(
                f"independent_sampler must be an optuna BaseSampler, got {independent_sampler!r}")
        self._settings = as_settings(settings)
        self._seed = secrets.randbits(32) if seed is None else check_int("seed", seed, 0)
        self._independent = independent_sampler or RandomSampler(seed=seed)
        self._warn = warn_independent_sampling
        self._intersection = IntersectionSearchSpace()
        self._lock = threading.Lock()  # study.optimize(n_jobs=k) calls from k threads
        # running trial number -> (relative params, their distributions)
        self._suggested: dict[int, tuple[dict[str, Any], dict[str, BaseDistribution]]] = {}
        self._theta: torch.Tensor | None = None  # GP hyperparameters of the last fit (warm start)
        self._theta_layout: tuple[int, Outcomes] | None = None  # (d, outcomes) that theta was fitted for

    def reseed_rng(self) -> None:
        """Draws a new seed (Optuna calls this in forked workers)."""
        self._seed = secrets.randbits(32)
        self._independent.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Lets the independent sampler prepare."""
        self._independent.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        """The intersection search space, without single-valued distributions."""
        space = self._intersection.calculate(study)
        return {name: dist for name, dist in space.items() if not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """One GP suggestion over ``search_space``; {} during the startup trials."""
        if not search_space:
            return {}
        with self._lock:
            # One snapshot under the lock: a trial that finishes meanwhile is then either
            # complete or running in it, never missing from both observations and pending.
            trials = study.get_trials(deepcopy=False)
            complete = [t for t in self._usable(trials) if _covers(t.params, t.distributions, search_space)]
            if len(complete) < self._n_startup:
                return {}
            space = Space({name: _to_param(dist) for name, dist in search_space.items()})
            pending = self._pending(trials, trial, search_space)
            X = space.encode([_internal(t.params, search_space) for t in complete])
            Y, outcomes = self._outcomes(study, complete)
            point = self._suggest(space, X, Y, pending, trial.number, outcomes)
            params = {name: _to_optuna(dist, point[name]) for name, dist in search_space.items()}
            self._suggested[trial.number] = (params, dict(search_space))
        return params

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        """Delegates to the independent sampler (and warns after the startup trials)."""
        if self._warn and len(self._usable(study.get_trials(deepcopy=False))) >= self._n_startup:
            _logger.warning(
                "GPBOSampler: trial %d samples parameter %r with %s, as it is outside the "
                "intersection search space (a dynamic or conditional parameter).",
                trial.number, param_name, type(self._independent).__name__)
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Any
    ) -> None:
        """Stores the constraint values (with ``constraints_func``), forgets the trial's pending point
        and informs the independent sampler."""
        if self._constraints_func is not None:
            _process_constraints_after_trial(self._constraints_func, study, trial, state)
        with self._lock:
            self._suggested.pop(trial.number, None)
        self._independent.after_trial(study, trial, state, values)

    def _usable(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """The COMPLETE trials the GP can use: finite values and, with ``constraints_func``, stored constraints."""
        return [t for t in trials if t.state == TrialState.COMPLETE and all(math.isfinite(v) for v in t.values)
                and (self._constraints_func is None or t.system_attrs.get(_CONSTRAINTS_KEY) is not None)]

    def _outcomes(self, study: Study, complete: list[FrozenTrial]) -> tuple[torch.Tensor, Outcomes]:
        """``Y (n,)``, or ``(n, O)`` with several objectives or constraints, and its `Outcomes`."""
        signs = [-1.0 if d is StudyDirection.MINIMIZE else 1.0 for d in study.directions]
        rows = [[s * v for s, v in zip(signs, t.values, strict=True)] for t in complete]
        n_constraints = 0
        if self._constraints_func is not None:
            constraints = [list(t.system_attrs[_CONSTRAINTS_KEY]) for t in complete]
            n_constraints = len(constraints[0])
            if any(len(c) != n_constraints for c in constraints):
                raise InvalidArgumentError(
                    f"constraints_func must return the same number of values for every trial, got "
                    f"{sorted({len(c) for c in constraints})}")
            rows = [r + c for r, c in zip(rows, constraints, strict=True)]
        outcomes = Outcomes(len(signs), n_constraints)
        Y = torch.tensor(rows, dtype=torch.float64)  # (n, O)
        k = outcomes.n_objectives
        Y = torch.cat([Y[:, :k], impute_constraints(Y[:, k:])], -1)  # an infinite constraint value: violated or met
        return (Y[:, 0] if outcomes.is_single else Y), outcomes

    def _pending(self, trials: list[FrozenTrial], trial: FrozenTrial,
                 search_space: dict[str, BaseDistribution]) -> list[dict]:
        """Params (gpbo values) of the other running trials that cover the search space."""
        out = []
        for t in trials:
            if t.state != TrialState.RUNNING or t.number == trial.number:
                continue
            params, dists = self._suggested.get(t.number, ({}, {}))
            params, dists = {**params, **t.params}, {**dists, **t.distributions}
            if _covers(params, dists, search_space):
                out.append(_internal(params, search_space))
        return out

    def _suggest(self, space: Space, X: torch.Tensor, Y: torch.Tensor, pending: list[dict],
                 number: int, outcomes: Outcomes) -> dict[str, Any]:
        """Runs the engine (P = 1, q = 1) and decodes its point."""
        kw = {"dtype": self._settings.dtype, "device": self._settings.device}
        layout = (space.dim, outcomes)
        theta = self._theta if self._theta is not None and self._theta_layout == layout else None
        settings = self._settings if outcomes.is_single else self._settings.replace(outcomes=outcomes)
        result = suggest(
            X.to(**kw).unsqueeze(0), Y.to(**kw).unsqueeze(0), dims=space.dims,
            pending=space.encode(pending).to(**kw).unsqueeze(0) if pending else None,
            settings=settings, seed=(self._seed * 1_000_003 + number) % _MAX_SEED,
            warm_start=theta,
        )
        theta = getattr(result.model, "theta", None)  # a custom Settings.model factory's model: no warm start
        own = isinstance(self._settings.model, str) and isinstance(theta, torch.Tensor)
        self._theta, self._theta_layout = (theta.detach(), layout) if own else (None, None)
        return space.decode(result.candidates[0, 0].to("cpu", torch.float64))


def _covers(params: dict[str, Any], dists: dict[str, BaseDistribution],
            search_space: dict[str, BaseDistribution]) -> bool:
    """True if every parameter of the search space is set with the same distribution."""
    return all(name in params and dists.get(name) == dist for name, dist in search_space.items())


def _internal(params: dict[str, Any], search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
    return {name: _to_gpbo(dist, params[name]) for name, dist in search_space.items()}


class GPBOPruner(BasePruner):
    """A gpbo early-stopping rule as an Optuna pruner (single-objective studies).

    With a sampler's ``constraints_func``, a trial that ended violating a
    constraint is shown to the rule without its curve, as a failed one is.

    Args:
        rule: A `gpbo.Settings.early_stopping` name (``"model"``, ``"asha"``,
            ``"hyperband"``, ``"median"``) or an object with
            ``should_stop(curves, index) -> bool``.
        max_step: The step at which a trial is complete; None: the largest
            step any finished trial reported (``inf`` before one finished).

    Raises:
        InvalidArgumentError: For an unknown rule, a rule that cannot be built,
            or a bad ``max_step``.
    """

    def __init__(self, rule: str | StoppingRule = "model", *, max_step: float | None = None) -> None:
        if rule is None:
            raise InvalidArgumentError("GPBOPruner needs a rule; for no pruning use optuna.pruners.NopPruner")
        self._rule = get_stopping_rule(rule)
        self._max_step = check_max_step(max_step)

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        """True if the rule stops ``trial`` at its last intermediate value."""
        if len(study.directions) > 1:
            raise InvalidArgumentError("GPBOPruner supports single-objective studies only (Optuna cannot prune multi-objective trials)")
        if trial.last_step is None:
            return False
        trials = study.get_trials(deepcopy=False)
        curves = _curves(trials, trial, 1.0 if study.direction is StudyDirection.MAXIMIZE else -1.0, self._max_step)
        index = next(i for i, t in enumerate(trials) if t.number == trial.number)
        return bool(self._rule.should_stop(curves, index))


def _infeasible(trial: FrozenTrial) -> bool:
    """An ended trial that violated a constraint (the values a sampler's ``constraints_func`` stored; feasible iff
    every one is <= 0): no bar for a running trial to beat, as in `gpbo.Optimizer`'s constrained studies."""
    values = trial.system_attrs.get(_CONSTRAINTS_KEY)
    return trial.state != TrialState.RUNNING and values is not None and not all(v <= 0 for v in values)


def _curves(trials: list[FrozenTrial], current: FrozenTrial, sign: float, max_step: float | None) -> Curves:
    """`Curves` of an Optuna study (index i: ``trials[i]``; ``current`` in its up-to-date state)."""
    trials = [current if t.number == current.number else t for t in trials]
    shared = _shared_space([t for t in trials if t.intermediate_values])
    X = Space({n: _to_param(d) for n, d in shared.items()}).encode(
        [_internal(t.params, shared) for t in trials if _covers(t.params, t.distributions, shared)]) if shared else None
    rows, k = [], 0
    for t in trials:
        if shared and _covers(t.params, t.distributions, shared):
            rows.append(X[k])
            k += 1
        else:
            rows.append(torch.full((len(shared),), 0.5, dtype=torch.float64))
    finished = [t for t in trials if t.state == TrialState.COMPLETE and t.intermediate_values]

    def curve(t: FrozenTrial) -> tuple[torch.Tensor, torch.Tensor]:
        items = [] if t.state == TrialState.FAIL or _infeasible(t) else sorted(t.intermediate_values.items())
        items = [(s, v) for s, v in items if math.isfinite(v)]
        return (torch.tensor([s for s, _ in items], dtype=torch.float64),
                sign * torch.tensor([v for _, v in items], dtype=torch.float64))

    pairs = [curve(t) for t in trials]
    if max_step is None:
        max_step = max((max(t.intermediate_values) for t in finished), default=math.inf)
    return Curves(
        X=torch.stack(rows) if rows else torch.empty(0, len(shared), dtype=torch.float64),
        steps=tuple(p[0] for p in pairs), values=tuple(p[1] for p in pairs),
        running=torch.tensor([t.state == TrialState.RUNNING for t in trials], dtype=torch.bool),
        stopped=torch.tensor([t.state == TrialState.PRUNED and not _infeasible(t) for t in trials], dtype=torch.bool),
        max_step=float(max_step),
    )


def _shared_space(trials: list[FrozenTrial]) -> dict[str, BaseDistribution]:
    """The non-single-valued distributions every trial of ``trials`` has (same distribution)."""
    if not trials:
        return {}
    shared = dict(trials[0].distributions)
    for t in trials[1:]:
        shared = {n: d for n, d in shared.items() if t.distributions.get(n) == d}
    return {n: d for n, d in shared.items() if not d.single()}
