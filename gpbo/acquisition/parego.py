"""qLogNParEGO: noisy log EI of a random augmented-Chebyshev scalarisation.

Knowles (2006), "ParEGO: a hybrid algorithm with on-line landscape
approximation for expensive multiobjective optimization problems"; in its
batch, noisy form of Daulton et al. (2021) (BoTorch's ``qLogNParEGO``):

- one weight vector w is drawn uniformly from the simplex with
  ``ctx.generator`` (shared by the P problems, so that batched equals looped;
  successive suggestions draw new weights);
- the objectives are normalised per problem to [0, 1] by the range of the
  posterior mean at the observed points, ``u = (y - lo) / (hi - lo)``, and
  scalarised as ``s(y) = -(max_j w_j (1 - u_j) + alpha sum_j w_j (1 - u_j))``
  (the augmented Chebyshev distance to the ideal point, maximised);
- the scalarised samples go through the noisy log-EI of
  `gpbo.acquisition.monte_carlo` (:func:`log_noisy_ei`): the incumbent is the
  best *feasible* sampled baseline value per sample, constraints weight each
  point by ``log fatmoid(-c / eta)``.

:func:`log_noisy_ei` with the identity scalarisation is the constrained qLogNEI
(`gpbo.acquisition.constrained.qLogNEIConstrained`).
"""

from __future__ import annotations

import torch
from botorch.acquisition.logei import TAU_MAX, TAU_RELU, _log_improvement
from botorch.utils.safe_math import fatmax, logmeanexp
from torch import Tensor

from gpbo.acquisition.mo_sampling import MultiOutputSampler, chunked, log_feasibility
from gpbo.acquisition.monte_carlo import prune_baseline
from gpbo.acquisition.nehvi import _check_positive, _check_sizes
from gpbo.acquisition.protocol import AcquisitionContext, AcquisitionFn, draw_seed
from gpbo.acquisition.short_sum import sum_last
from gpbo.errors import InvalidArgumentError
from gpbo.outcomes import is_feasible

__all__ = ["qLogNParEGO", "log_noisy_ei", "best_feasible", "NoisyScalarEI"]


def best_feasible(values: Tensor, feasible: Tensor) -> Tensor:
    """(S, P) best feasible baseline value per sample; where a sample has none, the problem's smallest value.

    Args:
        values: (S, P, nb) scalarised baseline samples. feasible: (S, P, nb) bool.

    BoTorch falls back to a lower bound of the objective (mean - 6 sd); the
    smallest sampled value is such a bound for the samples at hand.
    """
    best = torch.where(feasible, values, torch.full_like(values, -torch.inf)).amax(-1)  # (S, P)
    floor = values.amin(-1).amin(0)  # (P,)
    return torch.where(feasible.any(-1), best, floor)


def log_noisy_ei(values: Tensor, best: Tensor, log_feas: Tensor | None, tau_relu: float, tau_max: float) -> Tensor:
    """log E[max_j smooth(values_j - best) * feas_j] over samples.

    Args:
        values: (S, ..., P, q) sampled (scalarised) objectives. best: (S, P).
        log_feas: (S, ..., P, q) smooth log feasibility, or None.

    Returns:
        (..., P).
    """
    best = best.view(best.shape[:1] + (1,) * (values.dim() - 3) + best.shape[1:])  # (S, 1.., P)
    log_imp = _log_improvement(values, best, tau=tau_relu, fat=True)  # (S, ..., P, q)
    if log_feas is not None:
        log_imp = log_imp + log_feas
    return logmeanexp(fatmax(log_imp, dim=-1, tau=tau_max), dim=0)


