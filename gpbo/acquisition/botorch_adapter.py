"""Use any BoTorch acquisition function on a gpbo surrogate.

:class:`BoTorchAcquisition` turns a factory ``(model, ctx) -> AcquisitionFunction``
into a gpbo acquisition, ``model`` being the surrogate seen as a BoTorch
model of batch shape ``(P,)`` (:class:`~gpbo.acquisition.botorch_model.GpboBoTorchModel`).
BoTorch's ``X`` is ``batch x q x d``; gpbo's ``(..., P, q, d)`` is such a
tensor with batch ``(..., P)``, and BoTorch's output ``(..., P)`` is gpbo's.
For the named classes, :func:`gpbo.acquisition.botorch` builds the factory
(samplers, candidate sets, fidelity projection) for you. Example::

    from botorch.acquisition import qUpperConfidenceBound
    from botorch.sampling import SobolQMCNormalSampler

    def make_qucb(model, ctx):
        seed = gpbo.acquisition.draw_seed(ctx.generator)  # reproducible samples
        sampler = SobolQMCNormalSampler(torch.Size([256]), seed=seed)
        return qUpperConfidenceBound(model, beta=0.2, sampler=sampler, X_pending=ctx.pending)

    suggest(X, Y, q=4, settings={"acquisition": BoTorchAcquisition(make_qucb)})

BoTorch's analytic functions need a per-problem ``best_f`` shaped ``(P, 1)``
(``ctx.best_f.unsqueeze(-1)``) to broadcast against their ``(..., P, 1)``
means; the MC ones take ``(P,)``.

Two kinds need more than one batched call:

- **per problem** (``per_problem=True``): classes that take one problem's
  ``X_baseline``, candidate set or optimal inputs (qLogNEI with
  ``prune_baseline=True``, GIBBON, JES). The factory is called once per
  problem with ``model.problem(p)`` (batch shape ``()``) and a P = 1
  context of that problem; the P functions are evaluated on their slices of
  X and stacked.
- **one-shot** (``num_fantasies=K``: qKnowledgeGradient,
  qMultiFidelityKnowledgeGradient): the engine maximises over the augmented
  batch of ``q + K`` points (:meth:`BoTorchAcquisition.augmented_q`, BoTorch's
  ``get_augmented_q_batch_size``) and keeps the first q
  (:meth:`BoTorchAcquisition.extract`, BoTorch's ``extract_candidates``).

BoTorch's MC samplers share base samples across batch dims, so P problems
see the same draws, as gpbo's own acquisitions do. The factory owns the
seed: without ``seed=``, BoTorch seeds its samplers from the global RNG.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.acquisition import OneShotAcquisitionFunction
from botorch.models.model import Model
from torch import Tensor

from gpbo.acquisition.botorch_model import GpboBoTorchModel
from gpbo.acquisition.protocol import AcquisitionContext, AcquisitionFn, draw_seed
from gpbo.errors import InvalidArgumentError, UnsupportedAcquisitionError

__all__ = ["GpboBoTorchModel", "BoTorchAcquisition", "BoTorchFactory", "problem_context"]

BoTorchFactory = Callable[[Model, AcquisitionContext], AcquisitionFunction]


class BoTorchAcquisition:
    """Adapter: a BoTorch ``AcquisitionFunction`` factory as a gpbo acquisition.

    Args:
        factory: ``factory(model, ctx) -> AcquisitionFunction`` where ``model``
            is a :class:`GpboBoTorchModel` around ``ctx.model``. Use
            ``ctx.best_f`` (P,), ``ctx.X`` (P, n, d) (e.g. as ``X_baseline``)
            and ``ctx.pending`` (``X_pending``) as needed.
        joint: True (default) when the BoTorch function scores whole
            q-batches (the q* MC family); False for analytic and other
            q = 1 ones (qMaxValueEntropy, GIBBON) so the engine builds
            batches greedily.
        per_problem: call the factory once per problem, with
            ``model.problem(p)`` (batch shape ``()``, X (..., q, d)) and the
            P = 1 context of problem p (:func:`problem_context`).
        num_fantasies: K for a one-shot (``OneShotAcquisitionFunction``)
            factory: the engine then optimises ``q + K`` points per problem.
        name: how ``repr`` and error messages name it (default: the factory's name).

    Raises:
        InvalidArgumentError: if ``factory`` is not callable or ``num_fantasies`` < 1.
    """

    def __init__(
        self, factory: BoTorchFactory, *, joint: bool = True, per_problem: bool = False,
        num_fantasies: int | None = None, name: str | None = None,
    ) -> None:
        if not callable(factory):
            raise InvalidArgumentError(
                f"BoTorchAcquisition needs a callable factory(model, ctx), got {factory!r}"
            )
        if num_fantasies is not None and (isinstance(num_fantasies, bool) or not isinstance(num_fantasies, int)
                                          or num_fantasies < 1):
            raise InvalidArgumentError(f"num_fantasies must be None or an int >= 1, got {num_fantasies!r}")
        self.factory = factory
        self.joint = bool(joint) or num_fantasies is not None
        self.per_problem = bool(per_problem)
        self.num_fantasies = num_fantasies
        self.name = name or getattr(factory, "__name__", repr(factory))

    def __repr__(self) -> str:
        return f"BoTorchAcquisition({self.name!r})"

    def augmented_q(self, q: int) -> int:
        """Points per problem the search optimises: ``q + num_fantasies`` for a one-shot class, else q."""
        return q if self.num_fantasies is None else q + self.num_fantasies

    def extract(self, X: Tensor) -> Tensor:
        """The candidates (P, q, d) of an augmented batch X (P, q + K, d): BoTorch's ``extract_candidates``."""
        return X if self.num_fantasies is None else X[..., : X.shape[-2] - self.num_fantasies, :]

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, q, d) -> (..., P)`` calling the BoTorch function(s)."""
        model = GpboBoTorchModel(ctx.model)
        if not self.per_problem:
            return _batched(self._build(model, ctx))
        seed = draw_seed(ctx.generator)  # one seed for every problem: batched == looped
        acqfs = [self._build(model.problem(p), problem_context(ctx, p, seed)) for p in range(ctx.X.shape[0])]

        def per_problem_acq(X: Tensor) -> Tensor:
            _check_X(X)
            flat = X.reshape(-1, *X.shape[-3:])  # (B, P, q, d): some classes (GIBBON) take one batch dim
            values = torch.stack([acqf(flat[:, p]) for p, acqf in enumerate(acqfs)], -1)  # (B, P)
            return values.reshape(X.shape[:-2])  # (..., P)

        return per_problem_acq

    def _build(self, model: GpboBoTorchModel, ctx: AcquisitionContext) -> AcquisitionFunction:
        acqf = self.factory(model, ctx)
        if not isinstance(acqf, AcquisitionFunction):
            raise InvalidArgumentError(
                f"the BoTorchAcquisition factory must return a botorch AcquisitionFunction, "
                f"got {type(acqf).__name__}"
            )
        if isinstance(acqf, OneShotAcquisitionFunction):
            K = getattr(acqf, "num_fantasies", None)
            if K != self.num_fantasies:
                raise UnsupportedAcquisitionError(
                    f"{type(acqf).__name__} is a one-shot acquisition with {K} fantasies: the engine must "
                    f"optimise its augmented batch, so pass BoTorchAcquisition(..., num_fantasies={K}) "
                    f"(got num_fantasies={self.num_fantasies})"
                )
        return acqf


def _check_X(X: Tensor) -> None:
    if X.dim() < 3:
        raise InvalidArgumentError(f"expected X of shape (..., P, q, d), got {tuple(X.shape)}")


def _batched(acqf: AcquisitionFunction) -> AcquisitionFn:
    def botorch_acq(X: Tensor) -> Tensor:
        _check_X(X)
        return acqf(X)

    return botorch_acq


def problem_context(ctx: AcquisitionContext, p: int, seed: int) -> AcquisitionContext:
    """The P = 1 context of problem ``p`` (X (1, n, d), Y (1, n), ...); ``model`` stays the P-problem one.

    Its generator is a fresh one seeded with ``seed`` (the same for every
    problem), so problem p draws what it would draw alone.
    """
    sl = slice(p, p + 1)
    generator = torch.Generator(device=ctx.X.device).manual_seed(seed)
    return dataclasses.replace(
        ctx, generator=generator, X=ctx.X[sl], Y=ctx.Y[sl], best_f=ctx.best_f[sl],
        pending=None if ctx.pending is None else ctx.pending[sl],
        ref_point=None if ctx.ref_point is None else ctx.ref_point[sl],
    )
