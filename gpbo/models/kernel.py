"""Stationary ARD kernels with categorical (indicator-distance) dimensions.

A kernel here is the correlation ``k(r²)`` of a squared scaled distance
``r² = Σ_j (x_j - x'_j)² / ℓ_j²`` (unit outputscale), together with its
derivative ``dk/d(r²)``, which the closed-form gradients of the MAP fit
(:mod:`gpbo.models.marginal`) and of the acquisition ascent
(:mod:`gpbo.models.pointwise`) need. The model holds its kernel object
(``ExactGP.base_kernel``, ``SVGP.base_kernel``); :data:`KERNELS` maps the
names of ``gpbo.Settings.kernel`` to them:

- :class:`Matern52` (default): the same as BoTorch's
  ``get_covar_module_with_dim_scaled_prior(use_rbf_kernel=False)``, a GPyTorch
  ``MaternKernel(nu=2.5)`` with one lengthscale per dimension;
- :class:`RBF`: the squared exponential ``exp(-r²/2)`` (BoTorch's
  ``use_rbf_kernel=True``), with the same priors.

Each kernel also brings its spectral measure, which Thompson sampling's
random Fourier features draw from (Rahimi & Recht 2007): a correlation of
``r²`` that is valid in every dimension is a scale mixture of Gaussians
(Schoenberg 1938), ``k(r²) = E_s[exp(-s² r² / 2)]``, so its frequencies are
``w = s z / ℓ`` with ``z ~ N(0, I)`` and a radial scale ``s`` drawn by
:meth:`SpectralKernel.spectral_scale`: ``s = 1`` for the RBF (Gaussian
spectral density), ``s = sqrt(2ν / χ²_2ν)`` for Matérn-ν (a Student-t with
2ν degrees of freedom; Rasmussen & Williams 2006, eq. 4.15).

Categorical dimensions are handled the way Optuna's ``_gp`` does: there the
squared distance is ``1[x != x'] / lengthscale**2`` (a Hamming-type
distance). Encoded categorical values are level indices scaled to [0, 1], so
only equality matters.

Kernels are plain tensor functions rather than GPyTorch modules because
GPyTorch's lazy-tensor dispatch costs milliseconds per call at small n, and
the fit and the acquisition ascent call the kernel hundreds of times per
suggestion (benchmarks/RESULTS.md, "Suggestion latency").
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from gpbo.errors import InvalidArgumentError

__all__ = [
    "KERNELS", "Kernel", "Matern52", "RBF", "SpectralKernel", "continuous_mask", "dim_index", "get_kernel",
    "kernel_matrix", "scaled_sq_dist",
]

_SQRT5 = math.sqrt(5.0)
_MIN_SQ_DIST = 1e-30  # keeps d sqrt(r2) finite at r2 = 0


def scaled_sq_dist(
    x1: Tensor, x2: Tensor, lengthscale: Tensor, categorical: tuple[int, ...]
) -> Tensor:
    """Squared ARD distance, with indicator distance on categorical dims.

    Args:
        x1: (..., P, a, d) points.
        x2: (..., P, b, d) points (leading dims broadcast against ``x1``).
        lengthscale: (..., P, d) positive lengthscales.
        categorical: encoded dims compared by equality only.

    Returns:
        (..., P, a, b) squared scaled distances, clamped at zero.
    """
    inv_ls = lengthscale.reciprocal().unsqueeze(-2)  # (..., P, 1, d)
    if categorical:
        inv_ls_cont = inv_ls * continuous_mask(categorical, x1.shape[-1], x1.dtype, x1.device)
        s1, s2 = x1 * inv_ls_cont, x2 * inv_ls_cont  # categorical coordinates zeroed
    else:
        s1, s2 = x1 * inv_ls, x2 * inv_ls
    sq = (
        s1.pow(2).sum(-1, keepdim=True)
        + s2.pow(2).sum(-1).unsqueeze(-2)
        - 2.0 * s1 @ s2.transpose(-1, -2)
    )  # (..., P, a, b)
    if categorical:
        cat = dim_index(categorical, x1.device)
        differ = x1[..., cat].unsqueeze(-2) != x2[..., cat].unsqueeze(-3)  # (..., P, a, b, c)
        weights = inv_ls[..., cat].pow(2).unsqueeze(-2)  # (..., P, 1, 1, c)
        sq = sq + (differ.to(x1.dtype) * weights).sum(-1)
    return sq.clamp_min(0.0)


@functools.lru_cache(maxsize=64)
def continuous_mask(categorical: tuple[int, ...], d: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(d,)`` 1.0 on continuous dims, 0.0 on ``categorical`` ones (cached).

    Cached, like :func:`dim_index`, so that the acquisition ascent neither copies
    from the host nor syncs per call (boolean-mask indexing would), and can be
    replayed from a CUDA graph (:mod:`gpbo.optim.graphed`).
    """
    mask = torch.ones(d, dtype=dtype)
    mask[list(categorical)] = 0.0
    return mask.to(device)


@functools.lru_cache(maxsize=64)
def dim_index(dims: tuple[int, ...], device: torch.device) -> Tensor:
    """``(c,)`` int64 index tensor of ``dims`` on ``device`` (cached: no host copy per call)."""
    return torch.tensor(dims, dtype=torch.int64).to(device)


