"""The acquisition-function contract: write one small class, plug it in.

An acquisition is built once per suggestion from an :class:`AcquisitionContext`
(the fitted model, the data, the incumbent, pending points and a seeded
generator) and returns a function ``X (..., P, q, d) -> values (..., P)`` that
the optimiser MAXIMISES by gradient ascent. ``P`` is the problem dimension:
the function scores all P problems at once, and any number of leading batch
dims (restarts, raw samples, line-search steps) must broadcast through.

``joint = False`` acquisitions only ever see ``q == 1``; the engine builds
batches greedily (kriging believer) and folds pending points into the model.
``joint = True`` acquisitions get the full ``q`` and ``ctx.pending`` and
handle both themselves. A plain function ``f(ctx) -> callable`` is accepted
too and counts as ``joint = False``.

Example (a researcher's acquisition; pass the instance as ``acquisition=``)::

    import torch
    from gpbo.acquisition import AcquisitionContext

    class LogProbAbove:
        '''log P(f(x) > threshold), one point at a time.'''
        joint = False

        def __init__(self, threshold: float) -> None:
            self.threshold = threshold

        def __call__(self, ctx: AcquisitionContext):
            def fn(X: torch.Tensor) -> torch.Tensor:     # X (..., P, 1, d)
                post = ctx.model.posterior(X)
                mean = post.mean.squeeze(-1)              # (..., P)
                sigma = post.variance.squeeze(-1).clamp_min(1e-12).sqrt()
                return torch.special.log_ndtr((mean - self.threshold) / sigma)
            return fn

    suggestion = gpbo.suggest(X, Y, settings={"acquisition": LogProbAbove(0.5)})

What the model offers. ``ctx.model`` follows the base
:class:`~gpbo.models.protocol.Surrogate` protocol (``posterior``,
``condition``); an acquisition that needs more (the noise, the kernel, ...)
checks the capability protocol of :mod:`gpbo.models.protocol` when it is
built, with ``require(ctx.model, NoiseAndScale, "MyAcquisition")``, and
lists it in an optional ``requires`` tuple, so that a portfolio can check
its members' needs up front (:func:`required_capabilities`).

Random numbers (MC base samples, random features) must be drawn from
``ctx.generator`` without a P dimension and once per context, not inside the
returned function, so that the function is deterministic (sample average
approximation) and a batched call equals a loop over problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from gpbo.errors import InvalidArgumentError
from gpbo.models.protocol import Surrogate

__all__ = [
    "AcquisitionContext",
    "Acquisition",
    "AcquisitionFn",
    "is_joint",
    "check_single_point",
    "draw_seed",
    "required_capabilities",
]

AcquisitionFn = Callable[[Tensor], Tensor]
"""``X (..., P, q, d) -> (..., P)`` values to maximise."""


@dataclass(frozen=True)
class AcquisitionContext:
    """Everything an acquisition may use, for P problems at once.

    Attributes:
        model: the fitted surrogate (see :class:`gpbo.models.protocol.Surrogate`).
        X: (P, n, d) observed inputs in the unit cube.
        Y: (P, n) observed outcomes, maximisation convention.
        best_f: (P,) largest observed Y per problem.
        pending: (P, k, d) points under evaluation, or None.
        generator: seeded ``torch.Generator`` on X's device.

    Raises:
        InvalidArgumentError: if the shapes do not fit together.
    """

    model: Surrogate
    X: Tensor
    Y: Tensor
    best_f: Tensor
    pending: Tensor | None
    generator: torch.Generator

    def __post_init__(self) -> None:
        if self.X.dim() != 3:
            raise InvalidArgumentError(f"ctx.X must be (P, n, d), got shape {tuple(self.X.shape)}")
        P, n, d = self.X.shape
        if tuple(self.Y.shape) != (P, n):
            raise InvalidArgumentError(
                f"ctx.Y must be (P, n) = {(P, n)}, got {tuple(self.Y.shape)}"
            )
        if tuple(self.best_f.shape) != (P,):
            raise InvalidArgumentError(
                f"ctx.best_f must be (P,) = {(P,)}, got {tuple(self.best_f.shape)}"
            )
        pend = self.pending
        if pend is not None and (pend.dim() != 3 or pend.shape[0] != P or pend.shape[2] != d):
            raise InvalidArgumentError(
                f"ctx.pending must be (P, k, d) = ({P}, k, {d}) or None, got {tuple(pend.shape)}"
            )

    @classmethod
    def from_data(
        cls,
        model: Surrogate,
        X: Tensor,
        Y: Tensor,
        *,
        pending: Tensor | None = None,
        seed: int = 0,
    ) -> AcquisitionContext:
        """Context with ``best_f = Y.max(-1)`` and a generator seeded with ``seed``.

        Args:
            model: fitted surrogate.
            X: (P, n, d); Y: (P, n); pending: (P, k, d) or None.
            seed: seed of the generator (created on X's device).
        """
        generator = torch.Generator(device=X.device).manual_seed(seed)
        return cls(model=model, X=X, Y=Y, best_f=Y.max(-1).values, pending=pending,
                   generator=generator)


@runtime_checkable
class Acquisition(Protocol):
    """An acquisition family. ``joint``: handles q > 1 and pending points itself.

    Optional attribute ``requires``: the capability protocols of
    :mod:`gpbo.models.protocol` the model must offer beyond
    :class:`~gpbo.models.protocol.Surrogate` (see :func:`required_capabilities`).
    """

    joint: bool

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build the function ``X (..., P, q, d) -> (..., P)`` to maximise."""
        ...


def is_joint(acq: object) -> bool:
    """True if ``acq`` scores whole q-batches (``joint`` attribute, default False)."""
    return bool(getattr(acq, "joint", False))


def required_capabilities(acq: object) -> tuple[type, ...]:
    """The capability protocols ``acq`` needs beyond the base Surrogate (``requires``, default none)."""
    return tuple(getattr(acq, "requires", ()))


def check_single_point(X: Tensor, name: str) -> None:
    """Raise if ``X`` is not ``(..., P, 1, d)``: for ``joint=False`` acquisitions.

    Raises:
        InvalidArgumentError: if ``X`` has fewer than 3 dims or ``q != 1``.
    """
    if X.dim() < 3 or X.shape[-2] != 1:
        raise InvalidArgumentError(
            f"{name} scores one point at a time: X must be (..., P, 1, d), got shape "
            f"{tuple(X.shape)}. Use a joint acquisition (qlog_nei, thompson) for q > 1, "
            "or let the engine build the batch greedily."
        )


def draw_seed(generator: torch.Generator) -> int:
    """One integer seed from ``generator`` (a single host sync, at build time)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
