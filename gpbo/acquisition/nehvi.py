"""qLogNEHVI: log noisy expected hypervolume improvement, batched over P problems.

Daulton, Balandat and Bakshy (2021), "Parallel Bayesian optimization of
multiple noisy objectives with expected hypervolume improvement" (NeurIPS),
in log space with fat-tailed smoothing (Ament et al. 2023, "Unexpected
improvements to expected improvement"), as BoTorch's
``qLogNoisyExpectedHypervolumeImprovement``:

- S joint samples of the baseline (the observed points, pruned to the
  likeliest Pareto-optimal, plus the pending points: BoTorch's
  ``incremental_nehvi``) are drawn once; each sample's feasible Pareto front
  is split into boxes covering the region it does not dominate: for two
  objectives by BoTorch's ``compute_non_dominated_hypercell_bounds_2d`` on
  fronts padded here as BoTorch's batched ``FastNondominatedPartitioning``
  pads them (vectorised over samples x problems, where BoTorch loops in
  Python); for three and more by ``FastNondominatedPartitioning``, one call
  per sample and problem, collected by ``BoxDecompositionList``. The boxes are computed once
  per suggestion (per q) in coordinates shifted so that each problem's
  reference point is the origin (the partitioning takes one reference point;
  hypervolume is translation invariant).
- For candidates X (..., P, q, d), the new points are sampled jointly with
  the baseline, and the hypervolume improvement of the q points is summed
  over boxes by inclusion-exclusion over the subsets of the q points, in log
  space: log fat-softplus of the overlap lengths, fat min over a subset's
  points and with the box's length, log-sum-exp over subsets and boxes,
  odd minus even terms by ``logdiffexp``, log-mean-exp over samples.
- Constraints weight each point of a subset by the smooth feasibility
  ``log fatmoid(-c / eta)``; the baseline's fronts use hard feasibility.
"""

from __future__ import annotations

import itertools
import math

import torch
from botorch.acquisition.logei import TAU_RELU
from botorch.utils.multi_objective.box_decompositions.box_decomposition_list import BoxDecompositionList
from botorch.utils.multi_objective.box_decompositions.non_dominated import FastNondominatedPartitioning
from botorch.utils.multi_objective.box_decompositions.utils import compute_non_dominated_hypercell_bounds_2d
from botorch.utils.safe_math import logdiffexp, logmeanexp, logplusexp, logsumexp
from torch import Tensor

from gpbo.acquisition.fat_softplus import log_fatplus
from gpbo.acquisition.mo_sampling import MultiOutputSampler, chunked, log_feasibility, prune_pareto_baseline
from gpbo.acquisition.protocol import AcquisitionContext, AcquisitionFn, draw_seed
from gpbo.acquisition.short_sum import sum_last
from gpbo.errors import InvalidArgumentError
from gpbo.outcomes import is_feasible

__all__ = ["qLogNEHVI", "box_bounds", "log_hvi"]


def box_bounds(Y: Tensor, feasible: Tensor) -> tuple[Tensor, Tensor]:
    """Boxes covering the region above the origin that Y's feasible points do not dominate.

    Args:
        Y: (B, n, m) points (maximisation), already shifted so the reference point is 0.
        feasible: (B, n) bool.

    Returns:
        lower, upper: (B, C, m) box corners, padded with empty boxes to a common C.
    """
    m = Y.shape[-1]
    ref = torch.zeros(m, dtype=Y.dtype, device=Y.device)
    if m == 2:
        bounds = compute_non_dominated_hypercell_bounds_2d(pareto_Y_sorted=_padded_fronts_2d(Y, feasible), ref_point=ref)
    else:
        Y_cpu, ok = Y.cpu(), feasible.cpu()
        parts = [FastNondominatedPartitioning(ref_point=ref.cpu(), Y=y[k]) for y, k in zip(Y_cpu, ok)]
        bounds = BoxDecompositionList(*parts).get_hypercell_bounds()
    bounds = bounds.to(Y)
    return bounds[0], bounds[1]


