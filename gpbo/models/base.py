"""What the exact GP and the SVGP share: their fields, prior covariance and raw hyperparameters.

Both models are frozen dataclasses that extend :class:`StationaryGP` with
their own cached factors; both hold their kernel (``base_kernel``, a
:class:`gpbo.models.kernel.Kernel`) and their outcome standardisation
(:mod:`gpbo.models.standardise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gpbo.errors import InvalidArgumentError
from gpbo.models.kernel import Kernel, kernel_matrix

__all__ = ["NOISE_FLOOR", "NOISE_MODES", "StationaryGP", "check_noise", "theta_of"]

NOISE_FLOOR = {torch.float64: 1e-6, torch.float32: 1e-4}
NOISE_MODES = ("learned", "deterministic")


def check_noise(where: str, noise: object) -> str:
    """``noise`` if it is one of :data:`NOISE_MODES`; else `InvalidArgumentError` naming it and ``where``."""
    if not isinstance(noise, str) or noise not in NOISE_MODES:
        raise InvalidArgumentError(f"{where}: noise must be one of {NOISE_MODES}, got {noise!r:.200}")
    return noise


def theta_of(lengthscale: Tensor, noise: Tensor) -> Tensor:
    """(P, d + 1) raw hyperparameters ``[log lengthscale, log noise]`` of lengthscale (P, d) and noise (P,)."""
    return torch.cat([lengthscale.log(), noise.log().unsqueeze(-1)], dim=-1)


@dataclass(frozen=True)
class StationaryGP:
    """Fields of a fitted batched GP over P problems with a stationary ARD kernel.

    Attributes:
        X_train: (P, n, d) inputs in the unit cube.
        Y_train: (P, n) standardised outcomes.
        y_mean, y_std: (P,) standardisation, ``Y = Y_train * y_std + y_mean``;
            ``y_mean`` is the constant prior mean (see :mod:`gpbo.models.standardise`).
        lengthscale: (P, d); noise: (P,) in standardised units.
        outputscale: (P,) signal variance in standardised units (fixed at 1).
        categorical: encoded dims with the indicator distance.
        base_kernel: the correlation of the squared scaled distance
            (:class:`~gpbo.models.kernel.Matern52` by default).
    """

    X_train: Tensor
    Y_train: Tensor
    y_mean: Tensor
    y_std: Tensor
    lengthscale: Tensor
    noise: Tensor
    outputscale: Tensor
    categorical: tuple[int, ...]
    base_kernel: Kernel

    def kernel(self, X1: Tensor, X2: Tensor) -> Tensor:
        """Prior covariance (standardised units) of (..., P, a, d) and (P, b, d): (..., P, a, b)."""
        return kernel_matrix(X1, X2, self.lengthscale, self.categorical, self.base_kernel)

    @property
    def theta(self) -> Tensor:
        """(P, d + 1) raw hyperparameters ``[log lengthscale, log noise]``."""
        return theta_of(self.lengthscale, self.noise)

    def standardised(self, Y: Tensor) -> Tensor:
        """Outcomes Y (P, k) in Y units -> standardised units (P, k)."""
        return (Y - self.y_mean.unsqueeze(-1)) / self.y_std.unsqueeze(-1)

    def in_y_units(self, mean: Tensor) -> Tensor:
        """Standardised means (..., P, q) -> Y units (as `Posterior.from_standardised` does for the mean)."""
        return mean * self.y_std.unsqueeze(-1) + self.y_mean.unsqueeze(-1)

    def new_point_noise(self, Y_std: Tensor, noiseless: bool) -> Tensor:
        """(P, k) noise of k added points: the floor if ``noiseless`` (a believed fantasy), else ``noise``."""
        if noiseless:
            return torch.full_like(Y_std, NOISE_FLOOR[Y_std.dtype])
        return self.noise.unsqueeze(-1).expand_as(Y_std)