@runtime_checkable
class Kernel(Protocol):
    """A stationary correlation of the squared scaled distance.

    Attributes:
        name: the key of the kernel in :data:`KERNELS` (``gpbo.Settings.kernel``).
    """

    name: str

    def __call__(self, sq_dist: Tensor) -> Tensor:
        """(...) correlations in (0, 1] of (...) squared scaled distances ``r²``."""
        ...

    def dsq(self, sq_dist: Tensor) -> Tensor:
        """(...) derivatives ``dk/d(r²)`` at (...) squared scaled distances, finite at 0."""
        ...


@runtime_checkable
class SpectralKernel(Kernel, Protocol):
    """A :class:`Kernel` that can draw its spectral measure (Thompson sampling's random features need it)."""

    def spectral_scale(
        self, shape: tuple[int, ...], *, generator: torch.Generator, dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        """Radial scales ``s`` (shape) with ``k(r²) = E[exp(-s² r² / 2)]``.

        Frequencies ``w = s z / ℓ``, ``z ~ N(0, I)`` independent of ``s``,
        then have the kernel's spectral density: ``E[cos(w · (x - x'))] = k(r²)``.
        """
        ...


@dataclass(frozen=True)
class Matern52:
    """Matérn-5/2: ``k = (1 + √5 r + 5 r²/3) exp(-√5 r)``."""

    name: ClassVar[str] = "matern52"
    dof: ClassVar[int] = 5  # 2ν: Student-t degrees of freedom of the spectral density

    def __call__(self, sq_dist: Tensor) -> Tensor:
        """(...) correlations of (...) squared scaled distances ``r² = sq_dist``."""
        r = sq_dist.clamp_min(_MIN_SQ_DIST).sqrt()
        return (1.0 + _SQRT5 * r + (5.0 / 3.0) * sq_dist) * torch.exp(-_SQRT5 * r)

    def dsq(self, sq_dist: Tensor) -> Tensor:
        """``dk/d(r²) = -(5/6)(1 + √5 r) exp(-√5 r)`` at (...) ``r² = sq_dist``, finite at r = 0."""
        r = sq_dist.clamp_min(_MIN_SQ_DIST).sqrt()
        return -(5.0 / 6.0) * (1.0 + _SQRT5 * r) * torch.exp(-_SQRT5 * r)

    def spectral_scale(
        self, shape: tuple[int, ...], *, generator: torch.Generator, dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        """``s = sqrt(5 / χ²_5)`` (shape): a multivariate Student-t with 5 dof (R&W eq. 4.15, ν = 5/2).

        The χ²_5 is the sum of 5 squared standard normals drawn from ``generator``.
        """
        chi2 = torch.randn(*shape, self.dof, generator=generator, dtype=dtype, device=device).pow(2).sum(-1)
        return (self.dof / chi2).sqrt()


@dataclass(frozen=True)
class RBF:
    """Squared exponential: ``k = exp(-r²/2)``."""

    name: ClassVar[str] = "rbf"

    def __call__(self, sq_dist: Tensor) -> Tensor:
        """(...) correlations of (...) squared scaled distances ``r² = sq_dist``."""
        return torch.exp(-0.5 * sq_dist)

    def dsq(self, sq_dist: Tensor) -> Tensor:
        """``dk/d(r²) = -exp(-r²/2) / 2`` at (...) ``r² = sq_dist``."""
        return -0.5 * torch.exp(-0.5 * sq_dist)

    def spectral_scale(
        self, shape: tuple[int, ...], *, generator: torch.Generator, dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        """``s = 1`` (shape): the RBF's spectral density is Gaussian, ``w ~ N(0, 1/ℓ²)``; draws nothing."""
        return torch.ones(shape, dtype=dtype, device=device)


MATERN52 = Matern52()
KERNELS: dict[str, Kernel] = {"matern52": MATERN52, "rbf": RBF()}


def get_kernel(kernel: str | Kernel) -> Kernel:
    """The kernel named ``kernel`` in :data:`KERNELS`, or ``kernel`` itself if it is a :class:`Kernel`.

    Raises:
        InvalidArgumentError: for an unknown name or an object that is not a kernel.
    """
    if isinstance(kernel, str):
        if kernel in KERNELS:
            return KERNELS[kernel]
    elif isinstance(kernel, Kernel):
        return kernel
    raise InvalidArgumentError(
        f"kernel must be one of {tuple(KERNELS)} or a gpbo.models.kernel.Kernel, got {kernel!r:.200}"
    )


def kernel_matrix(
    x1: Tensor, x2: Tensor, lengthscale: Tensor, categorical: tuple[int, ...], kernel: Kernel = MATERN52
) -> Tensor:
    """ARD covariance (unit outputscale) between two point sets.

    Args:
        x1: (..., P, a, d); x2: (..., P, b, d); lengthscale: (..., P, d).
        categorical: encoded dims compared by equality only.
        kernel: the correlation of the squared scaled distance (a model passes its own).

    Returns:
        (..., P, a, b) covariance matrix.
    """
    return kernel(scaled_sq_dist(x1, x2, lengthscale, categorical))
