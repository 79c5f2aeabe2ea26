"""Joint Monte-Carlo samples of O independent outcomes, for the multi-outcome acquisitions.

The machinery of :mod:`gpbo.acquisition.monte_carlo` (qLogNEI), per outcome:
the baseline (observed and pending points) is factorised once per
suggestion, and each call samples the new points jointly with it through
the Schur complement, so baseline samples (Pareto fronts, incumbents) are
fixed across calls (sample average approximation). The terms of the joint
posterior that involve only the baseline are computed once too, where the
model offers `gpbo.models.protocol.CrossPosterior` (gpbo's MultiOutputGP
does; over an inner model without it, the posterior of the concatenation). Base samples are
scrambled-Sobol normals of dimension ``O * (nb + r)`` drawn from one seed,
shared across problems (batched equals looped), independent across outcomes.

Also here: the smooth log feasibility of sampled constraints (BoTorch's
``compute_smoothed_feasibility_indicator`` with ``fat=True``: ``log fatmoid(-c / eta)``)
and :func:`prune_pareto_baseline`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import torch
from botorch.utils.safe_math import log_fatmoid
from torch import Tensor

from gpbo.acquisition.monte_carlo import normal_base_samples
from gpbo.acquisition.protocol import AcquisitionFn, with_screen
from gpbo.acquisition.short_sum import sum_last
from gpbo.errors import InvalidArgumentError
from gpbo.models.cross import cross_posterior_of
from gpbo.models.per_problem import per_problem_matmul
from gpbo.models.protocol import BaselineCross, psd_cholesky
from gpbo.outcomes import is_feasible
from gpbo.pareto import pareto_mask

__all__ = ["SCREEN_SAMPLES", "MultiOutputSampler", "log_feasibility", "prune_pareto_baseline", "chunked"]

_PRUNE_SAMPLES = 32  # samples that rank baseline points by their chance of being Pareto-optimal
_CHUNK = 64  # leading batch elements per call when no gradient is needed (raw-sample scoring)
SCREEN_SAMPLES = 16  # base samples of the estimate that ranks the raw samples (`chunked`)


class MultiOutputSampler:
    """Samples at a fixed baseline and, jointly, at new points.

    Args:
        model: a `gpbo.models.multi_output.MultiOutputGP` (posterior mean
            (..., P, q, O), covariance (..., P, O, q, q)), or any model of
            that layout.
        baseline: (P, nb, d) points whose samples stay fixed.
        num_samples: S.
        seed: seed of the base samples.
    """

    def __init__(self, model: object, baseline: Tensor, num_samples: int, seed: int) -> None:
        self.model, self.baseline, self.num_samples, self.seed = model, baseline, num_samples, seed
        with torch.no_grad():
            post = model.posterior(baseline)
            self.mean_b = post.mean  # (P, nb, O)
            self.L = psd_cholesky(post.covariance)  # (P, O, nb, nb)
            eye = torch.eye(self.L.shape[-1], dtype=self.L.dtype, device=self.L.device)
            self.L_inv = torch.linalg.solve_triangular(self.L, eye.expand_as(self.L), upper=False)
        self._cache: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    @property
    def size(self) -> int:
        """nb."""
        return self.baseline.shape[-2]

    @cached_property
    def _cross(self) -> BaselineCross:
        """The model's posterior at new points jointly with the baseline (the baseline's part computed once)."""
        with torch.no_grad():
            return cross_posterior_of(self.model, self.baseline, points_dim=-2)

    def get(self, r: int) -> tuple[Tensor, Tensor, Tensor]:
        """(z_b (S, O, nb), z_x (S, O, r), baseline samples (S, P, nb, O)) for r new points."""
        if r not in self._cache:
            nb, O = self.size, self.mean_b.shape[-1]
            z = normal_base_samples(self.num_samples, O * (nb + r), self.seed,
                                    dtype=self.mean_b.dtype, device=self.mean_b.device)
            z = z.view(-1, O, nb + r)
            z_b, z_x = z[..., :nb], z[..., nb:]
            f_b = self.mean_b + torch.einsum("soj,poij->spio", z_b, self.L)  # (S, P, nb, O)
            self._cache[r] = (z_b, z_x, f_b)
        return self._cache[r]

    def joint(self, X: Tensor, num_samples: int | None = None) -> Tensor:
        """(S, ..., P, q, O) samples at X (..., P, q, d), joint with the baseline samples.

        ``num_samples``: only the first k base samples (S = k); None: all.
        """
        if X.dim() < 3:
            raise InvalidArgumentError(f"expected X of shape (..., P, q, d), got {tuple(X.shape)}")
        # (..., P, q, O), (..., P, O, nb, q), (..., P, O, q, q)
        mean_x, cov_bx, cov_xx = self._cross.at(X)
        *lead, P, O, nb, q = cov_bx.shape
        # L^-1 cov_bx as one GEMM per (problem, outcome), not a copy of L^-1 per leading element
        A_t = per_problem_matmul(cov_bx.transpose(-1, -2).reshape(*lead, P * O, q, nb),
                                 self.L_inv.to(X).transpose(-1, -2).reshape(P * O, nb, nb))  # (..., P O, q, nb)
        A_t = A_t.view(*lead, P, O, q, nb)
        A = A_t.transpose(-1, -2)  # (..., P, O, nb, q)
        L_s = psd_cholesky(cov_xx - A_t @ A)  # (..., P, O, q, q)
        z_b, z_x, _ = self.get(q)
        z_b, z_x = z_b[:num_samples], z_x[:num_samples]
        return (
            mean_x
            + torch.einsum("soj,...ojr->s...ro", z_b.to(X), A)
            + torch.einsum("soj,...orj->s...ro", z_x.to(X), L_s)
        )


def log_feasibility(constraints: Tensor, eta: float) -> Tensor:
    """Smooth log indicator of ``constraints (..., k) <= 0``, summed over k: (...)."""
    return sum_last(log_fatmoid(-constraints / eta))


def prune_pareto_baseline(
    model: object, X: Tensor, n_objectives: int, max_points: int, seed: int
) -> Tensor:
    """The ``max_points`` observed points most often on the sampled (feasible) Pareto front.

    BoTorch's ``prune_inferior_points_multi_objective`` keeps the points with a
    positive probability of being Pareto-optimal; here the number kept is
    fixed (``min(n, max_points)``) so that a problem's baseline does not depend
    on the other problems of the batch.

    Args:
        model: MultiOutputGP. X: (P, n, d) observed points.
        n_objectives: m, the leading outcome columns.
        max_points: largest number of points kept per problem.
        seed: seed of the ranking samples.

    Returns:
        (P, min(n, max_points), d).
    """
    n = X.shape[-2]
    if n <= max_points:
        return X
    with torch.no_grad():
        f = MultiOutputSampler(model, X, _PRUNE_SAMPLES, seed).get(0)[2]  # (S, P, n, O)
        on_front = pareto_mask(f[..., :n_objectives], is_feasible(f, n_objectives)).to(X.dtype).mean(0)  # (P, n)
        score = on_front + 1e-6 * model.posterior(X).mean[..., 0].argsort(-1).argsort(-1).to(X.dtype) / n  # ties: first objective
        top = score.topk(max_points, dim=-1).indices  # (P, k)
    return X.gather(-2, top.unsqueeze(-1).expand(-1, -1, X.shape[-1]))


def chunked(fn: Callable[[Tensor, int | None], Tensor]) -> AcquisitionFn:
    """The acquisition ``X -> fn(X, None)``, with its screen ``X -> fn(X, SCREEN_SAMPLES)``.

    ``fn(X, k)`` is a Monte-Carlo acquisition on its first ``k`` base samples
    (None: all S). The screen ranks the search's raw samples
    (`gpbo.acquisition.protocol.screening`): an eighth of the default S=128
    picks starting points from which the ascent finds the same maxima, at an
    eighth of the cost (docs/decisions/0044-screened-raw-samples-and-fused-fatplus.md
    chose a quarter; docs/decisions/0053-short-sums-and-2d-boxes.md, an eighth).
    Both are evaluated on X (B, ..., P, q, d) in slices of the leading dim
    when no gradient is needed: the multi-outcome values build (S, ..., P,
    cells, subsets) tensors, and the raw samples (B = 512) would otherwise
    hold them all at once.
    """

    def in_slices(k: int | None) -> AcquisitionFn:
        def wrapped(X: Tensor) -> Tensor:
            if torch.is_grad_enabled() or X.dim() < 4 or X.shape[0] <= _CHUNK:
                return fn(X, k)
            return torch.cat([fn(part, k) for part in X.split(_CHUNK)])

        return wrapped

    return with_screen(in_slices(None), in_slices(SCREEN_SAMPLES))
