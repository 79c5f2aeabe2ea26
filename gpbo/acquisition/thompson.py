"""Thompson sampling with pathwise posterior samples (Wilson et al. 2020).

Each of the q candidate points gets its OWN posterior sample path

``f_i(x) = g_i(x) + k(x, X) (K + noise I)^-1 (y - g_i(X) - eps_i)``  (Matheron's rule)

where ``g_i`` is a prior sample from random Fourier features (RFF) and
``eps_i ~ N(0, noise I)``. The acquisition value of a batch is
``sum_i f_i(x_i)``, so gradient ascent maximises every path independently
and the q points are q independent Thompson draws (diverse for large q,
with no q x q linear algebra). Paths are cheap to evaluate: O(m d + n) per
point for m features, after an O(n^3 + q n m d) setup.

Prior features follow the model's kernel (``model.base_kernel``, ARD,
unit-cube inputs; Rahimi & Recht 2007): frequencies ``w = s z / lengthscale``
with ``z ~ N(0, I)`` and a radial scale ``s`` from the kernel's
``spectral_scale`` (:class:`~gpbo.models.kernel.SpectralKernel`): ``s = 1``
for the RBF (Gaussian spectral density), ``s = sqrt(5 / chi2_5)`` for
Matérn-5/2 (a multivariate Student-t with 2 nu = 5 dof), phases
``b ~ U(0, 2 pi)``, and
``g(x) = sqrt(2 outputscale / m) sum_j a_j cos(w_j . x + b_j)``, ``a_j ~ N(0, 1)``.

Categorical dims. The model's kernel uses the squared distance
``1[x != x'] / lengthscale**2`` on them. That is the Euclidean distance of
one-hot codes scaled by ``1/sqrt(2)``, so the prior stays an exact RFF of
the kernel if each feature has an independent normal frequency per *level*
(times the same radial scale ``s``). Levels
are not known here, so the per-level normals come from a counter-based hash
of the level (``round(value * 27720)``, distinct for any level grid
``i / (k - 1)`` with k <= 27721) and of per-feature random seeds:
deterministic, equal for equal values, independent across levels. The path
is piecewise constant in categorical coordinates (zero gradient), which is
what the optimiser's discrete search expects.

Randomness: one seed is drawn from ``ctx.generator`` when the acquisition is
built; all path parameters (frequencies, phases, weights, noise draws) are
drawn from it without a P dimension, once per q on first use, so a batched
call equals a loop over problems. ``ctx.pending`` is ignored: independent
draws already spread a batch.

What the model must offer is the :class:`~gpbo.models.protocol.ThompsonFeatures`
capability (kernel, hyperparameters, training data), checked when the
acquisition is built. Two optional refinements: :class:`~gpbo.models.protocol.PointNoise`
(``point_noise`` (P, n), the noise of each training point) and, for sparse
models, :class:`~gpbo.models.protocol.PathwiseUpdate`, which carries the
paths on other points than the training data (``pathwise_basis`` (P, b, d)
and ``pathwise_weights(prior_at_basis (P, q, b), eps (q, b)) -> (P, q, b)``;
the SVGP uses its inducing points, ``f = g + k(., Z) v``); models without it
get the exact update above on ``X_train``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gpbo.acquisition.protocol import AcquisitionContext, AcquisitionFn, draw_seed
from gpbo.errors import InvalidArgumentError
from gpbo.models.kernel import Kernel, SpectralKernel, dim_index
from gpbo.models.protocol import (
    PathwiseUpdate,
    PointNoise,
    ThompsonFeatures,
    psd_cholesky,
    require,
)

__all__ = ["ThompsonSampling"]

_LEVEL_GRID = 27720  # lcm(1..12): level values i/(k-1) map to exact integers for k <= 13
_M32 = 0xFFFFFFFF
_MAX_CHUNK = 2**24  # elements per chunk when evaluating paths at the training points


@dataclass(frozen=True)
class _Paths:
    """Random parameters of q prior paths with m features (no P dim)."""

    freq: Tensor  # (q, m, d) standard normals (continuous dims used)
    scale: Tensor  # (q, m) the kernel's spectral radial scale s (Matérn-5/2: sqrt(5 / chi2_5); RBF: 1)
    phase: Tensor  # (q, m) U(0, 2 pi)
    weight: Tensor  # (q, m) N(0, 1)
    seeds: Tensor  # (q, m, c) int64 hash seeds for categorical dims
    eps: Tensor  # (q, n) N(0, 1) observation-noise draws


def _draw_paths(q: int, m: int, d: int, c: int, n: int, seed: int, like: Tensor, kernel: SpectralKernel) -> _Paths:
    """Draw the path parameters of ``kernel``'s features from a generator seeded with ``seed``."""
    gen = torch.Generator(device=like.device).manual_seed(seed)
    kw = {"generator": gen, "dtype": like.dtype, "device": like.device}
    freq = torch.randn(q, m, d, **kw)
    scale = kernel.spectral_scale((q, m), **kw)  # (q, m)
    phase = 2.0 * math.pi * torch.rand(q, m, **kw)
    weight = torch.randn(q, m, **kw)
    seeds = torch.randint(0, 2**32, (q, m, c), generator=gen, device=like.device)
    eps = torch.randn(q, n, **kw)
    return _Paths(freq, scale, phase, weight, seeds, eps)


