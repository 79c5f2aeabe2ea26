"""qLogNEI: batch log noisy expected improvement (Ament et al. 2023).

``qLogNEI(X) ~ log E[ max(max_j f(x_j) - max_i f(b_i), 0) ]`` where the
expectation is over the joint posterior of the candidates ``x_1..x_q`` and of
the baseline ``b_i`` (observed points): the incumbent is the *sampled* best
value at the observed points, so noisy observations are handled without
trusting ``best_f``. Smooth approximations make it differentiable and usable
in log space (BoTorch's helpers): a fat-tailed softplus of the improvement
(``tau_relu``), a fat-tailed smooth max over the q points (``tau_max``) and a
log-mean-exp over the samples.

Sampling (sample average approximation). The base samples are S scrambled
Sobol points mapped to standard normals, of dimension ``n_base + r`` (r new
points), drawn without a P dimension from a seed taken from
``ctx.generator`` when the acquisition is built, and fixed for the lifetime
of the returned function (materialised once per q on first use). The joint
sample is built blockwise: the baseline factor ``L_bb`` is cached, and each
call only factorises the ``r x r`` Schur complement of the new points, so
the baseline samples (and the incumbent) are the same at every X. The
posterior terms that involve only the baseline are computed once too
(`gpbo.models.cross.cross_posterior_of`: the exact GP's projection of the
baseline on its training data), so a call costs the kernel of the new points
with the training data and the baseline.

Baseline pruning: at most ``max_baseline`` observed points per problem are
kept, the ones with the highest posterior mean (BoTorch instead prunes by the
sampled probability of being the best; the mean ranking is cheaper and
deterministic). This bounds the per-call cost at ``O((max_baseline + r)^2)``
kernel entries per candidate batch.

Pending points: with ``incremental=True`` (BoTorch's default) they join the
baseline, so the value is the expected improvement over the best of the
observed *and* pending points; a candidate on top of a pending point scores
low. With ``incremental=False`` they join the candidates in the max over new
points (the joint improvement of pending + candidates).
"""

from __future__ import annotations

import math

import torch
from botorch.acquisition.logei import TAU_MAX, TAU_RELU, _log_improvement
from botorch.utils.safe_math import fatmax, logmeanexp
from torch import Tensor

from gpbo.acquisition.protocol import AcquisitionContext, AcquisitionFn, draw_seed
from gpbo.errors import InvalidArgumentError
from gpbo.models.cross import cross_posterior_of
from gpbo.models.protocol import BaselineCross, Surrogate, psd_cholesky

__all__ = ["qLogNEI", "normal_base_samples", "prune_baseline"]


