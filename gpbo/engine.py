"""Tensor-level Bayesian-optimisation step for P independent problems at once.

``suggest`` is the one code path behind the facade and the benchmark sweeps:
fit the batched exact GP (or SVGP, or a researcher's own surrogate from the
``Settings.model`` factory), build the acquisition, maximise it with the
on-device multi-start optimiser. A single study is P = 1.

Batches of q points come either from a joint acquisition (``qLogNEI``,
Thompson sampling, BoTorch acquisitions), or, for the one-point acquisitions
(``LogEI`` and friends, custom ones by default), from the kriging-believer
heuristic (Ginsbourger et al., 2010; the default augmented-EI/UCB portfolio
alternates its members along the batch): each chosen point, and each pending
point, is added to the GP at its posterior mean, which collapses the
posterior variance there, and the acquisition is maximised again. On spaces
without a continuous dim the search skips configurations already evaluated
or pending (:mod:`gpbo.search.avoid`).

Random numbers are drawn once per call and shared across the P problems, so a
problem's suggestion does not depend on which other problems share the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gpbo.acquisition import get as get_acquisition
from gpbo.acquisition import is_joint
from gpbo.acquisition.protocol import Acquisition, AcquisitionContext
from gpbo.dims import DimSpec
from gpbo.errors import InvalidArgumentError
from gpbo.models.exact import ExactGP
from gpbo.models.protocol import Surrogate, SurrogateFactory, capability_members, lengthscale_of
from gpbo.models.select import fit_surrogate
from gpbo.models.variational import SVGP
from gpbo.models.warping import warp_outcomes
from gpbo.search.avoid import avoid_observed
from gpbo.search.multistart import maximize_acquisition
from gpbo.settings import Settings, as_settings
from gpbo.threads import limited_cpu_threads
from gpbo.validation import check_int


@dataclass(frozen=True)
class Suggestion:
    """Result of :func:`suggest`.

    Attributes:
        candidates: (P, q, d) points in the unit cube, discrete dims on levels.
        acq_values: (P,) acquisition value of the batch (greedy batches: of
            their first point; with the default portfolio, in the units of
            the member that chose it: LogEI's log scale or UCB's outcome
            scale, so values of successive calls are not comparable).
        model: the fitted surrogate (gpbo's, or what a custom
            ``Settings.model`` factory returned); pass it back as ``warm_start``.
    """

    candidates: Tensor
    acq_values: Tensor
    model: ExactGP | SVGP | Surrogate


def suggest(
    X: Tensor,
    Y: Tensor,
    *,
    dims: DimSpec | None = None,
    q: int = 1,
    pending: Tensor | None = None,
    seed: int = 0,
    warm_start: ExactGP | SVGP | Surrogate | Tensor | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
) -> Suggestion:
    """Suggest q new points for each of P problems (maximisation).

    Args:
        X: (P, n, d) observed inputs in [0, 1]^d, n >= 1. Its dtype and device
            are used for all the computation.
        Y: (P, n) finite observed values, to be maximised.
        dims: encoded dims (discrete levels, categorical dims); all continuous
            if None.
        q: points per problem.
        pending: (P, k, d) points under evaluation, or None.
        seed: seed of every random number drawn by this call.
        warm_start: previous model of the same P and d (or its ``theta``,
            (P, d + 1)), to start the fit from; ignored with
            ``settings.warm_start=False``. A custom ``settings.model``
            factory gets it as its ``warm_start`` (a model, not a ``theta``).
        settings: `gpbo.Settings` (or a dict of its fields): acquisition,
            surrogate, kernel, noise, warp, search sizes. None is the defaults.
            Its device, dtype and n_initial are the facade's: the engine runs
            where X is.

    Returns:
        A :class:`Suggestion` with candidates (P, q, d).
    """
    settings = as_settings(settings)
    dims, pending = _check_inputs(X, Y, dims, q, pending, seed)
    acq = get_acquisition(settings.acquisition)
    warm_start = warm_start if settings.warm_start else None
    with limited_cpu_threads(X.device):
        fitted, Y = _fit(X, Y, dims, settings, seed, warm_start)
        if is_joint(acq):
            ctx = AcquisitionContext.from_data(fitted, X, Y, pending=pending, seed=seed)
            candidates, values = _maximise(acq, ctx, q, dims, settings, seed)
        else:
            candidates, values = _kriging_believer(acq, fitted, X, Y, pending, q, dims, settings, seed)
    return Suggestion(candidates=candidates.detach(), acq_values=values.detach(), model=fitted)


def fit_model(
    X: Tensor,
    Y: Tensor,
    *,
    dims: DimSpec | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
    seed: int = 0,
    warm_start: ExactGP | SVGP | Surrogate | Tensor | None = None,
) -> ExactGP | SVGP | Surrogate:
    """The surrogate `suggest` would fit to X (P, n, d), Y (P, n), output warp included.

    With ``settings.warp == "yeo-johnson"`` the model is fitted to the warped
    outcomes, so its posterior is on the warped scale (increasing in Y).
    """
    settings = as_settings(settings)
    dims, _ = _check_inputs(X, Y, dims, 1, None, seed)
    warm_start = warm_start if settings.warm_start else None
    with limited_cpu_threads(X.device):
        return _fit(X, Y, dims, settings, seed, warm_start)[0]


def _fit(
    X: Tensor, Y: Tensor, dims: DimSpec, settings: Settings, seed: int, warm_start: object
) -> tuple[ExactGP | SVGP | Surrogate, Tensor]:
    """The fitted surrogate and the (warped) outcomes Y (P, n) it was fitted to."""
    if settings.warp == "yeo-johnson":
        Y = warp_outcomes(Y, fence=settings.warp_fence)  # increasing: same maximiser and incumbent, a better-behaved GP
    if not isinstance(settings.model, str):
        return _fit_custom(settings.model, X, Y, dims.categorical, seed, warm_start), Y
    fitted = fit_surrogate(
        X, Y, model=settings.model, categorical=dims.categorical, kernel=settings.kernel, noise=settings.noise,
        prior_mean=settings.prior_mean, warm_start=warm_start, seed=seed,
        svgp_adam_steps=settings.svgp_adam_steps, solver_path=settings.solver_path,
    )
    return fitted, Y


def _fit_custom(
    factory: SurrogateFactory, X: Tensor, Y: Tensor, categorical: tuple[int, ...], seed: int, warm_start: object
) -> Surrogate:
    """``factory.fit`` on X (P, n, d), Y (P, n), its result checked to follow the base protocol."""
    if isinstance(warm_start, Tensor):
        raise InvalidArgumentError(
            f"warm_start of a custom surrogate factory ({factory!r:.120}) must be the model it returned "
            f"before (Suggestion.model) or None, got a tensor of shape {tuple(warm_start.shape)}"
        )
    fitted = factory.fit(X, Y, categorical=categorical, seed=seed, warm_start=warm_start)
    missing = [name for name in capability_members(Surrogate) if not callable(getattr(fitted, name, None))]
    if missing:
        raise InvalidArgumentError(
            f"settings.model {factory!r:.120}: fit returned {type(fitted).__name__}, which lacks "
            f"{', '.join(missing)} (a surrogate needs posterior and condition, see gpbo.models.protocol.Surrogate)"
        )
    return fitted


def _kriging_believer(
    acq: Acquisition, model: ExactGP, X: Tensor, Y: Tensor, pending: Tensor | None,
    q: int, dims: DimSpec, settings: Settings, seed: int,
) -> tuple[Tensor, Tensor]:
    """Build a q-batch one point at a time, believing the posterior mean."""
    if pending is not None:
        model, X, Y = _believe(model, X, Y, pending)
    points, first_values = [], None
    for i in range(q):
        ctx = AcquisitionContext.from_data(model, X, Y, seed=seed + i)
        x, values = _maximise(acq, ctx, 1, dims, settings, seed + i)  # (P, 1, d), (P,)
        points.append(x)
        first_values = values if first_values is None else first_values
        if i < q - 1:
            model, X, Y = _believe(model, X, Y, x)
    return torch.cat(points, dim=-2), first_values


def _believe(
    model: ExactGP, X: Tensor, Y: Tensor, new: Tensor
) -> tuple[ExactGP, Tensor, Tensor]:
    """Add ``new`` (P, k, d) at its posterior mean to the model and the data."""
    with torch.no_grad():
        mean = model.posterior(new).mean  # (P, k)
    believed = model.condition(new, mean, noiseless=True)  # variance collapses: no repeats
    return believed, torch.cat([X, new], -2), torch.cat([Y, mean], -1)


def _maximise(
    acq: Acquisition, ctx: AcquisitionContext, q: int, dims: DimSpec, settings: Settings, seed: int,
) -> tuple[Tensor, Tensor]:
    """Maximise ``acq`` on ``ctx`` with the search options of ``settings``: (P, q, d), (P,)."""
    k = min(settings.n_anchors, ctx.Y.shape[-1])
    best = ctx.Y.topk(k, dim=-1).indices  # (P, k) the best observations anchor local searches
    anchors = ctx.X.gather(-2, best.unsqueeze(-1).expand(-1, -1, ctx.X.shape[-1]))  # (P, k, d)
    fn = acq(ctx)
    if len(dims.discrete_dims) == dims.d:  # no continuous dim: repeats are possible
        seen = ctx.X if ctx.pending is None else torch.cat([ctx.X, ctx.pending], -2)
        fn = avoid_observed(fn, seen)
    lengthscale = lengthscale_of(ctx.model)  # (P, d), or None for a model without lengthscales
    hold = None
    if settings.freeze_lengthscale is not None and lengthscale is not None:
        hold = lengthscale > settings.freeze_lengthscale  # (P, d) dims the GP deems (nearly) irrelevant
    return maximize_acquisition(
        fn, dims, n_problems=ctx.X.shape[0], q=q, seed=seed,
        dtype=ctx.X.dtype, device=ctx.X.device, n_raw=settings.n_raw,
        n_restarts=settings.n_restarts, anchors=anchors,
        scale=lengthscale if settings.precondition else None, hold=hold,
        accelerator_path=settings.solver_path == "accelerator",
    )


def _check_inputs(
    X: Tensor, Y: Tensor, dims: DimSpec | None, q: int, pending: Tensor | None, seed: int,
) -> tuple[DimSpec, Tensor | None]:
    """Validate the engine's inputs; return the dims and pending to use."""
    if not isinstance(X, Tensor) or X.dim() != 3 or not X.is_floating_point():
        raise InvalidArgumentError(f"X must be a float tensor of shape (P, n, d), got {_describe(X)}")
    if X.device.type not in ("cpu", "cuda"):
        raise InvalidArgumentError(f"X must be on a CPU or CUDA device, got {X.device}")
    P, n, d = X.shape
    if P < 1 or n < 1 or d < 1:
        raise InvalidArgumentError(f"X must have P, n, d >= 1, got shape {tuple(X.shape)}")
    if X.dtype not in (torch.float32, torch.float64):
        raise InvalidArgumentError(f"X must be float32 or float64, got {X.dtype}")
    if not isinstance(Y, Tensor) or Y.shape != (P, n):
        raise InvalidArgumentError(f"Y must be a tensor of shape (P, n) = {(P, n)}, got {_describe(Y)}")
    _check_same_kind(Y, X, "Y")
    if not bool(X.isfinite().all()) or bool(((X < 0) | (X > 1)).any()):
        raise InvalidArgumentError("X must be finite and inside the unit cube [0, 1]^d")
    if not bool(Y.isfinite().all()):
        raise InvalidArgumentError("Y must be finite; drop or impute failed evaluations first")
    if pending is not None:
        if not isinstance(pending, Tensor) or pending.dim() != 3 or pending.shape[::2] != (P, d):
            raise InvalidArgumentError(f"pending must have shape (P, k, d) = ({P}, k, {d}), got {_describe(pending)}")
        _check_same_kind(pending, X, "pending")
        if pending.shape[1] == 0:
            pending = None
    check_int("q", q, 1)
    check_int("seed", seed, 0, 2**62)
    if dims is None:
        return DimSpec.continuous(d), pending
    if not isinstance(dims, DimSpec) or dims.d != d:
        raise InvalidArgumentError(f"dims must be a DimSpec with d={d}, got {dims!r}")
    return dims, pending


def _check_same_kind(t: Tensor, X: Tensor, name: str) -> None:
    if t.dtype != X.dtype or t.device != X.device:
        raise InvalidArgumentError(
            f"{name} must have X's dtype and device ({X.dtype}, {X.device}), got ({t.dtype}, {t.device})"
        )


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:120]