def _spectral_kernel(model: ThompsonFeatures) -> SpectralKernel:
    """The model's ``base_kernel``, checked to draw its spectral measure."""
    kernel: Kernel = model.base_kernel
    if not isinstance(kernel, SpectralKernel):
        raise InvalidArgumentError(
            f"ThompsonSampling draws random Fourier features from the model's kernel, which needs "
            f"spectral_scale (gpbo.models.kernel.SpectralKernel); {type(model).__name__}.base_kernel "
            f"{kernel!r:.120} has none"
        )
    return kernel


def _mix32(x: Tensor) -> Tensor:
    """32-bit integer hash (int64 tensors holding values in [0, 2^32))."""
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    return (x >> 16) ^ x


def _level_normals(values: Tensor, seeds: Tensor) -> Tensor:
    """Standard normals indexed by (categorical level, seed), via Box-Muller.

    One 32-bit hash per entry gives two 16-bit uniforms (normals truncated at
    |z| < 4.8, immaterial for random features).

    Args:
        values: (..., c) encoded categorical values in [0, 1].
        seeds: (..., c) int64 seeds in [0, 2^32), broadcastable with ``values``.

    Returns:
        (...broadcast, c) normals in ``values``' dtype; equal values and
        seeds give equal normals.
    """
    level = _mix32(torch.round(values.detach() * _LEVEL_GRID).to(torch.int64) & _M32)
    h = _mix32(level ^ seeds)  # (..., c)
    u1 = ((h >> 16).to(values.dtype) + 0.5) / 65536.0
    u2 = ((h & 0xFFFF).to(values.dtype) + 0.5) / 65536.0
    return (-2.0 * u1.log()).sqrt() * torch.cos(2.0 * math.pi * u2)


def _prior_paths(X: Tensor, model: ThompsonFeatures, paths: _Paths) -> Tensor:
    """Prior path i evaluated at point i.

    Args:
        X: (..., P, q, d) points; point i goes to path i.
        model: supplies lengthscale (P, d), outputscale (P,), categorical dims.
        paths: q paths with m features.

    Returns:
        (..., P, q) prior sample values in standardised units.
    """
    categorical = tuple(model.categorical)
    cont_dims = tuple(j for j in range(X.shape[-1]) if j not in categorical)
    cont, cat = dim_index(cont_dims, X.device), dim_index(categorical, X.device)
    ls = model.lengthscale.to(X)  # (P, d)
    Xs = X[..., cont] / ls[:, cont].unsqueeze(-2)  # (..., P, q, dc)
    proj = torch.einsum("...ik,imk->...im", Xs, paths.freq[..., cont])  # (..., P, q, m)
    if categorical:
        z = _level_normals(X[..., cat].unsqueeze(-2), paths.seeds)  # (..., P, q, m, c)
        inv = (math.sqrt(2.0) * ls[:, cat]).reciprocal()[:, None, None, :]  # (P, 1, 1, c)
        proj = proj + (z * inv).sum(-1)
    feats = torch.cos(proj * paths.scale + paths.phase)  # (..., P, q, m)
    amp = (2.0 * model.outputscale.to(X) / paths.weight.shape[-1]).sqrt()  # (P,)
    return amp.unsqueeze(-1) * (feats * paths.weight).sum(-1)  # (..., P, q)


