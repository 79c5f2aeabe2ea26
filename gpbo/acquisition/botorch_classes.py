"""``botorch("qKnowledgeGradient", num_fantasies=64)``: a BoTorch class by name, ready to run.

:func:`botorch` builds the :class:`~gpbo.acquisition.botorch_adapter.BoTorchAcquisition`
for any class of ``botorch.acquisition`` (by name or class) and fills the
arguments the class takes and the caller did not give, from the context:

- ``best_f``: the incumbent per problem; ``X_baseline``: the observed X;
  ``X_pending``: the pending points (joint classes).
- ``sampler``: a ``SobolQMCNormalSampler`` of ``num_samples`` draws (one-shot
  classes: ``num_fantasies`` draws), seeded from ``ctx.generator``.
- ``candidate_set`` (qMaxValueEntropy, GIBBON): ``num_candidates`` scrambled
  Sobol points plus the problem's observations; ``mc_points``
  (qNegIntegratedPosteriorVariance): ``num_candidates`` Sobol points.
- ``optimal_inputs`` / ``optimal_outputs`` (qJointEntropySearch): the maxima
  of ``num_optima`` joint posterior draws on the candidate set. BoTorch's
  ``get_optimal_samples`` maximises Matheron paths, which need a BoTorch GP's
  training data and kernel modules; drawing on a Sobol set needs only the
  posterior, so it serves any gpbo surrogate.
- ``project``, ``cost_aware_utility``, ``current_value``
  (qMultiFidelityKnowledgeGradient): with ``fidelity_dim=j``, projection to
  ``target_fidelity`` on dim j, the cost ``fixed_cost + s_j`` (BoTorch's
  ``AffineFidelityCostModel``) and the best projected posterior mean at the
  observations.

Every seed comes from ``ctx.generator``, so a suggestion is reproducible.
Classes that take one problem's ``X_baseline``, candidate set or optima run
per problem (:data:`PER_PROBLEM`); one-shot classes tell the engine their
augmented batch. See docs in `gpbo.acquisition.botorch_adapter`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import botorch.acquisition as botorch_acquisition
import torch
from botorch.acquisition import (
    AcquisitionFunction,
    active_learning,
    analytic,
    joint_entropy_search,
    knowledge_gradient,
    max_value_entropy_search,
    predictive_entropy_search,
)
from botorch.acquisition.acquisition import OneShotAcquisitionFunction
from botorch.acquisition.analytic import AnalyticAcquisitionFunction
from botorch.acquisition.cost_aware import InverseCostWeightedUtility
from botorch.acquisition.utils import project_to_target_fidelity
from botorch.models.cost import AffineFidelityCostModel
from botorch.sampling import SobolQMCNormalSampler
from torch import Tensor

from gpbo.acquisition.botorch_adapter import BoTorchAcquisition
from gpbo.acquisition.botorch_model import GpboBoTorchModel
from gpbo.acquisition.protocol import AcquisitionContext, draw_seed
from gpbo.errors import InvalidArgumentError, UnsupportedAcquisitionError
from gpbo.validation import check_int, check_real

__all__ = ["botorch", "PER_PROBLEM", "ONE_POINT"]

PER_PROBLEM = {
    "qLogNoisyExpectedImprovement": "prune_baseline=True prunes a single problem's X_baseline",
    "qNoisyExpectedImprovement": "prune_baseline=True prunes a single problem's X_baseline",
    "qLowerBoundMaxValueEntropy": "GIBBON's candidate-set terms assume an unbatched model",
    "qMaxValueEntropy": "the sampled max values are drawn from one problem's candidate set",
    "qJointEntropySearch": "the optimal inputs condition one problem's model",
}
"""The classes run once per problem, and why."""

ONE_POINT = ("qMaxValueEntropy", "qLowerBoundMaxValueEntropy", "qMultiFidelityMaxValueEntropy")
"""MC classes that score one point at a time (``batch x 1 x d``): the engine builds q-batches greedily."""

_UNSUPPORTED = {
    "qPredictiveEntropySearch": "its EP updates need the training data and kernel of a BoTorch GP",
}


def botorch(
    acquisition: str | type[AcquisitionFunction], /, *, num_samples: int = 256, num_candidates: int = 512,
    num_optima: int = 16, fidelity_dim: int | None = None, target_fidelity: float = 1.0,
    fixed_cost: float = 1.0, per_problem: bool | None = None, **kwargs: Any,
) -> BoTorchAcquisition:
    """A BoTorch acquisition class as a gpbo acquisition, its arguments filled from the context.

    Args:
        acquisition: a class of ``botorch.acquisition`` or its name, e.g.
            ``"qKnowledgeGradient"``, ``"qLowerBoundMaxValueEntropy"``.
        num_samples: MC samples of the default sampler.
        num_candidates: Sobol points of the default candidate set / ``mc_points``.
        num_optima: optimum samples of qJointEntropySearch.
        fidelity_dim: the encoded dim of the fidelity (qMultiFidelityKnowledgeGradient: required).
        target_fidelity: the fidelity (in [0, 1]) to project to.
        fixed_cost: the fixed part of the affine cost ``fixed_cost + s``.
        per_problem: force (True) or forbid (False) one BoTorch function per
            problem; None: per problem for the classes of :data:`PER_PROBLEM`.
        **kwargs: arguments of the class (``num_fantasies=64``, ``beta=0.2``, ...),
            given as they are.

    Returns:
        A :class:`BoTorchAcquisition` (pass it as ``Settings(acquisition=...)``).

    Raises:
        InvalidArgumentError: for an unknown name, a non-acquisition class or bad options.
        UnsupportedAcquisitionError: for a class that cannot run on a gpbo model.
    """
    cls = _resolve_class(acquisition)
    name = cls.__name__
    if name in _UNSUPPORTED:
        raise UnsupportedAcquisitionError(f"{name} cannot run through gpbo: {_UNSUPPORTED[name]}")
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise InvalidArgumentError(f"{name} takes no argument(s) {unknown}; its arguments are {sorted(params)[1:]}")
    for opt, value in (("num_samples", num_samples), ("num_candidates", num_candidates), ("num_optima", num_optima)):
        check_int(opt, value, 1)
    if fidelity_dim is not None:
        check_int("fidelity_dim", fidelity_dim, 0)
    target_fidelity = check_real("target_fidelity", target_fidelity, low=0.0, strict=False)
    if target_fidelity > 1.0:
        raise InvalidArgumentError(f"target_fidelity must be in [0, 1], got {target_fidelity!r}")
    fixed_cost = check_real("fixed_cost", fixed_cost, low=0.0)
    if per_problem is not None and not isinstance(per_problem, bool):
        raise InvalidArgumentError(f"per_problem must be None or a bool, got {per_problem!r:.100}")
    one_shot = issubclass(cls, OneShotAcquisitionFunction)
    num_fantasies = None
    if one_shot:
        num_fantasies = check_int("num_fantasies", kwargs.get("num_fantasies", params["num_fantasies"].default), 1)
    if "project" in params and "project" not in kwargs and fidelity_dim is None:
        raise InvalidArgumentError(f"{name} needs the fidelity: botorch({name!r}, fidelity_dim=<encoded dim>)")
    spec = _Spec(cls, dict(kwargs), set(params), num_samples, num_candidates, num_optima, num_fantasies,
                 fidelity_dim, target_fidelity, fixed_cost)
    joint = not (issubclass(cls, AnalyticAcquisitionFunction) or name in ONE_POINT)
    return BoTorchAcquisition(
        spec.build, joint=joint, per_problem=_per_problem(name, kwargs) if per_problem is None else per_problem,
        num_fantasies=num_fantasies, name=name,
    )


def _per_problem(name: str, kwargs: dict[str, Any]) -> bool:
    """Whether the class runs once per problem (:data:`PER_PROBLEM`; NEI only when it prunes)."""
    if "NoisyExpectedImprovement" in name and kwargs.get("prune_baseline", True) is False:
        return False
    return name in PER_PROBLEM


def _resolve_class(acquisition: str | type) -> type[AcquisitionFunction]:
    if isinstance(acquisition, str):
        modules = (botorch_acquisition, analytic, joint_entropy_search, max_value_entropy_search,
                   knowledge_gradient, active_learning, predictive_entropy_search)
        cls = next((getattr(m, acquisition) for m in modules if hasattr(m, acquisition)), None)
        if cls is None:
            raise InvalidArgumentError(
                f"unknown BoTorch acquisition {acquisition!r}; expected a class name of botorch.acquisition "
                "such as 'qLogNoisyExpectedImprovement', 'qKnowledgeGradient', 'qLowerBoundMaxValueEntropy'"
            )
    else:
        cls = acquisition
    if not (inspect.isclass(cls) and issubclass(cls, AcquisitionFunction)) or inspect.isabstract(cls):
        raise InvalidArgumentError(f"expected a concrete botorch AcquisitionFunction class, got {acquisition!r}")
    return cls


class _Spec:
    """The class and its options; :meth:`build` is the adapter's factory."""

    def __init__(self, cls: type, kwargs: dict[str, Any], params: set[str], num_samples: int,
                 num_candidates: int, num_optima: int, num_fantasies: int | None,
                 fidelity_dim: int | None, target_fidelity: float, fixed_cost: float) -> None:
        self.cls, self.kwargs, self.params = cls, kwargs, params
        self.num_samples, self.num_candidates, self.num_optima = num_samples, num_candidates, num_optima
        self.num_fantasies, self.fidelity_dim = num_fantasies, fidelity_dim
        self.target_fidelity, self.fixed_cost = target_fidelity, fixed_cost
        self.__name__ = cls.__name__

    def build(self, model: GpboBoTorchModel, ctx: AcquisitionContext) -> AcquisitionFunction:
        """The class on ``model`` with every argument it takes and was not given filled from ``ctx``."""
        single = model.batch_shape == torch.Size([])  # a problem view: ctx is P = 1
        d = ctx.X.shape[-1]
        if self.fidelity_dim is not None and not 0 <= self.fidelity_dim < d:
            raise InvalidArgumentError(f"fidelity_dim must be in [0, {d}), got {self.fidelity_dim}")
        args = dict(self.kwargs)
        for name, make in self._defaults(model, ctx, single, d).items():
            if name in self.params and name not in args:
                args[name] = make()
        seed = draw_seed(ctx.generator)  # BoTorch draws some samples (MES's max values) from the global RNG
        try:
            with torch.random.fork_rng(devices=[ctx.X.device] if ctx.X.device.type == "cuda" else []):
                torch.manual_seed(seed)
                return self.cls(model, **args)
        except (RuntimeError, ValueError, TypeError, AttributeError, NotImplementedError) as err:
            raise UnsupportedAcquisitionError(f"{self.cls.__name__} could not be built on the gpbo model: {err}") from err

    def _defaults(self, model: GpboBoTorchModel, ctx: AcquisitionContext, single: bool, d: int) -> dict[str, Any]:
        one = (lambda t: t[0]) if single else (lambda t: t)  # drop P = 1 for a problem view
        analytic = issubclass(self.cls, AnalyticAcquisitionFunction)
        seed = draw_seed(ctx.generator)
        sobol = functools.partial(_sobol, ctx.X, seed)
        optima = functools.cache(lambda: self._optima(model, ctx, seed, single))
        fantasy_draws = 1 if "IntegratedPosteriorVariance" in self.cls.__name__ else None  # Y-free fantasies
        return {
            "best_f": lambda: one(ctx.best_f.unsqueeze(-1) if analytic and not single else ctx.best_f),
            "X_baseline": lambda: one(ctx.X),
            "X_pending": lambda: None if ctx.pending is None else one(ctx.pending),
            "sampler": lambda: SobolQMCNormalSampler(
                torch.Size([fantasy_draws or self.num_fantasies or self.num_samples]), seed=seed),
            "candidate_set": lambda: torch.cat([sobol(self.num_candidates), ctx.X.reshape(-1, ctx.X.shape[-1])]),
            "mc_points": lambda: sobol(self.num_candidates),
            "optimal_inputs": lambda: optima()[0],
            "optimal_outputs": lambda: optima()[1],
            "project": lambda: self._project(d),
            "cost_aware_utility": lambda: InverseCostWeightedUtility(
                AffineFidelityCostModel({self._fidelity(): 1.0}, fixed_cost=self.fixed_cost)),
            "current_value": lambda: one(_current_value(model, ctx.X, self._project(d), single)),
        }

    def _fidelity(self) -> int:
        if self.fidelity_dim is None:
            raise InvalidArgumentError(f"{self.cls.__name__} needs fidelity_dim= for its cost model")
        return self.fidelity_dim

    def _project(self, d: int):
        if self.fidelity_dim is None:
            return lambda X: X
        return functools.partial(project_to_target_fidelity, target_fidelities={self.fidelity_dim: self.target_fidelity}, d=d)

    def _optima(self, model: GpboBoTorchModel, ctx: AcquisitionContext, seed: int, single: bool) -> tuple[Tensor, Tensor]:
        """(num_optima, d) argmaxes and (num_optima, 1) maxima of joint posterior draws on a Sobol set."""
        if not single:
            raise UnsupportedAcquisitionError(
                f"{self.cls.__name__}: optimal inputs condition one problem's model; run it per_problem=True")
        cand = torch.cat([_sobol(ctx.X, seed, self.num_candidates), ctx.X[0]])  # (N, d)
        with torch.no_grad():
            post = model.posterior(cand)
            sampler = SobolQMCNormalSampler(torch.Size([self.num_optima]), seed=seed + 1)
            draws = sampler(post).squeeze(-1)  # (S, N)
        best = draws.argmax(-1)  # (S,)
        return cand[best], draws.gather(-1, best.unsqueeze(-1))  # (S, d), (S, 1)


def _sobol(X: Tensor, seed: int, n: int) -> Tensor:
    """(n, d) scrambled Sobol points, X's dtype and device."""
    engine = torch.quasirandom.SobolEngine(X.shape[-1], scramble=True, seed=seed % (2**31))
    return engine.draw(n, dtype=torch.float64).to(X)


def _current_value(model: GpboBoTorchModel, X: Tensor, project, single: bool) -> Tensor:
    """(P,) the largest posterior mean at the observations projected to the target fidelity."""
    with torch.no_grad():
        Xp = project(X)  # (P, n, d)
        if single:
            return model.posterior(Xp[0]).mean.amax((-2, -1)).reshape(1)
        return model.posterior(Xp).mean.amax((-2, -1))  # (P,)
