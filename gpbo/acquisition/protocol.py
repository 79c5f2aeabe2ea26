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
from gpbo.outcomes import Outcomes, is_feasible

__all__ = [
    "AcquisitionContext",
    "Acquisition",
    "AcquisitionFn",
    "is_joint",
    "augmented_q",
    "extract_candidates",
    "check_single_point",
    "draw_seed",
    "required_capabilities",
    "screening",
    "with_screen",
]

AcquisitionFn = Callable[[Tensor], Tensor]
"""``X (..., P, q, d) -> (..., P)`` values to maximise.

It may carry a ``screen`` attribute: a cheaper estimate of the same values
(fewer Monte-Carlo samples, say) that the search uses to rank its raw
samples (`screening`, `with_screen`); the ascent and the final values use the
function itself.
"""


def with_screen(fn: AcquisitionFn, screen: AcquisitionFn) -> AcquisitionFn:
    """``fn``, carrying ``screen`` as the estimate that ranks the raw samples."""
    fn.screen = screen
    return fn


def screening(fn: AcquisitionFn) -> AcquisitionFn:
    """What ranks the raw samples of a search on ``fn``: its ``screen``, else ``fn`` itself."""
    return getattr(fn, "screen", fn)


@dataclass(frozen=True)
class AcquisitionContext:
    """Everything an acquisition may use, for P problems at once.

    Attributes:
        model: the fitted surrogate (see :class:`gpbo.models.protocol.Surrogate`);
            with several outcomes a `gpbo.models.multi_output.MultiOutputGP`.
        X: (P, n, d) observed inputs in the unit cube.
        Y: (P, n) observed outcomes, maximisation convention; with several
            outcomes (P, n, O), in the layout of ``outcomes``.
        best_f: (P,) largest observed Y per problem (several outcomes: the
            largest feasible first objective, or its smallest value where no
            observation is feasible).
        pending: (P, k, d) points under evaluation, or None.
        generator: seeded ``torch.Generator`` on X's device.
        outcomes: the columns of Y (`gpbo.outcomes.Outcomes`); default one objective.
        ref_point: (P, n_objectives) hypervolume reference point in the
            units of Y, or None (single objective).
        incumbents: (P, n) bool, the observations an incumbent may be taken
            from (`gpbo.acquisition.analytic.effective_best`), or None for
            all; the objective context of a constrained study
            (`gpbo.acquisition.constrained.objective_context`) holds the
            feasible ones.

    Raises:
        InvalidArgumentError: if the shapes do not fit together.
    """

    model: Surrogate
    X: Tensor
    Y: Tensor
    best_f: Tensor
    pending: Tensor | None
    generator: torch.Generator
    outcomes: Outcomes = Outcomes()
    ref_point: Tensor | None = None
    incumbents: Tensor | None = None

    def __post_init__(self) -> None:
        if self.X.dim() != 3:
            raise InvalidArgumentError(f"ctx.X must be (P, n, d), got shape {tuple(self.X.shape)}")
        P, n, d = self.X.shape
        expected = (P, n) if self.outcomes.is_single else (P, n, self.outcomes.n_outcomes)
        if tuple(self.Y.shape) != expected:
            raise InvalidArgumentError(
                f"ctx.Y must be {'(P, n)' if len(expected) == 2 else '(P, n, O)'} = {expected}, got {tuple(self.Y.shape)}"
            )
        if tuple(self.best_f.shape) != (P,):
            raise InvalidArgumentError(
                f"ctx.best_f must be (P,) = {(P,)}, got {tuple(self.best_f.shape)}"
            )
        if self.incumbents is not None and tuple(self.incumbents.shape) != (P, n):
            raise InvalidArgumentError(
                f"ctx.incumbents must be (P, n) = {(P, n)} or None, got {tuple(self.incumbents.shape)}"
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
        outcomes: Outcomes | None = None,
        ref_point: Tensor | None = None,
    ) -> AcquisitionContext:
        """Context with ``best_f = Y.max(-1)`` and a generator seeded with ``seed``.

        Args:
            model: fitted surrogate.
            X: (P, n, d); Y: (P, n), or (P, n, O) with ``outcomes``; pending: (P, k, d) or None.
            seed: seed of the generator (created on X's device).
            outcomes: the columns of a (P, n, O) Y; None is one objective.
            ref_point: (P, n_objectives) hypervolume reference point, or None.
        """
        generator = torch.Generator(device=X.device).manual_seed(seed)
        outcomes = Outcomes() if outcomes is None else outcomes
        if outcomes.is_single:
            best_f = Y.max(-1).values
        else:
            first = Y[..., 0]  # (P, n)
            ok = is_feasible(Y, outcomes.n_objectives)  # (P, n)
            best_feasible = torch.where(ok, first, torch.full_like(first, -torch.inf)).amax(-1)
            best_f = torch.where(ok.any(-1), best_feasible, first.amin(-1))
        return cls(model=model, X=X, Y=Y, best_f=best_f, pending=pending, generator=generator,
                   outcomes=outcomes, ref_point=ref_point)

    @property
    def feasible(self) -> Tensor:
        """(P, n) bool: the observations that meet every constraint (all True without constraints)."""
        if self.outcomes.is_single:
            return torch.ones_like(self.Y, dtype=torch.bool)
        return is_feasible(self.Y, self.outcomes.n_objectives)


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


def augmented_q(acq: object, q: int) -> int:
    """Points per problem the search optimises for a q-batch: ``acq.augmented_q(q)``, default q.

    One-shot acquisitions (BoTorch's knowledge gradients) optimise their
    candidates together with fantasy points; such an acquisition offers
    ``augmented_q(q) -> int`` and ``extract(X (P, q_aug, d)) -> (P, q, d)``.
    """
    method = getattr(acq, "augmented_q", None)
    if not callable(method):
        return q
    q_aug = method(q)
    if isinstance(q_aug, bool) or not isinstance(q_aug, int) or q_aug < q:
        raise InvalidArgumentError(f"{acq!r:.80}.augmented_q({q}) must be an int >= {q}, got {q_aug!r}")
    return q_aug


def extract_candidates(acq: object, X: Tensor, q: int) -> Tensor:
    """The q candidates (P, q, d) of the augmented batch X (P, q_aug, d) (``acq.extract``)."""
    if X.shape[-2] == q:
        return X
    out = acq.extract(X)  # type: ignore[attr-defined]
    if out.shape[-2] != q:
        raise InvalidArgumentError(f"{acq!r:.80}.extract returned {out.shape[-2]} points per problem, expected {q}")
    return out


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
