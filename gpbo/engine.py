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
or pending (:mod:`gpbo.search.avoid`). One-shot acquisitions (BoTorch's
knowledge gradients, `gpbo.acquisition.botorch`) are maximised over their
augmented batch (``augmented_q``) and keep its first q points (``extract``).

Random numbers are drawn once per call and shared across the P problems, so a
problem's suggestion does not depend on which other problems share the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gpbo.acquisition import augmented_q, extract_candidates, is_joint
from gpbo.acquisition import get as get_acquisition
from gpbo.acquisition import resolve as resolve_acquisition
from gpbo.acquisition.protocol import Acquisition, AcquisitionContext
from gpbo.dims import DimSpec
from gpbo.errors import InvalidArgumentError
from gpbo.models.exact import ExactGP
from gpbo.models.multi_output import MultiOutputGP, fold_outcomes, unfold_theta
from gpbo.models.protocol import Surrogate, SurrogateFactory, capability_members, lengthscale_of
from gpbo.models.select import fit_surrogate
from gpbo.models.variational import SVGP
from gpbo.models.warping import warp_outcomes, warp_outcomes_at
from gpbo.outcomes import Outcomes, is_feasible
from gpbo.pareto import infer_reference_point
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
            ``Settings.model`` factory returned); pass it back as
            ``warm_start`` (or its ``theta``). With several outcomes a
            :class:`MultiOutputGP` on the warped outcomes (``theta`` (P, O, d + 1)).
    """

    candidates: Tensor
    acq_values: Tensor
    model: ExactGP | SVGP | MultiOutputGP | Surrogate


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
        Y: (P, n) finite observed values, to be maximised; or (P, n, O) with
            O == ``settings.outcomes.n_outcomes``: objectives to maximise,
            then constraints feasible iff <= 0 (`gpbo.outcomes.Outcomes`).
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
    Y = _outcome_columns(X, Y, settings.outcomes)
    dims, pending, seed = _check_inputs(X, Y, dims, q, pending, seed)
    warm_start = warm_start if settings.warm_start else None
    if not settings.outcomes.is_single:
        return _suggest_outcomes(X, Y, dims, q, pending, seed, warm_start, settings)
    acq = get_acquisition(settings.acquisition)
    with limited_cpu_threads(X.device):
        fitted, Y = _fit(X, Y, dims, settings, seed, warm_start)
        if is_joint(acq):
            candidates, values = _joint_batch(acq, fitted, X, Y, pending, q, dims, settings, seed)
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
    warm_start: ExactGP | SVGP | MultiOutputGP | Surrogate | Tensor | None = None,
) -> ExactGP | SVGP | MultiOutputGP | Surrogate:
    """The surrogate `suggest` would fit to X (P, n, d), Y (P, n) (or (P, n, O)), output warp included.

    With ``settings.warp == "yeo-johnson"`` the model is fitted to the warped
    outcomes, so its posterior is on the warped scale (increasing in Y).
    """
    settings = as_settings(settings)
    Y = _outcome_columns(X, Y, settings.outcomes)
    dims, _, seed = _check_inputs(X, Y, dims, 1, None, seed)
    warm_start = warm_start if settings.warm_start else None
    with limited_cpu_threads(X.device):
        if not settings.outcomes.is_single:
            return _fit_outcomes(X, Y, dims, settings, seed, warm_start)[0]
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
    acq: Acquisition, model: ExactGP | MultiOutputGP, X: Tensor, Y: Tensor, pending: Tensor | None,
    q: int, dims: DimSpec, settings: Settings, seed: int, ref: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Build a q-batch one point at a time, believing the posterior mean.

    Y is (P, n), or (P, n, O) with several outcomes (every outcome believed;
    ``ref`` (P, m) the hypervolume reference point for the context).
    """
    outcomes = {} if Y.dim() == 2 else {"outcomes": settings.outcomes, "ref_point": ref}
    if pending is not None:
        model, X, Y = _believe(model, X, Y, pending)
    points, first_values = [], None
    for i in range(q):
        ctx = AcquisitionContext.from_data(model, X, Y, seed=seed + i, **outcomes)
        x, values = _maximise(acq, ctx, 1, dims, settings, seed + i)  # (P, 1, d), (P,)
        points.append(x)
        first_values = values if first_values is None else first_values
        if i < q - 1:
            model, X, Y = _believe(model, X, Y, x)
    return torch.cat(points, dim=-2), first_values


