"""Acquisition functions: the protocol, the built-ins and a name registry.

``get("log_ei")`` returns a default-configured instance; objects and plain
callables pass through unchanged, so the engine accepts either. A new
acquisition is one file plus one line in ``REGISTRY`` (or a call to
:func:`register` from user code). See :mod:`gpbo.acquisition.protocol` for
the contract and a worked example.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from gpbo.acquisition.analytic import UCB, LogAugmentedEI, LogEI, LogPI, PosteriorMean
from gpbo.acquisition.botorch_adapter import BoTorchAcquisition
from gpbo.acquisition.botorch_classes import botorch
from gpbo.acquisition.botorch_model import GpboBoTorchModel
from gpbo.acquisition.constrained import Constrained, qLogNEIConstrained
from gpbo.acquisition.mo_portfolio import MultiObjectiveRoundRobin
from gpbo.acquisition.monte_carlo import qLogNEI
from gpbo.acquisition.nehvi import qLogNEHVI
from gpbo.acquisition.parego import qLogNParEGO
from gpbo.acquisition.portfolio import RoundRobin
from gpbo.acquisition.protocol import (
    Acquisition,
    AcquisitionContext,
    AcquisitionFn,
    augmented_q,
    draw_seed,
    extract_candidates,
    is_joint,
)
from gpbo.acquisition.thompson import ThompsonSampling
from gpbo.errors import InvalidArgumentError
from gpbo.outcomes import Outcomes

__all__ = [
    "Acquisition",
    "AcquisitionContext",
    "AcquisitionFn",
    "AUTO",
    "BoTorchAcquisition",
    "Constrained",
    "DEFAULT_ACQUISITION",
    "GpboBoTorchModel",
    "LogAugmentedEI",
    "LogEI",
    "LogPI",
    "PosteriorMean",
    "REGISTRY",
    "MultiObjectiveRoundRobin",
    "RoundRobin",
    "ThompsonSampling",
    "UCB",
    "augmented_q",
    "botorch",
    "constrained_multi_objective_default",
    "draw_seed",
    "extract_candidates",
    "get",
    "is_joint",
    "qLogNEHVI",
    "qLogNEI",
    "qLogNEIConstrained",
    "qLogNParEGO",
    "register",
    "resolve",
]

DEFAULT_ACQUISITION = "log_aei_ucb"
"""The engine's and the facade's default: augmented EI and UCB taking turns
(:class:`RoundRobin`). Taking turns was chosen on both benchmark suites
against LogEI and UCB alone (docs/decisions/0010-default-portfolio-logei-ucb.md);
augmented EI then replaced LogEI in the portfolio
(docs/decisions/0011-augmented-ei-in-default-portfolio.md)."""

AUTO = "auto"
"""`gpbo.Settings`' default acquisition: the default for the outcome layout (:func:`resolve`)."""

REGISTRY: dict[str, Callable[[], Acquisition]] = {
    "log_ei": LogEI,
    "log_aei": LogAugmentedEI,
    "log_pi": LogPI,
    "ucb": UCB,
    "log_aei_ucb": RoundRobin,
    "log_ei_ucb": lambda: RoundRobin((LogEI(), UCB())),
    "posterior_mean": PosteriorMean,
    "qlog_nei": qLogNEI,
    "thompson": ThompsonSampling,
    "qlog_nehvi": qLogNEHVI,
    "qlog_parego": qLogNParEGO,
    "qlog_nehvi_parego": MultiObjectiveRoundRobin,
}

_MAX_NEHVI_OBJECTIVES = 4  # qLogNEHVI's box decompositions grow fast with m; ParEGO above