class NoisyScalarEI:
    """Noisy log EI of a scalarisation of the objectives, with constraints (the shared machinery).

    Subclasses set ``scalarise(ctx) -> (f (S, ..., P, q, m) -> (S, ..., P, q))``.
    """

    joint = True

    def __init__(self, *, num_samples: int = 256, max_baseline: int = 64, tau_relu: float = TAU_RELU,
                 tau_max: float = TAU_MAX, eta: float = 1e-3) -> None:
        who = type(self).__name__
        _check_sizes(who, num_samples=num_samples, max_baseline=max_baseline)
        _check_positive(who, tau_relu=tau_relu, tau_max=tau_max, eta=eta)
        self.num_samples, self.max_baseline = num_samples, max_baseline
        self.tau_relu, self.tau_max, self.eta = float(tau_relu), float(tau_max), float(eta)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_samples={self.num_samples}, max_baseline={self.max_baseline})"

    def scalarise(self, ctx: AcquisitionContext):  # noqa: ANN201
        raise NotImplementedError

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, q, d) -> (..., P)``."""
        m = ctx.outcomes.n_objectives
        scalar = self.scalarise(ctx)
        seed = draw_seed(ctx.generator)
        baseline = prune_baseline(_FirstScalar(ctx.model, lambda Y: scalar(Y[..., :m])), ctx.X, self.max_baseline)
        if ctx.pending is not None:
            baseline = torch.cat([baseline, ctx.pending], dim=-2)  # incremental, as qLogNEI
        sampler = MultiOutputSampler(ctx.model, baseline, self.num_samples, seed)
        incumbents: dict[int, Tensor] = {}

        def incumbent(q: int) -> Tensor:
            if q not in incumbents:
                f_b = sampler.get(q)[2]  # (S, P, nb, O)
                incumbents[q] = best_feasible(scalar(f_b[..., :m]), is_feasible(f_b, m))
            return incumbents[q]

        def value(X: Tensor, num_samples: int | None) -> Tensor:
            f = sampler.joint(X, num_samples)  # (S, ..., P, q, O)
            log_feas = log_feasibility(f[..., m:], self.eta) if f.shape[-1] > m else None
            best = incumbent(X.shape[-2])[:num_samples]
            return log_noisy_ei(scalar(f[..., :m]), best, log_feas, self.tau_relu, self.tau_max)

        return chunked(value)


class _FirstScalar:
    """The scalarised posterior mean as a one-output model, for `prune_baseline`."""

    def __init__(self, model: object, scalar) -> None:  # noqa: ANN001
        self.model, self.scalar = model, scalar

    def posterior(self, X: Tensor):  # noqa: ANN201
        post = self.model.posterior(X)
        return type("Mean", (), {"mean": self.scalar(post.mean)})()


class qLogNParEGO(NoisyScalarEI):
    """Batch noisy log EI of a random augmented-Chebyshev scalarisation (2 or more objectives).

    Args:
        alpha: weight of the augmentation term (BoTorch's 0.05).
        weights: fixed (m,) weights, or None to draw them from the simplex.
        num_samples, max_baseline, tau_relu, tau_max, eta: as `qLogNEI`
            (``eta``: the constraints' smooth-feasibility temperature).
    """

    multi_objective = True

    def __init__(self, *, alpha: float = 0.05, weights: tuple[float, ...] | None = None, **kwargs: float) -> None:
        super().__init__(**kwargs)
        if weights is not None and (len(weights) < 1 or any(w < 0 for w in weights) or sum(weights) <= 0):
            raise InvalidArgumentError(f"qLogNParEGO weights must be non-negative with a positive sum, got {weights!r}")
        self.alpha, self.weights = float(alpha), weights

    def scalarise(self, ctx: AcquisitionContext):  # noqa: ANN201
        m = ctx.outcomes.n_objectives
        if m < 2:
            raise InvalidArgumentError(f"qLogNParEGO needs >= 2 objectives, got {ctx.outcomes}")
        if self.weights is None:
            e = -torch.rand(m, generator=ctx.generator, dtype=ctx.X.dtype, device=ctx.X.device).log()
            w = e / e.sum()  # uniform on the simplex
        else:
            if len(self.weights) != m:
                raise InvalidArgumentError(f"qLogNParEGO weights has {len(self.weights)} entries for {m} objectives")
            w = torch.tensor(self.weights, dtype=ctx.X.dtype, device=ctx.X.device)
            w = w / w.sum()
        with torch.no_grad():
            mean = ctx.model.posterior(ctx.X).mean[..., :m]  # (P, n, m)
        lo, hi = mean.amin(-2), mean.amax(-2)  # (P, m)
        span = (hi - lo).clamp_min(1e-9)
        alpha = self.alpha

        def chebyshev(Y: Tensor) -> Tensor:  # (..., P, r, m) -> (..., P, r)
            gap = w * (hi.unsqueeze(-2) - Y) / span.unsqueeze(-2)  # weighted distance to the ideal point
            return -(gap.amax(-1) + alpha * sum_last(gap))

        return chebyshev