def _joint_batch(
    acq: Acquisition, model: ExactGP | MultiOutputGP | Surrogate, X: Tensor, Y: Tensor, pending: Tensor | None,
    q: int, dims: DimSpec, settings: Settings, seed: int, ref: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """A q-batch (P, q, d) of an acquisition that scores whole batches, and its values (P,).

    ``settings.q_batch == "joint"`` (or a one-shot acquisition) optimises the
    q points together; ``"sequential"`` picks one point at a time, each pick
    joining ``pending`` for the next (the acquisition's own pending handling,
    e.g. qLogNEHVI's incremental baseline; BoTorch's ``sequential=True``).
    Y is (P, n), or (P, n, O) with several outcomes (``ref`` (P, m) the
    hypervolume reference point). The values are the first pick's.
    """
    outcomes = {} if Y.dim() == 2 else {"outcomes": settings.outcomes, "ref_point": ref}
    if settings.q_batch == "joint" or q == 1 or augmented_q(acq, 1) != 1:
        ctx = AcquisitionContext.from_data(model, X, Y, pending=pending, seed=seed, **outcomes)
        return _maximise(acq, ctx, q, dims, settings, seed)
    points: list[Tensor] = []
    first_values = None
    for i in range(q):
        held = [p for p in (pending, *points) if p is not None]  # each (P, k, d)
        ctx = AcquisitionContext.from_data(model, X, Y, pending=torch.cat(held, dim=-2) if held else None,
                                           seed=seed + i, **outcomes)
        x, values = _maximise(acq, ctx, 1, dims, settings, seed + i)  # (P, 1, d), (P,)
        points.append(x)
        first_values = values if first_values is None else first_values
    return torch.cat(points, dim=-2), first_values


def _believe(
    model: ExactGP | MultiOutputGP, X: Tensor, Y: Tensor, new: Tensor
) -> tuple[ExactGP | MultiOutputGP, Tensor, Tensor]:
    """Add ``new`` (P, k, d) at its posterior mean ((P, k), or (P, k, O)) to the model and the data."""
    with torch.no_grad():
        mean = model.posterior(new).mean  # (P, k) or (P, k, O)
    believed = model.condition(new, mean, noiseless=True)  # variance collapses: no repeats
    return believed, torch.cat([X, new], -2), torch.cat([Y, mean], 1)


def _maximise(
    acq: Acquisition, ctx: AcquisitionContext, q: int, dims: DimSpec, settings: Settings, seed: int,
) -> tuple[Tensor, Tensor]:
    """Maximise ``acq`` on ``ctx`` with the search options of ``settings``: (P, q, d), (P,)."""
    score = ctx.Y if ctx.Y.dim() == 2 else _anchor_score(ctx)  # (P, n)
    k = min(settings.n_anchors, score.shape[-1])
    best = score.topk(k, dim=-1).indices  # (P, k) the best observations anchor local searches
    anchors = ctx.X.gather(-2, best.unsqueeze(-1).expand(-1, -1, ctx.X.shape[-1]))  # (P, k, d)
    fn = acq(ctx)
    if not callable(fn):
        raise InvalidArgumentError(f"acquisition {acq!r:.100} must return a function of X for its context, got {fn!r:.100}")
    if len(dims.discrete_dims) == dims.d:  # no continuous dim: repeats are possible
        seen = ctx.X if ctx.pending is None else torch.cat([ctx.X, ctx.pending], -2)
        fn = avoid_observed(fn, seen)
    lengthscale = lengthscale_of(ctx.model)  # (P, d), or None for a model without lengthscales
    hold = None
    if settings.freeze_lengthscale is not None and lengthscale is not None:
        hold = lengthscale > settings.freeze_lengthscale  # (P, d) dims the GP deems (nearly) irrelevant
    q_search = augmented_q(acq, q)  # one-shot acquisitions: q candidates + their fantasy points
    X, values = maximize_acquisition(
        fn, dims, n_problems=ctx.X.shape[0], q=q_search, seed=seed,
        dtype=ctx.X.dtype, device=ctx.X.device, n_raw=settings.n_raw,
        n_restarts=settings.n_restarts, anchors=anchors,
        scale=lengthscale if settings.precondition else None, hold=hold,
        accelerator_path=settings.solver_path == "accelerator",
    )
    return extract_candidates(acq, X, q), values  # (P, q, d), (P,)


def _check_inputs(
    X: Tensor, Y: Tensor, dims: DimSpec | None, q: int, pending: Tensor | None, seed: int,
) -> tuple[DimSpec, Tensor | None, int]:
    """Validate the engine's inputs; return the dims, pending and seed (a Python int) to use."""
    if not isinstance(X, Tensor) or X.dim() != 3 or not X.is_floating_point():
        raise InvalidArgumentError(f"X must be a float tensor of shape (P, n, d), got {_describe(X)}")
    if X.device.type not in ("cpu", "cuda"):
        raise InvalidArgumentError(f"X must be on a CPU or CUDA device, got {X.device}")
    P, n, d = X.shape
    if P < 1 or n < 1 or d < 1:
        raise InvalidArgumentError(f"X must have P, n, d >= 1, got shape {tuple(X.shape)}")
    if X.dtype not in (torch.float32, torch.float64):
        raise InvalidArgumentError(f"X must be float32 or float64, got {X.dtype}")
    if not isinstance(Y, Tensor) or Y.shape[:2] != (P, n) or Y.dim() not in (2, 3):
        raise InvalidArgumentError(f"Y must be a tensor of shape (P, n) = {(P, n)} or (P, n, O), got {_describe(Y)}")
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
    seed = check_int("seed", seed, 0, 2**62)
    if dims is None:
        return DimSpec.continuous(d), pending, seed
    if not isinstance(dims, DimSpec) or dims.d != d:
        raise InvalidArgumentError(f"dims must be a DimSpec with d={d}, got {dims!r}")
    return dims, pending, seed


def _check_same_kind(t: Tensor, X: Tensor, name: str) -> None:
    if t.dtype != X.dtype or t.device != X.device:
        raise InvalidArgumentError(
            f"{name} must have X's dtype and device ({X.dtype}, {X.device}), got ({t.dtype}, {t.device})"
        )


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:120]