def resolve(name_or_obj: str | Acquisition | Callable, outcomes: Outcomes) -> Acquisition | Callable:
    """The acquisition to run for ``outcomes``: ``"auto"`` resolved, constraints wrapped in.

    - ``"auto"``: one objective: :data:`DEFAULT_ACQUISITION` (``"log_aei_ucb"``);
      one objective and constraints: the same wrapped in :class:`Constrained`
      (augmented EI's incumbent then the effective best among the feasible
      observations, docs/decisions/0052-constrained-augmented-ei.md); 2-4 objectives: qLogNEHVI;
      2-4 objectives and constraints: qLogNEHVI with a qLogNParEGO turn every
      third point (:func:`constrained_multi_objective_default`); 5 or more:
      qLogNParEGO.
    - a multi-objective acquisition (``multi_objective = True``: ``"qlog_nehvi"``,
      ``"qlog_parego"``) needs >= 2 objectives and handles constraints itself.
    - any other acquisition is single-objective: with constraints, a one-point
      one is wrapped in :class:`Constrained` and ``"qlog_nei"`` becomes
      :class:`qLogNEIConstrained`; other joint ones are refused.

    Raises:
        InvalidArgumentError: naming the acquisition and the outcome layout it cannot serve.
    """
    m, k = outcomes.n_objectives, outcomes.n_constraints
    if isinstance(name_or_obj, str) and name_or_obj == AUTO:
        if m == 1:
            return get(DEFAULT_ACQUISITION) if k == 0 else Constrained(get(DEFAULT_ACQUISITION))
        if m > _MAX_NEHVI_OBJECTIVES:
            return qLogNParEGO()
        return qLogNEHVI() if k == 0 else constrained_multi_objective_default()
    acq = get(name_or_obj)
    label = name_or_obj if isinstance(name_or_obj, str) else repr(acq)
    if getattr(acq, "multi_objective", False):
        if m < 2:
            raise InvalidArgumentError(
                f"acquisition {label!r} is multi-objective and needs >= 2 objectives, got {m} "
                "(use 'auto', 'log_aei_ucb' or 'qlog_nei' for one)"
            )
        return acq
    if m > 1:
        raise InvalidArgumentError(
            f"acquisition {label!r} is single-objective and cannot serve {m} objectives; "
            "use 'auto', 'qlog_nehvi' or 'qlog_parego'"
        )
    if k == 0:
        return acq
    if isinstance(acq, qLogNEI):
        return qLogNEIConstrained(num_samples=acq.num_samples, max_baseline=acq.max_baseline,
                                  tau_max=acq.tau_max, tau_relu=acq.tau_relu)
    if is_joint(acq):
        raise InvalidArgumentError(
            f"acquisition {label!r} does not handle constraints ({k} given); "
            "use 'auto', 'qlog_nei' or a one-point acquisition"
        )
    return Constrained(acq)


def constrained_multi_objective_default() -> MultiObjectiveRoundRobin:
    """qLogNEHVI, qLogNEHVI, qLogNParEGO taking turns point by point: the default for 2-4 objectives with constraints.

    Constraints can split the feasible front into pieces that qLogNEHVI,
    weighting by a feasibility model that does not reach unexplored regions,
    rarely finds (C2-DTLZ2: 8 of 16 runs missed an end piece); ParEGO's
    random scalarisations reach them. One turn in three keeps most of
    qLogNEHVI's refinement (docs/decisions/0051-parego-turns-under-constraints.md).
    """
    nehvi = qLogNEHVI()
    return MultiObjectiveRoundRobin((nehvi, nehvi, qLogNParEGO()))


def get(name_or_obj: str | Acquisition | Callable) -> Acquisition | Callable:
    """Resolve an acquisition given by registry name, or pass one through.

    Args:
        name_or_obj: a name in :data:`REGISTRY` (``"log_ei"``, ``"log_aei"``, ``"log_pi"``,
            ``"ucb"``, ``"log_aei_ucb"``, ``"log_ei_ucb"``, ``"posterior_mean"``, ``"qlog_nei"``,
            ``"thompson"``),
            an :class:`Acquisition` object, or a function ``f(ctx) -> callable``.

    Returns:
        A fresh default instance for a name; the object itself otherwise.

    Raises:
        InvalidArgumentError: for an unknown name or a non-callable object.
    """
    if isinstance(name_or_obj, str):
        if name_or_obj == AUTO:
            return get(DEFAULT_ACQUISITION)  # one objective; see resolve for other outcome layouts
        factory = REGISTRY.get(name_or_obj)
        if factory is None:
            raise InvalidArgumentError(
                f"unknown acquisition {name_or_obj!r}; expected one of {sorted(REGISTRY)} "
                "or an object following gpbo.acquisition.Acquisition"
            )
        return factory()
    if isinstance(name_or_obj, type) and _builds_without_arguments(name_or_obj):  # LogEI for LogEI()
        raise InvalidArgumentError(
            f"acquisition must be an instance, got the class {name_or_obj.__name__}; pass {name_or_obj.__name__}()")
    if callable(name_or_obj):
        return name_or_obj
    raise InvalidArgumentError(
        "acquisition must be a registry name or a callable ctx -> fn, got "
        f"{name_or_obj!r} ({type(name_or_obj).__name__})"
    )


def _builds_without_arguments(cls: type) -> bool:
    """True if ``cls()`` needs no argument (so ``cls(ctx)`` cannot be the ``f(ctx) -> fn`` it was passed as)."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # no signature to read
        return False
    required = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return not any(p.kind in required and p.default is inspect.Parameter.empty for p in params)


def register(name: str, factory: Callable[[], Acquisition]) -> None:
    """Add ``factory`` (called with no arguments by :func:`get`) under ``name``.

    Raises:
        InvalidArgumentError: if ``name`` is not a non-empty string, is
            already registered or reserved (``"auto"``), or ``factory`` is not callable.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"acquisition name must be a non-empty str, got {name!r}")
    if name == AUTO:
        raise InvalidArgumentError(f"acquisition name {AUTO!r} is reserved for the default; choose another name")
    if name in REGISTRY:
        raise InvalidArgumentError(f"acquisition {name!r} is already registered")
    if not callable(factory):
        raise InvalidArgumentError(f"factory for {name!r} must be callable, got {factory!r}")
    REGISTRY[name] = factory