def _padded_fronts_2d(Y: Tensor, feasible: Tensor) -> Tensor:
    """(B, n, 2) -> (B, k, 2): each front, padded as BoTorch's batched ``FastNondominatedPartitioning`` pads it.

    A batch's front is its feasible points above the origin that no other
    dominates (duplicates once, `_front_mask_2d`), padded to the largest front by repeating its
    last point in index order (the origin where it is empty), then sorted by
    the first objective. BoTorch's ``_pad_batch_pareto_frontier`` (called
    twice by the partitioning) does this in a Python loop over the batch:
    with its ``is_non_dominated``, about 15 % of a 64-replica batch
    (S x P = 8,192 fronts per q).
    """
    zero = Y.new_zeros(())
    Y = torch.where(feasible.unsqueeze(-1), Y, zero)
    on = _front_mask_2d(Y) & (Y[..., 0] > 0) & (Y[..., 1] > 0)  # (B, n)
    count = on.sum(-1)  # (B,)
    k = max(int(count.max()), 1)
    order = torch.sort((~on).to(torch.uint8), dim=-1, stable=True).indices[..., :k]  # (B, k) the front first, in index order
    last = (count - 1).clamp_min(0).unsqueeze(-1)  # (B, 1)
    order = order.gather(-1, torch.arange(k, device=Y.device).expand_as(order).minimum(last))  # pad: repeat the last
    front = Y.gather(-2, order.unsqueeze(-1).expand(-1, -1, 2))
    front = torch.where((count > 0).view(-1, 1, 1), front, zero)
    return front.gather(-2, front[..., :1].argsort(-2).expand(-1, -1, 2))  # ascending first objective


def _front_mask_2d(Y: Tensor) -> Tensor:
    """(B, n, 2) -> (B, n) bool: the points no other dominates, each duplicate once (its first occurrence).

    BoTorch's ``is_non_dominated`` (maximisation, ``deduplicate=True``),
    written for two objectives with the comparisons on slices: its batched
    path reduces over the innermost dim of 2, slow on the CPU
    (`gpbo.acquisition.short_sum`), and past 5 MB it loops over chunks.
    """
    y0, y1 = Y[..., 0], Y[..., 1]
    a0, a1, b0, b1 = y0.unsqueeze(-1), y1.unsqueeze(-1), y0.unsqueeze(-2), y1.unsqueeze(-2)  # point i, point j
    dominated = ((b0 >= a0) & (b1 >= a1) & ((b0 > a0) | (b1 > a1))).any(-1)  # (B, n): some j dominates i
    n = Y.shape[-2]
    earlier = torch.ones(n, n, dtype=torch.bool, device=Y.device).tril(-1)  # j < i
    repeated = ((b0 == a0) & (b1 == a1) & earlier).any(-1)  # (B, n): an equal point comes first
    return ~dominated & ~repeated


def log_hvi(obj: Tensor, lower: Tensor, upper: Tensor, log_feas: Tensor | None, tau_relu: float, tau_max: float) -> Tensor:
    """Log of the smoothed hypervolume improvement of q points, per sample.

    Args:
        obj: (S, ..., P, q, m) sampled objectives (reference point at 0).
        lower, upper: (S, P, C, m) boxes of the non-dominated region.
        log_feas: (S, ..., P, q) smooth log feasibility, or None.

    Returns:
        (S, ..., P) log HVI of each sample.
    """
    q = obj.shape[-2]
    extra = obj.dim() - lower.dim()  # the "..." batch dims
    view = lower.shape[:1] + (1,) * extra + lower.shape[1:]
    lower, upper = lower.view(view), upper.view(view)  # (S, ..., P, C, m)
    big = 1e10 if obj.dtype == torch.float64 else 1e8
    log_length = (upper.clamp_max(big) - lower).log().unsqueeze(-2)  # (S, ..., P, C, 1, m)
    # BoTorch takes fat (smooth) minima over a subset's points and with the box's length; plain minima
    # (differentiable almost everywhere, the gradient going to the smallest term) change the log value by
    # O(tau_max) = O(1e-3), and BoTorch's fatmin made a call ~10x slower in a profile (its inf handling).
    # The smooth ReLU of the overlap, which keeps gradients where nothing improves, is kept.
    log_z1 = log_fatplus(obj.unsqueeze(-3) - lower.unsqueeze(-2), tau=tau_relu)  # (S, ..., P, C, q, m) per point
    terms: list[Tensor | None] = [None, None]  # log sums of the even and the odd subset sizes
    for i in range(1, q + 1):
        subsets = torch.tensor(list(itertools.combinations(range(q), i)), device=obj.device)  # (k, i)
        # (S, ..., P, C, k, m) the subset's common corner (the single points themselves for i = 1)
        log_z = log_z1[..., subsets, :].amin(-2) if i > 1 else log_z1
        log_area = sum_last(log_z.clamp(max=log_length))  # (S, ..., P, C, k)
        if log_feas is not None:
            log_area = log_area + sum_last(log_feas[..., subsets]).unsqueeze(-2)
        log_area = logsumexp(log_area, dim=-1) if log_area.shape[-1] > 1 else log_area.squeeze(-1)  # (S, ..., P, C)
        prev = terms[i % 2]
        terms[i % 2] = log_area if prev is None else logplusexp(prev, log_area)
    odd = terms[1]
    if terms[0] is None:  # one point: every sample has a box of positive length, so torch's logsumexp is
        return torch.logsumexp(odd, dim=-1)  # safe (a padded box's -inf gets gradient 0) and cheaper than BoTorch's
    return logsumexp(logdiffexp(log_a=terms[0], log_b=odd), dim=-1)  # log(odd - even), summed over boxes