# ---- several outcomes (objectives, then constraints): one GP per outcome, batched with P ----


def _outcome_columns(X: Tensor, Y: Tensor, outcomes: Outcomes) -> Tensor:
    """Y as the engine reads it: (P, n) for one objective (a (P, n, 1) Y squeezed), else (P, n, O)."""
    if not isinstance(Y, Tensor) or not isinstance(X, Tensor):
        return Y  # _check_inputs names the problem
    O = outcomes.n_outcomes
    if outcomes.is_single and not (Y.dim() == 3 and Y.shape[-1] != 1):
        return Y.squeeze(-1) if Y.dim() == 3 else Y
    if Y.dim() != 3 or Y.shape[-1] != O:
        raise InvalidArgumentError(
            f"Y must have shape (P, n, O) with O = {O} ({outcomes.n_objectives} objectives, "
            f"{outcomes.n_constraints} constraints: settings.outcomes), got {_describe(Y)}"
        )
    return Y


def _suggest_outcomes(
    X: Tensor, Y: Tensor, dims: DimSpec, q: int, pending: Tensor | None, seed: int,
    warm_start: object, settings: Settings,
) -> Suggestion:
    """`suggest` for Y (P, n, O): several objectives and/or constraints."""
    acq = resolve_acquisition(settings.acquisition, settings.outcomes)
    with limited_cpu_threads(X.device):
        fitted, Y_w, ref = _fit_outcomes(X, Y, dims, settings, seed, warm_start)
        if is_joint(acq):
            candidates, values = _joint_batch(acq, fitted, X, Y_w, pending, q, dims, settings, seed, ref=ref)
        else:
            candidates, values = _kriging_believer(acq, fitted, X, Y_w, pending, q, dims, settings, seed, ref=ref)
    return Suggestion(candidates=candidates.detach(), acq_values=values.detach(), model=fitted)


