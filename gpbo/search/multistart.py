"""Multi-start maximisation of an acquisition function over a mixed unit cube.

Pipeline, for P problems at once and without a loop over problems:

1. N scrambled Sobol raw samples in [0,1]^(q*d), snapped to the levels of the
   discrete dims, evaluated in one call.
2. R restarts per problem, drawn by Boltzmann sampling on the standardised raw
   values (Gumbel-top-k, noise shared across problems) plus the best raw point.
3. Batched L-BFGS-B on the continuous dims, discrete dims held fixed, with
   the acquisition's closed-form gradient where it has one
   (docs/decisions/0040-fused-one-point-acquisition-gradient.md). Giving up
   restarts that trail early was measured and not adopted (0041).
4. Alternating with 3: a coordinate search over each discrete dim of each of
   the q points. Dims with few levels are searched exhaustively; dims with many
   levels (wide integers) over a level grid plus the neighbours of the current
   level. All candidates of one dim are evaluated as an extra leading tensor dim.

The acquisition never sees a relaxed categorical: every point it is asked
about has its discrete coordinates on their levels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gpbo.acquisition.protocol import AcquisitionFn, screening
from gpbo.dims import DimSpec
from gpbo.errors import InvalidArgumentError
from gpbo.optim.lbfgsb import minimize_lbfgsb

_EXHAUSTIVE_LEVELS = 64
_GRID_LEVELS = 32
_NEIGHBOURS = torch.arange(-4, 5)
_BOLTZMANN_ETA = 2.0
_PERTURBATIONS = 16  # per anchor
_PERTURBATION_SCALES = (0.0, 1e-3, 1e-2, 5e-2)  # std in the unit cube
_PGTOL, _FTOL = 1e-5, 1e-7  # ftol looser than SciPy's 2e-9: same LogEI maxima in ad-hoc checks, fewer iterations


def maximize_acquisition(
    fn: AcquisitionFn,
    dims: DimSpec,
    *,
    n_problems: int,
    q: int,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
    n_raw: int = 512,
    n_restarts: int = 10,
    max_iter: int = 100,
    discrete_rounds: int = 2,
    anchors: Tensor | None = None,
    scale: Tensor | None = None,
    hold: Tensor | None = None,
    accelerator_path: bool = False,
) -> tuple[Tensor, Tensor]:
    """Maximise ``fn`` per problem.

    Args:
        fn: acquisition, X (..., P, q, d) -> (..., P) values to maximise.
        dims: the encoded dims (discrete levels, categorical dims).
        n_problems: P. q: points per suggestion. seed: Sobol and restart seed.
        dtype, device: of the search tensors.
        n_raw: N raw samples. n_restarts: R local ascents per problem.
        max_iter: L-BFGS-B iterations per ascent.
        discrete_rounds: alternations of discrete search and continuous ascent.
        anchors: (P, k, d) points worth refining, e.g. the best observations;
            each adds one restart, at its best Gaussian perturbation, on top
            of the R Sobol restarts (q = 1 only).
        scale: (P, d) positive per-dim scales (the GP lengthscales) that
            precondition the continuous ascent; None: no preconditioning.
        hold: (P, d) bool, dims held at their starting values (Sobol point
            or anchor) during the continuous ascent, e.g. those whose
            lengthscale exceeds a threshold (`gpbo.Settings.freeze_lengthscale`);
            None holds none. The discrete search is not affected.
        accelerator_path: run every L-BFGS-B ascent on the code path it takes
            on a GPU (all line-search steps in one batched call, "all done"
            checked every 10 iterations), also on a CPU.

    Returns:
        X (P, q, d) best points and their values (P,).
    """
    d = dims.d
    raw = _raw_samples(dims, n_raw, n_problems, q, seed, dtype, device)  # (N, P, q, d)
    with torch.no_grad():
        raw_values = screening(fn)(raw)  # (N, P)
    if not isinstance(raw_values, Tensor) or raw_values.shape != raw.shape[:2]:
        raise InvalidArgumentError(
            f"the acquisition function must map X (..., P, q, d) to values (..., P): for X of shape "
            f"{tuple(raw.shape)} it returned {tuple(raw_values.shape) if isinstance(raw_values, Tensor) else raw_values!r:.100}")
    X = _select_restarts(raw, raw_values, n_restarts, seed)  # (R, P, q, d)
    if anchors is not None and q == 1:
        X = torch.cat([X, _anchor_starts(fn, anchors, dims, seed)])  # (R + k, P, 1, d)
    fixed = ~dims.continuous_mask(device).repeat(q)  # (q*d,)
    if hold is not None:
        fixed = fixed | hold.repeat(1, q)  # (P, q*d)
    has_continuous = len(dims.discrete_dims) < d
    if has_continuous:
        X = _ascend(fn, X, fixed, max_iter=max_iter, scale=scale, accelerator_path=accelerator_path)
    if dims.discrete_dims:
        for _ in range(discrete_rounds):
            X = _discrete_sweep(fn, X, dims)
            if has_continuous:
                X = _ascend(fn, X, fixed, max_iter=max_iter, scale=scale, accelerator_path=accelerator_path)
    with torch.no_grad():
        values = fn(X)  # (R, P)
    best = values.nan_to_num(-torch.inf).argmax(0)  # (P,)
    index = best.view(1, -1, 1, 1).expand(1, n_problems, q, d)
    return X.gather(0, index).squeeze(0), values.gather(0, best.unsqueeze(0)).squeeze(0)


def _raw_samples(
    dims: DimSpec, n: int, P: int, q: int, seed: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """(N, P, q, d) Sobol points on the levels, shared across problems."""
    sobol = torch.quasirandom.SobolEngine(q * dims.d, scramble=True, seed=seed)
    raw = sobol.draw(n, dtype=torch.float64).to(device=device, dtype=dtype)
    raw = dims.snap(raw.view(n, 1, q, dims.d))  # (N, 1, q, d)
    return raw.expand(n, P, q, dims.d)


def _anchor_starts(fn: AcquisitionFn, anchors: Tensor, dims: DimSpec, seed: int) -> Tensor:
    """(k, P, 1, d) one extra start per anchor: its best Gaussian perturbation.

    Local refinement of the incumbent is where the Sobol points are weakest;
    Optuna's GPSampler likewise starts local searches at the best trials and
    BoTorch offers ``sample_around_best``. These starts come on top of the
    Sobol restarts rather than competing with them: high-valued perturbations
    would otherwise win the Boltzmann draw and pull every restart next to the
    incumbent (measured: more Hartmann6 runs trapped in its local optimum).
    The noise is shared across problems. The perturbations are ranked like
    the raw samples, by ``fn``'s screen where it has one.
    """
    P, k, d = anchors.shape
    J = _PERTURBATIONS
    gen = torch.Generator().manual_seed(seed + 2)
    noise = torch.randn(J, 1, 1, 1, d, generator=gen, dtype=torch.float64)
    scale = torch.tensor(_PERTURBATION_SCALES, dtype=torch.float64).repeat(J // len(_PERTURBATION_SCALES) + 1)[:J]
    noise = (noise * scale.view(-1, 1, 1, 1, 1)).to(anchors)  # (J, 1, 1, 1, d); scale 0 keeps the anchor
    points = dims.snap((anchors.transpose(0, 1)[:, :, None, :] + noise).clamp(0.0, 1.0))  # (J, k, P, 1, d)
    with torch.no_grad():
        best = screening(fn)(points).nan_to_num(-torch.inf).argmax(0)  # (k, P)
    return points.gather(0, best.view(1, k, P, 1, 1).expand(1, k, P, 1, d)).squeeze(0)


def _select_restarts(raw: Tensor, values: Tensor, R: int, seed: int) -> Tensor:
    """Boltzmann (Gumbel-top-k) choice of R starts per problem, best one included.

    Args:
        raw: (N, P, q, d); values: (N, P).

    Returns:
        (R, P, q, d) starting points.
    """
    N = raw.shape[0]
    R = min(R, N)
    finite = values.isfinite()
    v = torch.where(finite, values, torch.zeros_like(values))
    count = finite.sum(0).clamp_min(1)
    mean = v.sum(0) / count
    std = ((v - mean).pow(2) * finite).sum(0).div(count).sqrt().clamp_min(1e-12)
    gen = torch.Generator().manual_seed(seed + 1)
    u = torch.rand(N, 1, generator=gen, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    gumbel = (-(-u.log()).log()).to(values)  # (N, 1), shared across problems
    score = _BOLTZMANN_ETA * (v - mean) / std + gumbel  # (N, P)
    score = torch.where(finite, score, torch.full_like(score, -torch.inf))
    best = values.nan_to_num(-torch.inf).argmax(0, keepdim=True)  # (1, P)
    score = score.scatter(0, best, torch.inf)
    idx = score.topk(R, dim=0).indices  # (R, P)
    P, q, d = raw.shape[1:]
    return raw.gather(0, idx.view(R, P, 1, 1).expand(R, P, q, d))


def _ascend(
    fn: AcquisitionFn, X: Tensor, fixed: Tensor, *, max_iter: int, scale: Tensor | None,
    accelerator_path: bool,
) -> Tensor:
    """L-BFGS-B ascent of ``fn`` on the free coordinates of X (R, P, q, d).

    ``fixed`` (q*d,) or (P, q*d) marks the coordinates held at their start.

    With ``scale`` (P, d), the ascent runs in ``z = x / scale`` (Optuna's
    preconditioning: with the GP's lengthscales the acquisition varies about
    equally fast along every z coordinate, which cuts iterations).
    """
    shape = X.shape
    q = shape[-2]
    s = torch.ones_like(X[0]) if scale is None else scale.unsqueeze(-2).expand(shape[1:])  # (P, q, d)
    s = s.reshape(shape[1], -1)  # (P, q*d)
    z0 = X.reshape(*shape[:2], -1) / s  # (R, P, q*d)

    def neg_fn(z: Tensor) -> Tensor:  # (*L, R, P, q*d) -> (*L, R, P)
        return -fn((z * s).view(*z.shape[:-1], q, shape[-1]))

    fused = getattr(fn, "value_and_grad", None)  # closed form, no autograd (FusedAcquisitionFn)

    def neg_value_and_grad(z: Tensor) -> tuple[Tensor, Tensor]:  # (R, P, q*d) -> (R, P), (R, P, q*d)
        value, grad = fused((z * s).view(*z.shape[:-1], q, shape[-1]))
        return -value, -grad.reshape(z.shape) * s

    result = minimize_lbfgsb(
        neg_fn, z0, torch.zeros_like(z0), (1.0 / s).expand_as(z0),
        fixed=fixed, max_iter=max_iter, pgtol=_PGTOL, ftol=_FTOL,
        check_every=10 if accelerator_path else None, unit_first=False if accelerator_path else None,
        value_and_grad=None if fused is None else neg_value_and_grad, pack_rows=not accelerator_path,
    )
    return (result.x * s).clamp(0.0, 1.0).view(shape)


def _discrete_sweep(fn: AcquisitionFn, X: Tensor, dims: DimSpec) -> Tensor:
    """One coordinate-search pass over every discrete dim of every q point.

    Args:
        X: (R, P, q, d) points with discrete dims on their levels.

    Returns:
        (R, P, q, d) points, each coordinate moved to its best candidate level.
    """
    q = X.shape[-2]
    for point in range(q):
        for dim in dims.discrete_dims:
            levels = dims.level_tensor(dim, dtype=X.dtype, device=X.device)
            candidates = _candidate_levels(levels, X[..., point, dim])  # (C, R, P)
            trial = X.expand(candidates.shape[0], *X.shape).clone()  # (C, R, P, q, d)
            trial[..., point, dim] = candidates
            with torch.no_grad():
                values = fn(trial).nan_to_num(-torch.inf)  # (C, R, P)
            best = values.argmax(0, keepdim=True)  # (1, R, P)
            X = X.clone()
            X[..., point, dim] = candidates.gather(0, best).squeeze(0)
    return X


def _candidate_levels(levels: Tensor, current: Tensor) -> Tensor:
    """(C, R, P) candidate values: all levels, or a grid plus neighbours.

    Args:
        levels: (K,) sorted allowed values. current: (R, P) current values.
    """
    K = levels.shape[0]
    if K <= _EXHAUSTIVE_LEVELS:
        return levels.view(K, 1, 1).expand(K, *current.shape)
    nearest = (current.unsqueeze(-1) - levels).abs().argmin(-1)  # (R, P)
    grid = torch.linspace(0, K - 1, _GRID_LEVELS, device=levels.device).round().long()
    around = nearest.unsqueeze(0) + _NEIGHBOURS.to(levels.device).view(-1, 1, 1)
    index = torch.cat([grid.view(-1, 1, 1).expand(-1, *current.shape), around])
    return levels[index.clamp(0, K - 1)]
