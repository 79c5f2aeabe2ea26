"""`GPBOSampler`: gpbo's GP Bayesian optimisation as an Optuna sampler.

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
  enter the GP. Multi-objective studies are rejected with
  :class:`gpbo.errors.InvalidArgumentError`.

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
from collections.abc import Mapping
from typing import Any

import torch

from gpbo.engine import suggest
from gpbo.errors import InvalidArgumentError
from gpbo.integrations import require
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
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["GPBOSampler"]

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
    ) -> None:
        self._n_startup = check_int("n_startup_trials", n_startup_trials, 1)
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

    def reseed_rng(self) -> None:
        """Draws a new seed (Optuna calls this in forked workers)."""
        self._seed = secrets.randbits(32)
        self._independent.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Rejects multi-objective studies, then lets the independent sampler prepare."""
        _check_single_objective(study)
        self._independent.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        """The intersection search space, without single-valued distributions."""
        _check_single_objective(study)
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
            complete = [t for t in trials if t.state == TrialState.COMPLETE
                        and _covers(t.params, t.distributions, search_space) and math.isfinite(t.value)]
            if len(complete) < self._n_startup:
                return {}
            space = Space({name: _to_param(dist) for name, dist in search_space.items()})
            pending = self._pending(trials, trial, search_space)
            X = space.encode([_internal(t.params, search_space) for t in complete])
            sign = -1.0 if study.direction is StudyDirection.MINIMIZE else 1.0
            Y = torch.tensor([sign * t.value for t in complete], dtype=torch.float64)
            point = self._suggest(space, X, Y, pending, trial.number)
            params = {name: _to_optuna(dist, point[name]) for name, dist in search_space.items()}
            self._suggested[trial.number] = (params, dict(search_space))
        return params

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        """Delegates to the independent sampler (and warns after the startup trials)."""
        if self._warn and len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= self._n_startup:
            _logger.warning(
                "GPBOSampler: trial %d samples parameter %r with %s, as it is outside the "
                "intersection search space (a dynamic or conditional parameter).",
                trial.number, param_name, type(self._independent).__name__)
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Any
    ) -> None:
        """Forgets the trial's pending point and informs the independent sampler."""
        with self._lock:
            self._suggested.pop(trial.number, None)
        self._independent.after_trial(study, trial, state, values)

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
                 number: int) -> dict[str, Any]:
        """Runs the engine (P = 1, q = 1) and decodes its point."""
        kw = {"dtype": self._settings.dtype, "device": self._settings.device}
        theta = self._theta if self._theta is not None and self._theta.shape[-1] == space.dim + 1 else None
        result = suggest(
            X.to(**kw).unsqueeze(0), Y.to(**kw).unsqueeze(0), dims=space.dims,
            pending=space.encode(pending).to(**kw).unsqueeze(0) if pending else None,
            settings=self._settings, seed=(self._seed * 1_000_003 + number) % _MAX_SEED,
            warm_start=theta,
        )
        theta = getattr(result.model, "theta", None)  # a custom Settings.model factory's model: no warm start
        self._theta = theta.detach() if isinstance(self._settings.model, str) and isinstance(theta, torch.Tensor) else None
        return space.decode(result.candidates[0, 0].to("cpu", torch.float64))


def _check_single_objective(study: Study) -> None:
    if len(study.directions) > 1:
        raise InvalidArgumentError(
            f"GPBOSampler supports single-objective studies only, got {len(study.directions)} "
            f"directions {[d.name for d in study.directions]}")


def _covers(params: dict[str, Any], dists: dict[str, BaseDistribution],
            search_space: dict[str, BaseDistribution]) -> bool:
    """True if every parameter of the search space is set with the same distribution."""
    return all(name in params and dists.get(name) == dist for name, dist in search_space.items())


def _internal(params: dict[str, Any], search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
    return {name: _to_gpbo(dist, params[name]) for name, dist in search_space.items()}
