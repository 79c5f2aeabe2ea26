"""`GPBOSearch`: gpbo as a Ray Tune searcher.

Use it like Ray's other searchers::

    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from gpbo.integrations.ray_tune import GPBOSearch

    search = ConcurrencyLimiter(GPBOSearch(seed=0), max_concurrent=4)
    tuner = tune.Tuner(
        train_fn,
        param_space={"lr": tune.loguniform(1e-4, 1e-1), "width": tune.randint(16, 257)},
        tune_config=tune.TuneConfig(search_alg=search, metric="loss", mode="min", num_samples=40),
    )
    tuner.fit()

Each ``suggest`` is one `gpbo.Optimizer.ask`; trials that are still running
are pending points, so concurrent trials do not repeat. A trial that errors,
or whose last result lacks the metric or holds a non-finite or non-numeric
value, is told as FAILED (it never enters the GP as a number).

Several metrics: Tune's ``TuneConfig`` takes one ``metric`` and ``mode``,
but a searcher may optimise more (Ray's own ``OptunaSearch`` takes lists).
``GPBOSearch(metric=["loss", "latency"], mode=["min", "min"])`` makes a
multi-objective `gpbo.Optimizer`, and ``constraints={"memory": ("<=", 16.0)}``
adds constraints on reported results (as for `gpbo.Optimizer`); every
metric is read from the trial's last result. Pass them to ``GPBOSearch``:
a ``TuneConfig`` metric does not replace a list.

Supported Ray Tune domains: ``tune.uniform`` / ``tune.loguniform`` (``Real``),
``tune.randint`` / ``tune.lograndint`` (``Integer``; Ray's upper bound is
exclusive) and ``tune.choice`` (``Categorical`` over the choice indices, so
any choice object works). Nested dicts are supported; other values in the
config are constants. A `gpbo.Space` (or a dict of gpbo parameters) can be
passed as ``space`` instead.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

from gpbo.errors import InvalidArgumentError, InvalidSpaceError, InvalidTrialError
from gpbo.integrations import require
from gpbo.optimizer import Optimizer
from gpbo.settings import Settings, as_settings
from gpbo.space import Categorical, Integer, Param, Real, Space

require("ray.tune", "ray")
from ray.tune.search import Searcher
from ray.tune.search.sample import Categorical as RayCategorical
from ray.tune.search.sample import Domain, LogUniform, Uniform
from ray.tune.search.sample import Float as RayFloat
from ray.tune.search.sample import Integer as RayInteger
from ray.tune.search.variant_generator import parse_spec_vars
from ray.tune.utils.util import flatten_dict, unflatten_dict

__all__ = ["GPBOSearch"]

_MODES = ("min", "max")


def _convert_domain(name: str, domain: Domain) -> tuple[Param, list[Any] | None]:
    """A Ray Tune domain -> (gpbo parameter, categories for a choice else None)."""
    sampler = domain.get_sampler()
    if isinstance(domain, RayCategorical) and isinstance(sampler, Uniform):
        return Categorical(list(range(len(domain.categories)))), list(domain.categories)
    if isinstance(domain, RayFloat) and isinstance(sampler, (Uniform, LogUniform)):
        return Real(domain.lower, domain.upper, log=isinstance(sampler, LogUniform)), None
    if isinstance(domain, RayInteger) and isinstance(sampler, (Uniform, LogUniform)):
        return Integer(domain.lower, domain.upper - 1, log=isinstance(sampler, LogUniform)), None
    raise InvalidSpaceError(
        f"GPBOSearch does not support parameter {name!r}: {type(domain).__name__} domain with a "
        f"{type(sampler).__name__} sampler; use tune.uniform, loguniform, randint, lograndint or choice")


def convert_search_space(config: dict[str, Any]) -> tuple[Space, dict[str, list[Any]]]:
    """Ray Tune param space -> (gpbo Space with "/"-joined names, choices of categoricals).

    Raises:
        InvalidSpaceError: For grid search, unsupported domains, or no tunable parameter.
    """
    _, domains, grids = parse_spec_vars(config)
    if grids:
        raise InvalidSpaceError(f"GPBOSearch cannot tune grid_search parameters, got {[p for p, _ in grids]}")
    _, domains, _ = parse_spec_vars(flatten_dict(config, prevent_delimiter=True))
    if not domains:
        raise InvalidSpaceError(f"the param space has no tunable parameter: {config!r:.200}")
    params, choices = {}, {}
    for path, domain in domains:
        name = "/".join(path)
        params[name], categories = _convert_domain(name, domain)
        if categories is not None:
            choices[name] = categories
    return Space(params), choices


class GPBOSearch(Searcher):
    """Ray Tune searcher backed by a `gpbo.Optimizer`.

    Args:
        space: A Ray Tune param space dict, a `gpbo.Space` or a dict of gpbo
            parameters; None takes the ``param_space`` given to ``tune.Tuner``.
        metric: The result key to optimise, or a list of keys (several
            objectives); None takes TuneConfig's metric.
        mode: ``"min"`` or ``"max"``, or a list of them, one per metric;
            None takes TuneConfig's mode.
        seed, settings: As for `gpbo.Optimizer` (``settings`` a `gpbo.Settings`
            or a dict of its fields: acquisition, n_initial, device, ...).
        constraints: None, or ``{result key: ("<=" | ">=", bound)}``, as for
            `gpbo.Optimizer`; the study then optimises ``metric`` among
            feasible trials.

    Raises:
        InvalidArgumentError: If ``mode`` is invalid, or lists of metrics and
            modes differ in length.
        InvalidSpaceError: If ``space`` is invalid.
    """

    def __init__(
        self,
        space: dict[str, Any] | Space | None = None,
        *,
        metric: str | list[str] | None = None,
        mode: str | list[str] | None = None,
        seed: int | None = None,
        settings: Settings | Mapping[str, Any] | None = None,
        constraints: Mapping[str, Any] | None = None,
    ) -> None:
        _check_mode(mode)
        _check_lists(metric, mode)
        super().__init__(metric=metric, mode=mode)
        self._constraints = None if constraints is None else dict(constraints)
        self._seed = seed
        self._settings = as_settings(settings)
        self._space: Space | None = None
        self._choices: dict[str, list[Any]] = {}
        self._opt: Optimizer | None = None
        self._live: dict[str, int] = {}  # Ray trial id -> gpbo trial id
        if space is not None:
            self._set_space(space)

    def _set_space(self, space: dict[str, Any] | Space) -> None:
        if isinstance(space, Space):
            self._space = space
        elif isinstance(space, dict) and space and all(isinstance(p, (Real, Integer, Categorical))
                                                       for p in space.values()):
            self._space = Space(space)
        elif isinstance(space, dict):
            self._space, self._choices = convert_search_space(space)
        else:
            raise InvalidSpaceError(f"space must be a dict or a gpbo.Space, got {type(space).__name__}")

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Takes metric, mode and param space from ``tune.Tuner``; False if a space is already set."""
        if self._space is not None and config:
            return False
        _check_mode(mode)
        if config:
            self._set_space(config)
        if not isinstance(self._metric, list):  # a list given to GPBOSearch stays
            self._metric = metric or self._metric
            self._mode = mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any]:
        """Asks the optimizer for a configuration (nested like the param space).

        Raises:
            InvalidArgumentError: If the space, metric or mode is still unset.
        """
        trial = self._optimizer().ask()
        self._live[trial_id] = trial.id
        flat = {name: self._choices[name][v] if name in self._choices else v
                for name, v in trial.params.items()}
        return unflatten_dict(flat)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Tells the trial's metric, or a failure for an error or a missing / bad metric."""
        if trial_id not in self._live or self._opt is None:
            return
        gpbo_id = self._live.pop(trial_id)
        names = self._opt.metrics.names or (self._metric,)
        missing = [name for name in names if name not in (result or {})]
        if error:
            value: Any = RuntimeError(f"Ray Tune trial {trial_id} errored")
        elif missing:
            value = RuntimeError(f"Ray Tune trial {trial_id} reported no {missing[0]!r}")
        else:
            value = result[self._metric] if self._opt.metrics.plain else {name: result[name] for name in names}
        try:
            self._opt.tell(gpbo_id, value)
        except InvalidTrialError as exc:  # a non-numeric metric: record the trial as failed
            self._opt.tell(gpbo_id, exc)

    def get_state(self) -> dict[str, Any]:
        """The searcher's state as plain data (the optimizer as its `state_dict`)."""
        return {
            "metric": self._metric, "mode": self._mode, "seed": self._seed, "settings": self._settings,
            "constraints": self._constraints,
            "space": None if self._space is None else self._space.to_dict(), "choices": self._choices,
            "optimizer": None if self._opt is None else self._opt.state_dict(), "live": dict(self._live),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a `get_state` result."""
        self._metric, self._mode = state["metric"], state["mode"]
        self._seed, self._settings = state["seed"], state["settings"]
        self._constraints = state.get("constraints")
        self._space = None if state["space"] is None else Space.from_dict(state["space"])
        self._choices, self._live = state["choices"], dict(state["live"])
        self._opt = None
        if state["optimizer"] is not None:
            self._opt = Optimizer.from_state_dict(state["optimizer"], settings=self._settings)

    def save(self, checkpoint_path: str) -> None:
        """Pickles `get_state` to ``checkpoint_path``."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        """Loads a `save` file."""
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def _optimizer(self) -> Optimizer:
        if self._opt is None:
            missing = [k for k, v in (("space", self._space), ("metric", self._metric), ("mode", self._mode))
                       if v is None]
            if missing:
                raise InvalidArgumentError(
                    f"GPBOSearch has no {', '.join(missing)}: pass them to GPBOSearch or to "
                    "tune.Tuner (param_space=, TuneConfig(metric=, mode=))")
            self._opt = Optimizer(self._space, settings=self._settings, seed=self._seed, **self._study_args())
        return self._opt

    def _study_args(self) -> dict[str, Any]:
        """``maximize=`` for one plain metric, else ``objectives=`` and ``constraints=``."""
        if not isinstance(self._metric, list) and self._constraints is None:
            return {"maximize": self._mode == "max"}
        metrics = self._metric if isinstance(self._metric, list) else [self._metric]
        modes = self._mode if isinstance(self._mode, list) else [self._mode]
        _check_lists(metrics, modes)
        directions = {"min": "minimize", "max": "maximize"}
        return {"objectives": {m: directions[d] for m, d in zip(metrics, modes, strict=True)},
                "constraints": self._constraints}


def _check_mode(mode: str | list[str] | None) -> None:
    for one in mode if isinstance(mode, list) else [mode]:
        if one is not None and one not in _MODES:
            raise InvalidArgumentError(f"mode must be 'min' or 'max', got {one!r} (a list of them for several metrics)")


def _check_lists(metric: Any, mode: Any) -> None:
    """A list of metrics needs a list of modes of the same length (and the reverse)."""
    if isinstance(metric, list) or isinstance(mode, list):
        if not (isinstance(metric, list) and isinstance(mode, list) and len(metric) == len(mode) and metric):
            raise InvalidArgumentError(
                f"several metrics need a list of modes of the same length, got metric={metric!r}, mode={mode!r}")