def normal_base_samples(
    num_samples: int, dim: int, seed: int, *, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Scrambled-Sobol standard normals (plain normals above Sobol's dim limit).

    Args:
        num_samples: S.
        dim: dimension D of each sample.
        seed: integer seed; the same seed gives the same samples.

    Returns:
        (S, D) standard-normal base samples on ``device``.
    """
    if dim <= torch.quasirandom.SobolEngine.MAXDIM:
        engine = torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed)
        u = engine.draw(num_samples, dtype=torch.float64)
        u = u.clamp(1e-10, 1.0 - 1e-10)
        z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)  # (S, D)
    else:
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(num_samples, dim, generator=gen, dtype=torch.float64)
    return z.to(dtype=dtype, device=device)


def prune_baseline(model: Surrogate, X: Tensor, max_points: int) -> Tensor:
    """Keep the ``max_points`` observed points with the highest posterior mean.

    Args:
        model: fitted surrogate.
        X: (P, n, d) observed points.
        max_points: largest number of points kept per problem.

    Returns:
        (P, min(n, max_points), d) points, best posterior mean first.
    """
    n = X.shape[-2]
    if n <= max_points:
        return X
    with torch.no_grad():
        mean = model.posterior(X.transpose(0, 1).unsqueeze(-2)).mean  # (n, P, 1)
        top = mean.squeeze(-1).transpose(0, 1).topk(max_points, dim=-1).indices  # (P, m)
    return X.gather(-2, top.unsqueeze(-1).expand(-1, -1, X.shape[-1]))  # (P, m, d)


class qLogNEI:
    """Batch log noisy expected improvement (joint over q and pending points).

    Args:
        num_samples: MC samples S (Sobol; 256 keeps the MC error of EI near
            1-2% while the per-call tensors stay ``(S, ..., P, q)``).
        max_baseline: observed points kept per problem (see module docs).
        tau_max: temperature of the smooth max over the q points (BoTorch's).
        tau_relu: temperature of the smooth ReLU of the improvement (BoTorch's).
        incremental: pending points join the baseline (True) or the
            candidates (False); see the module docstring.

    Raises:
        InvalidArgumentError: on non-positive sizes or temperatures.
    """

    joint = True

    def __init__(
        self,
        *,
        num_samples: int = 256,
        max_baseline: int = 64,
        tau_max: float = TAU_MAX,
        tau_relu: float = TAU_RELU,
        incremental: bool = True,
    ) -> None:
        for name, value in (("num_samples", num_samples), ("max_baseline", max_baseline)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"qLogNEI {name} must be a positive int, got {value!r}")
        for name, value in (("tau_max", tau_max), ("tau_relu", tau_relu)):
            if not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise InvalidArgumentError(
                    f"qLogNEI {name} must be a finite float > 0, got {value!r}"
                )
        self.num_samples = num_samples
        self.max_baseline = max_baseline
        self.tau_max = float(tau_max)
        self.tau_relu = float(tau_relu)
        self.incremental = bool(incremental)

    def __repr__(self) -> str:
        return (
            f"qLogNEI(num_samples={self.num_samples}, max_baseline={self.max_baseline}, "
            f"tau_max={self.tau_max}, tau_relu={self.tau_relu}, "
            f"incremental={self.incremental})"
        )

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, q, d) -> (..., P)`` log noisy EI values."""
        baseline = prune_baseline(ctx.model, ctx.X, self.max_baseline)  # (P, nb, d)
        prefix = ctx.pending
        if self.incremental and prefix is not None:
            baseline, prefix = torch.cat([baseline, prefix], dim=-2), None
        with torch.no_grad():
            post = ctx.model.posterior(baseline)
            mean_b = post.mean  # (P, nb)
            L_bb = psd_cholesky(post.covariance)  # (P, nb, nb)
            eye = torch.eye(L_bb.shape[-1], dtype=L_bb.dtype, device=L_bb.device)
            L_inv = torch.linalg.solve_triangular(L_bb, eye.expand_as(L_bb), upper=False)
            cross = cross_posterior_of(ctx.model, baseline)
        state = _Baseline(baseline, mean_b, L_bb, L_inv, prefix, cross)
        draws = _SampleCache(self.num_samples, draw_seed(ctx.generator), state)

        def log_nei(X: Tensor) -> Tensor:
            f_new = _joint_samples(state, draws, X)  # (S, ..., P, r)
            best = draws.incumbent(f_new.shape[-1])  # (S, P)
            best = best.view(best.shape[:1] + (1,) * (f_new.dim() - 3) + best.shape[1:])
            log_imp = _log_improvement(f_new, best, tau=self.tau_relu, fat=True)  # (S, ..., P, r)
            per_sample = fatmax(log_imp, dim=-1, tau=self.tau_max)  # (S, ..., P)
            return logmeanexp(per_sample, dim=0)  # (..., P)

        return log_nei


class _Baseline:
    """Cached baseline quantities (no gradient: they do not depend on X)."""

    def __init__(
        self, X: Tensor, mean: Tensor, L: Tensor, L_inv: Tensor, prefix: Tensor | None, cross: BaselineCross
    ) -> None:
        self.X = X  # (P, nb, d) incumbent set
        self.mean = mean  # (P, nb)
        self.L = L  # (P, nb, nb) Cholesky factor of the baseline covariance
        self.L_inv = L_inv  # (P, nb, nb) its inverse (a matmul beats a batched solve)
        self.prefix = prefix  # (P, k, d) pending points prepended to candidates, or None
        self.cross = cross  # the posterior at new points jointly with X, X's own terms computed once

    @property
    def size(self) -> int:
        return self.X.shape[-2]


class _SampleCache:
    """Fixed base samples per number r of new points, drawn from one seed."""

    def __init__(self, num_samples: int, seed: int, baseline: _Baseline) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.baseline = baseline
        self._cache: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    def get(self, r: int) -> tuple[Tensor, Tensor, Tensor]:
        """(z_b (S, nb), z_x (S, r), incumbent (S, P)) for r new points."""
        if r not in self._cache:
            b = self.baseline
            z = normal_base_samples(self.num_samples, b.size + r, self.seed,
                                    dtype=b.mean.dtype, device=b.mean.device)
            z_b, z_x = z[:, : b.size], z[:, b.size:]  # (S, nb), (S, r)
            f_b = b.mean + torch.einsum("sj,pij->spi", z_b, b.L)  # (S, P, nb)
            self._cache[r] = (z_b, z_x, f_b.amax(-1))
        return self._cache[r]

    def incumbent(self, r: int) -> Tensor:
        """(S, P) sampled best baseline value."""
        return self.get(r)[2]


def _joint_samples(b: _Baseline, draws: _SampleCache, X: Tensor) -> Tensor:
    """Samples of the new points, jointly with the cached baseline samples.

    Args:
        b: cached baseline.
        draws: base-sample cache.
        X: (..., P, q, d) candidates.

    Returns:
        (S, ..., P, r) samples at [prefix, X] (r = k + q, or q without prefix).
    """
    if X.dim() < 3:
        raise InvalidArgumentError(
            f"qLogNEI expects X of shape (..., P, q, d), got {tuple(X.shape)}"
        )
    new = X
    if b.prefix is not None:
        new = torch.cat([b.prefix.expand(X.shape[:-3] + b.prefix.shape).to(X), X], dim=-2)
    r = new.shape[-2]
    mean_x, cov_bx, cov_xx = b.cross.at(new)  # (..., P, r), (..., P, nb, r), (..., P, r, r)
    A = b.L_inv.to(X) @ cov_bx  # (..., P, nb, r) = L_bb^-1 Sigma_bx
    L_s = psd_cholesky(cov_xx - A.transpose(-1, -2) @ A)  # (..., P, r, r)
    z_b, z_x, _ = draws.get(r)
    z_b, z_x = z_b.to(X), z_x.to(X)
    return (
        mean_x
        + torch.einsum("sj,...jr->s...r", z_b, A)
        + torch.einsum("sj,...rj->s...r", z_x, L_s)
    )  # (S, ..., P, r)
