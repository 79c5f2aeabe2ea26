"""The surrogate-model contract shared by models, acquisitions and the engine.

A surrogate is anything with ``posterior(X)`` returning a :class:`Posterior`
(joint Gaussian over the ``q`` points of each problem) and ``condition(X, Y)``
returning a new surrogate with extra observations and the same
hyperparameters. Shapes follow DESIGN.md: ``X`` is ``(..., P, q, d)``, the
posterior mean ``(..., P, q)`` and covariance ``(..., P, q, q)``, in the
original units of Y.

:func:`psd_cholesky` is the jitter-fallback Cholesky used by
:meth:`Posterior.rsample` and by the Monte-Carlo acquisitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from gpbo.errors import InvalidArgumentError

__all__ = ["Posterior", "Surrogate", "noise_variance", "psd_cholesky"]

# Relative diagonal jitter (times the largest diagonal entry) of the first and
# of the fallback factorisation. Float32 needs more: its epsilon is ~1e-7.
_JITTER = {torch.float64: (1e-12, 1e-6), torch.float32: (1e-7, 1e-3)}


def psd_cholesky(A: Tensor) -> Tensor:
    """Lower Cholesky factor of symmetric PSD matrices, with a jitter fallback.

    Every matrix is factorised with a tiny relative jitter; the matrices that
    fail are factorised again with a larger one (``_JITTER``). Both passes
    always run, so there is no host synchronisation (cheap for the small
    ``q x q`` matrices this is used on). Only the chosen pass is
    differentiated. Matrices that fail both passes give NaN factors, which
    optimisers treat as rejected points.

    Args:
        A: (..., m, m) symmetric positive semi-definite matrices.

    Returns:
        (..., m, m) lower-triangular factors ``L`` with ``L L^T ~= A``.
    """
    small, large = _JITTER.get(A.dtype, _JITTER[torch.float32])
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    diag_max = A.diagonal(dim1=-2, dim2=-1).amax(-1, keepdim=True).unsqueeze(-1)
    scale = diag_max.detach().clamp_min(torch.finfo(A.dtype).tiny)  # (..., 1, 1)
    with torch.no_grad():
        _, info = torch.linalg.cholesky_ex(A + small * scale * eye)
    failed = (info > 0)[..., None, None]  # (..., 1, 1)
    jitter = torch.where(failed, large * scale, small * scale)
    L, info = torch.linalg.cholesky_ex(A + jitter * eye)
    return torch.where((info > 0)[..., None, None], torch.full_like(L, float("nan")), L)


@dataclass(frozen=True)
class Posterior:
    """Joint Gaussian posterior of the latent function, in original Y units.

    Attributes:
        mean: (..., P, q) posterior means.
        covariance: (..., P, q, q) posterior covariances.
    """

    mean: Tensor
    covariance: Tensor

    @classmethod
    def from_standardised(cls, mean: Tensor, covariance: Tensor, y_mean: Tensor, y_std: Tensor) -> Posterior:
        """Undo per-problem outcome standardisation ``Y = y_std * Y_s + y_mean``.

        Args:
            mean: (..., P, q) and covariance: (..., P, q, q), standardised.
            y_mean, y_std: (P,) the standardisation.
        """
        scale = y_std.unsqueeze(-1)  # (P, 1)
        return cls(mean=mean * scale + y_mean.unsqueeze(-1), covariance=covariance * scale.unsqueeze(-1).pow(2))

    @property
    def variance(self) -> Tensor:
        """(..., P, q) marginal variances (the covariance diagonal)."""
        return self.covariance.diagonal(dim1=-2, dim2=-1)

    def rsample(self, base_samples: Tensor) -> Tensor:
        """Reparameterised samples ``mean + L z`` with ``L L^T = covariance``.

        Args:
            base_samples: (S, ..., P, q) standard normals. Any of the middle
                dims may be 1 or missing (e.g. ``(S, q)`` shares one draw
                across problems and batch dims); they broadcast.

        Returns:
            (S, ..., P, q) samples, differentiable w.r.t. mean and covariance.

        Raises:
            InvalidArgumentError: if ``base_samples`` has more dims than (S, ..., P, q).
        """
        z = base_samples
        missing = self.mean.dim() + 1 - z.dim()
        if missing < 0:
            raise InvalidArgumentError(
                f"base_samples has {z.dim()} dims; expected at most "
                f"{self.mean.dim() + 1} for a posterior of shape {tuple(self.mean.shape)}"
            )
        z = z.reshape(z.shape[:1] + (1,) * missing + z.shape[1:]).to(self.mean)
        L = psd_cholesky(self.covariance)  # (..., P, q, q)
        return self.mean + (L @ z.unsqueeze(-1)).squeeze(-1)  # (S, ..., P, q)


@runtime_checkable
class Surrogate(Protocol):
    """What the acquisitions need from a fitted model."""

    def posterior(self, X: Tensor) -> Posterior:
        """Joint posterior at ``X`` (..., P, q, d): mean (..., P, q), cov (..., P, q, q)."""
        ...

    def condition(self, X: Tensor, Y: Tensor, *, noiseless: bool = False) -> Surrogate:
        """A copy with observations ``X`` (P, k, d), ``Y`` (P, k) added, same hypers.

        ``noiseless``: the new points get the noise floor (believed fantasies).
        """
        ...


def noise_variance(model: object, who: str) -> Tensor:
    """(P,) observation-noise variance of a fitted model, in the units of Y.

    Needs the ``noise`` (standardised units) and ``y_std`` attributes that
    gpbo's exact GP and SVGP both have; the Surrogate protocol itself does not
    require them.

    Args:
        model: the fitted surrogate.
        who: what needs the noise, for the error message.

    Raises:
        InvalidArgumentError: if the model lacks ``noise`` or ``y_std``.
    """
    noise, y_std = (getattr(model, name, None) for name in ("noise", "y_std"))
    if noise is None or y_std is None:
        raise InvalidArgumentError(
            f"{who} needs a surrogate with `noise` and `y_std` attributes; "
            f"{type(model).__name__} has none"
        )
    return noise * y_std.pow(2)