class qLogNEHVI:
    """Batch log noisy expected hypervolume improvement (2 or more objectives, any constraints).

    Args:
        num_samples: MC samples S (BoTorch's default 128).
        max_baseline: observed points kept per problem (see `prune_pareto_baseline`).
        tau_relu, tau_max: smoothing temperatures (BoTorch's qLogNEHVI defaults).
        eta: temperature of the constraints' smooth feasibility (BoTorch's 1e-3).

    Raises:
        InvalidArgumentError: on non-positive sizes or temperatures.
    """

    joint = True
    multi_objective = True

    def __init__(self, *, num_samples: int = 128, max_baseline: int = 64, tau_relu: float = TAU_RELU,
                 tau_max: float = 1e-3, eta: float = 1e-3) -> None:
        _check_sizes("qLogNEHVI", num_samples=num_samples, max_baseline=max_baseline)
        _check_positive("qLogNEHVI", tau_relu=tau_relu, tau_max=tau_max, eta=eta)
        self.num_samples, self.max_baseline = num_samples, max_baseline
        self.tau_relu, self.tau_max, self.eta = float(tau_relu), float(tau_max), float(eta)

    def __repr__(self) -> str:
        return f"qLogNEHVI(num_samples={self.num_samples}, max_baseline={self.max_baseline})"

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, q, d) -> (..., P)`` log NEHVI values."""
        m = ctx.outcomes.n_objectives
        if m < 2 or ctx.ref_point is None:
            raise InvalidArgumentError(f"qLogNEHVI needs >= 2 objectives and a reference point, got {ctx.outcomes}")
        seed = draw_seed(ctx.generator)
        baseline = prune_pareto_baseline(ctx.model, ctx.X, m, self.max_baseline, seed + 1)
        if ctx.pending is not None:
            baseline = torch.cat([baseline, ctx.pending], dim=-2)  # incremental: pending points join the fronts
        sampler = MultiOutputSampler(ctx.model, baseline, self.num_samples, seed)
        ref = ctx.ref_point  # (P, m)
        boxes: dict[int, tuple[Tensor, Tensor]] = {}

        def cells(q: int) -> tuple[Tensor, Tensor]:
            if q not in boxes:
                f_b = sampler.get(q)[2]  # (S, P, nb, O)
                S, P, nb, _ = f_b.shape
                ok = is_feasible(f_b, m)  # (S, P, nb)
                lower, upper = box_bounds((f_b[..., :m] - ref.unsqueeze(-2)).reshape(S * P, nb, m), ok.reshape(S * P, nb))
                boxes[q] = (lower.view(S, P, *lower.shape[-2:]), upper.view(S, P, *upper.shape[-2:]))
            return boxes[q]

        def log_nehvi(X: Tensor, num_samples: int | None) -> Tensor:
            f = sampler.joint(X, num_samples)  # (S, ..., P, q, O)
            lower, upper = (b[:num_samples] for b in cells(X.shape[-2]))
            log_feas = log_feasibility(f[..., m:], self.eta) if f.shape[-1] > m else None
            per_sample = log_hvi(f[..., :m] - ref.to(f).unsqueeze(-2), lower.to(f), upper.to(f), log_feas,
                                 self.tau_relu, self.tau_max)  # (S, ..., P)
            return logmeanexp(per_sample, dim=0)

        return chunked(log_nehvi)


def _check_sizes(who: str, **sizes: object) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{who} {name} must be a positive int, got {value!r}")


def _check_positive(who: str, **values: object) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise InvalidArgumentError(f"{who} {name} must be a finite float > 0, got {value!r}")