def _basis(model: ThompsonFeatures) -> Tensor:
    """(P, b, d) points carrying the path update: the model's basis or X_train."""
    return model.pathwise_basis if isinstance(model, PathwiseUpdate) else model.X_train


def _paths_at_basis(model: ThompsonFeatures, paths: _Paths) -> Tensor:
    """All q prior paths at all basis points: (P, q, b), chunked over b."""
    X = _basis(model)  # (P, n, d)
    P, n, d = X.shape
    q, m = paths.weight.shape
    chunk = max(1, _MAX_CHUNK // max(1, P * q * m * (1 + len(model.categorical))))
    parts = []
    for start in range(0, n, chunk):
        Xc = X[:, start:start + chunk].transpose(0, 1).unsqueeze(-2)  # (nc, P, 1, d)
        parts.append(_prior_paths(Xc.expand(-1, P, q, d), model, paths))  # (nc, P, q)
    return torch.cat(parts, dim=0).permute(1, 2, 0)  # (P, q, n)


def _update_weights(model: ThompsonFeatures, paths: _Paths) -> Tensor:
    """Matheron update ``(K + noise I)^-1 (y - g(X) - eps)`` per path: (P, q, b)."""
    if isinstance(model, PathwiseUpdate):
        return model.pathwise_weights(_paths_at_basis(model, paths), paths.eps)
    X = model.X_train  # (P, n, d)
    if isinstance(model, PointNoise):
        noise = model.point_noise  # (P, n): believed fantasies sit at the floor
    else:
        noise = model.noise.unsqueeze(-1).expand(X.shape[:-1])  # (P, n)
    L = psd_cholesky(model.kernel(X, X) + torch.diag_embed(noise))  # (P, n, n)
    resid = (
        model.Y_train.unsqueeze(-2)
        - _paths_at_basis(model, paths)
        - noise.sqrt().unsqueeze(-2) * paths.eps
    )  # (P, q, n)
    return torch.cholesky_solve(resid.transpose(-1, -2), L).transpose(-1, -2)  # (P, q, n)


class ThompsonSampling:
    """Batch Thompson sampling: one pathwise posterior sample per batch point.

    Needs a model with the :class:`~gpbo.models.protocol.ThompsonFeatures`
    capability (gpbo's ExactGP and SVGP).
    Above ~6 dimensions it over-explores the box boundary and can trail random
    search (docs/decisions/0010-default-portfolio-logei-ucb.md); it
    suits large, diverse batches in low dimensions.

    Args:
        num_features: random Fourier features m per path (default 1024;
            the prior covariance error is O(1/sqrt(m))).

    Raises:
        InvalidArgumentError: on a bad ``num_features``, or (when built) a
            model without the ThompsonFeatures capability.
    """

    joint = True
    requires = (ThompsonFeatures,)

    def __init__(self, *, num_features: int = 1024) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise InvalidArgumentError(
                f"ThompsonSampling num_features must be a positive int, got {num_features!r}"
            )
        self.num_features = num_features

    def __repr__(self) -> str:
        return f"ThompsonSampling(num_features={self.num_features})"

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, q, d) -> (..., P)``: the sum of the q path values."""
        paths = self.paths(ctx)
        return lambda X: paths(X).sum(-1)

    def paths(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, q, d) -> (..., P, q)``: path i at point i, in Y units."""
        model = require(ctx.model, ThompsonFeatures, "ThompsonSampling")
        kernel = _spectral_kernel(model)
        seed, cache = draw_seed(ctx.generator), {}
        c, basis = len(model.categorical), _basis(model)
        P, n, d = basis.shape

        def setup(q: int) -> tuple[_Paths, Tensor]:
            if q not in cache:
                with torch.no_grad():
                    paths = _draw_paths(q, self.num_features, d, c, n, seed, model.X_train, kernel)
                    cache[q] = (paths, _update_weights(model, paths))
            return cache[q]

        def path_values(X: Tensor) -> Tensor:
            if X.dim() < 3 or X.shape[-1] != d or X.shape[-3] != P:
                raise InvalidArgumentError(
                    f"ThompsonSampling expects X of shape (..., {P}, q, {d}), got {tuple(X.shape)}"
                )
            paths, v = setup(X.shape[-2])
            f = _prior_paths(X, model, paths) + (model.kernel(X, basis) * v.to(X)).sum(-1)
            return model.y_mean.to(X).unsqueeze(-1) + model.y_std.to(X).unsqueeze(-1) * f

        return path_values