def _fit_outcomes(
    X: Tensor, Y: Tensor, dims: DimSpec, settings: Settings, seed: int, warm_start: object
) -> tuple[MultiOutputGP, Tensor, Tensor | None]:
    """One GP per outcome on the warped outcomes: (model, warped Y (P, n, O), reference point (P, m) or None).

    The warp is monotone per column, so the values that give the outcomes
    their meaning go through the same map as the data: the reference point
    (the user's, or BoTorch's rule on the observed feasible objectives, in
    Y's units) and each constraint's threshold 0; a constraint column is
    then shifted so that its warped threshold is 0 again. Warping the
    constraints too (rather than only standardising them) gives heavy-tailed
    constraint metrics (memory, latency) the same better-behaved GP as the
    objectives. Feasibility of the observations is computed on the raw
    values and kept exactly (a rounding tie at the threshold cannot flip it).
    """
    P, n, O = Y.shape
    outcomes = settings.outcomes
    m = outcomes.n_objectives
    ok = is_feasible(Y, m)  # (P, n) on the raw values
    ref = _reference_point(Y[..., :m], ok, outcomes) if m > 1 else None  # (P, m)
    at = torch.zeros(P, O, 1, dtype=Y.dtype, device=Y.device)
    if ref is not None:
        at[:, :m, 0] = ref
    Y_rows = Y.transpose(1, 2).reshape(P * O, n)
    if settings.warp == "yeo-johnson":
        Y_rows, at_rows = warp_outcomes_at(Y_rows, at.reshape(P * O, 1), fence=settings.warp_fence)
        at = at_rows.reshape(P, O, 1)
    Y_w = Y_rows.reshape(P, O, n).transpose(1, 2).clone()  # (P, n, O)
    shifted = Y_w[..., m:] - at[:, m:, 0].unsqueeze(1)  # constraints, threshold at 0
    tiny = torch.finfo(Y.dtype).tiny
    Y_w[..., m:] = torch.where(Y[..., m:] > 0, shifted.clamp_min(tiny), shifted.clamp_max(0.0))
    signs = torch.ones(O, dtype=Y.dtype, device=Y.device)
    signs[m:] = -1.0  # constraints fitted negated, see MultiOutputGP.n_objectives
    X_f, Y_f = fold_outcomes(X, Y_w * signs)  # (P*O, n, d), (P*O, n)
    warm = warm_start.model if isinstance(warm_start, MultiOutputGP) else unfold_theta(warm_start, P, O)
    inner, _ = _fit(X_f, Y_f, dims, settings.replace(warp="none", outcomes=Outcomes(), acquisition="auto"), seed, warm)
    return MultiOutputGP(inner, O, m), Y_w, (None if ref is None else at[:, :m, 0])


def _reference_point(Y_obj: Tensor, feasible: Tensor, outcomes: Outcomes) -> Tensor:
    """(P, m) the user's reference point, or BoTorch's rule on the feasible (else all) observed objectives."""
    if outcomes.ref_point is not None:
        return torch.tensor(outcomes.ref_point, dtype=Y_obj.dtype, device=Y_obj.device).expand(Y_obj.shape[0], -1).clone()
    ref = infer_reference_point(Y_obj, feasible)  # NaN where nothing is feasible
    return torch.where(ref.isnan(), infer_reference_point(Y_obj), ref)


def _anchor_score(ctx: AcquisitionContext) -> Tensor:
    """(P, n) which observations anchor local searches: the feasible non-dominated ones first, then the first objective."""
    m = ctx.outcomes.n_objectives
    Y_obj, feasible = ctx.Y[..., :m], ctx.feasible  # (P, n, m), (P, n)
    dominated = ((Y_obj.unsqueeze(-3) >= Y_obj.unsqueeze(-2)).all(-1) & feasible.unsqueeze(-2)).sum(-1)  # (P, n)
    first = Y_obj[..., 0]
    spread = (first.amax(-1, keepdim=True) - first.amin(-1, keepdim=True)).clamp_min(1e-12)
    return -dominated.to(first) - 2.0 * (~feasible).to(first) + 0.5 * (first - first.amin(-1, keepdim=True)) / spread


