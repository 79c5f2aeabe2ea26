"""The MAP objective of the exact GP, with an analytic gradient.

``loss(theta) = (-log p(y | theta) - log p(theta)) / n`` per problem, for
``theta = [log lengthscale (d), log noise]``, a kernel of
:mod:`gpbo.models.kernel` (the model's) and BoTorch's priors.

The gradient is the textbook one (Rasmussen & Williams 2006, eq. 5.9):
``d(-log p)/d theta_j = -1/2 tr((alpha alpha^T - K^-1) dK/d theta_j)``.
Autograd through ``cholesky`` and ``solve_triangular`` builds and replays a
graph of many small ops on every call; the closed form needs ``K^-1`` from
the Cholesky factor and two matmuls, and the forward pass that the line
search calls without gradients builds nothing at all. It is checked against
autograd in tests/models/test_marginal.py.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch
from botorch.models.utils.gpytorch_modules import (
    get_covar_module_with_dim_scaled_prior,
    get_gaussian_likelihood_with_lognormal_prior,
)
from torch import Tensor

from gpbo.models.kernel import MATERN52, Kernel, scaled_sq_dist


@dataclass(frozen=True)
class GPPriors:
    """BoTorch's SingleTaskGP priors on ``theta = [log lengthscale (d), log noise]``.

    Each ``exp(theta_j)`` is LogNormal(loc_j, scale_j): the lengthscales
    LogNormal(√2 + log(d)/2, √3) of Hvarfner et al. (2024), the noise
    LogNormal(-4, 1). The parameters are read from BoTorch's own factories
    and held as tensors on the data's device (GPyTorch's prior objects keep
    theirs on the CPU whatever ``.to`` is given).

    Attributes:
        loc, scale: (d + 1,) LogNormal parameters.
        min_lengthscale: BoTorch's lower bound on lengthscales (0.025).
    """

    loc: Tensor
    scale: Tensor
    min_lengthscale: float

    @classmethod
    def for_dim(cls, d: int, like: Tensor) -> GPPriors:
        """The priors for d input dims, on ``like``'s dtype and device.

        Cached per (d, dtype, device): otherwise every fit would build
        BoTorch's modules and, on CUDA, copy the tensors from the host.
        The cached tensors are never modified in place.
        """
        return _priors(d, like.dtype, like.device)

    @property
    def mode_theta(self) -> Tensor:
        """(d + 1,) theta at the prior modes: ``log mode = loc - scale**2``."""
        return self.loc - self.scale.pow(2)

    def log_prob(self, theta: Tensor) -> Tensor:
        """(..., P) log prior density of ``exp(theta)`` (the lengthscales and the noise).

        ``log p(v) = log N(log v; loc, scale) - log v`` with ``log v = theta``.
        """
        z = (theta - self.loc) / self.scale
        return (-0.5 * z.pow(2) - self.scale.log() - 0.5 * math.log(2 * math.pi) - theta).sum(-1)

    def grad_log_prob(self, theta: Tensor) -> Tensor:
        """(..., P, d + 1) gradient of :meth:`log_prob` w.r.t. ``theta``: ``-1 - (theta - loc) / scale**2``."""
        return -1.0 - (theta - self.loc) / self.scale.pow(2)


@functools.lru_cache(maxsize=64)
def _priors(d: int, dtype: torch.dtype, device: torch.device) -> GPPriors:
    covar = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, use_rbf_kernel=False)
    ls_prior = covar.lengthscale_prior
    noise_prior = get_gaussian_likelihood_with_lognormal_prior().noise_covar.noise_prior
    kw = {"dtype": dtype, "device": device}
    return GPPriors(
        loc=torch.tensor([float(ls_prior.loc)] * d + [float(noise_prior.loc)], **kw),
        scale=torch.tensor([float(ls_prior.scale)] * d + [float(noise_prior.scale)], **kw),
        min_lengthscale=float(covar.raw_lengthscale_constraint.lower_bound),
    )


def neg_log_posterior(
    theta: Tensor, X: Tensor, Y: Tensor, categorical: tuple[int, ...], priors: GPPriors,
    kernel: Kernel = MATERN52,
) -> Tensor:
    """Negative log marginal likelihood minus log prior, divided by n.

    Args:
        theta: (..., P, d + 1) raw hyperparameters ``[log lengthscale, log noise]``.
        X: (P, n, d) inputs; Y: (P, n) standardised outcomes.
        categorical: encoded dims with the indicator distance.
        priors: the hyperparameter priors.
        kernel: the correlation of the squared scaled distance (the model's).

    Returns:
        (..., P) losses, differentiable w.r.t. ``theta``; +inf (zero
        gradient) where the Cholesky factorisation fails.
    """
    return _NegLogPosterior.apply(theta, X, Y, categorical, priors, kernel)


class _NegLogPosterior(torch.autograd.Function):
    """Forward: the loss. Backward: the closed-form gradient w.r.t. theta."""

    @staticmethod
    def forward(
        ctx: Any, theta: Tensor, X: Tensor, Y: Tensor, categorical: tuple[int, ...], priors: GPPriors, kernel: Kernel
    ) -> Tensor:
        n = X.shape[-2]
        ls, noise = theta[..., :-1].exp(), theta[..., -1].exp()
        sq = scaled_sq_dist(X, X, ls, categorical)  # (..., P, n, n)
        eye = torch.eye(n, dtype=X.dtype, device=X.device)
        K = kernel(sq) + noise[..., None, None] * eye
        L, info = torch.linalg.cholesky_ex(K)
        ok = info == 0
        L = torch.where(ok[..., None, None], L, eye)  # failed elements: finite stand-in
        a = torch.linalg.solve_triangular(L, Y.expand(K.shape[:-1]).unsqueeze(-1), upper=False)
        nll = 0.5 * a.squeeze(-1).pow(2).sum(-1) + L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        loss = (nll + 0.5 * n * math.log(2 * math.pi) - priors.log_prob(theta)) / n
        ctx.save_for_backward(theta, X, L, a, sq, ok)
        ctx.categorical, ctx.priors, ctx.kernel = categorical, priors, kernel
        return torch.where(ok, loss, torch.full_like(loss, math.inf))

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        theta, X, L, a, sq, ok = ctx.saved_tensors
        n = X.shape[-2]
        alpha = torch.linalg.solve_triangular(L.transpose(-1, -2), a, upper=True)  # (..., P, n, 1)
        W = alpha @ alpha.transpose(-1, -2) - _inverse_from_cholesky(L)  # (..., P, n, n)
        M = W * ctx.kernel.dsq(sq)  # (..., P, n, n), symmetric
        inv_ls2 = (-2.0 * theta[..., :-1]).exp()  # (..., P, d)
        grad_ls = _weighted_sq_diff(M, X, ctx.categorical) * inv_ls2  # (..., P, d)
        noise = theta[..., -1].exp()
        grad_noise = -0.5 * W.diagonal(dim1=-2, dim2=-1).sum(-1) * noise  # (..., P)
        grad = torch.cat([grad_ls, grad_noise.unsqueeze(-1)], -1) - ctx.priors.grad_log_prob(theta)
        grad = torch.where(ok.unsqueeze(-1), grad / n, torch.zeros_like(grad))
        return grad * grad_out.unsqueeze(-1), None, None, None, None, None


def _inverse_from_cholesky(L: Tensor) -> Tensor:
    """``K^-1 = L^-T L^-1`` from the lower Cholesky factor ``L`` (..., n, n).

    On the CPU LAPACK's ``potri`` (``torch.cholesky_inverse``). On CUDA a
    triangular solve and a matmul: cuBLAS only, which a CUDA graph can
    capture (:mod:`gpbo.optim.graphed`), where ``cholesky_inverse`` of a
    batch may go through MAGMA or a per-matrix cuSOLVER loop.
    """
    if L.device.type == "cpu":
        return torch.cholesky_inverse(L)
    eye = torch.eye(L.shape[-1], dtype=L.dtype, device=L.device)
    L_inv = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)
    return L_inv.transpose(-1, -2) @ L_inv


def _weighted_sq_diff(M: Tensor, X: Tensor, categorical: tuple[int, ...]) -> Tensor:
    """``sum_ab M_ab D_abj`` per dim j, without forming D (n, n, d).

    ``D_abj`` is ``(x_aj - x_bj)**2`` on continuous dims and ``1[x_aj != x_bj]``
    on categorical ones. For symmetric M the continuous sum expands to
    ``2 (sum_a m_a x_aj**2 - sum_a x_aj (M X)_aj)`` with ``m = M 1``.

    Args:
        M: (..., P, n, n) symmetric weights. X: (P, n, d).

    Returns:
        (..., P, d)
    """
    m = M.sum(-1, keepdim=True)  # (..., P, n, 1)
    out = 2.0 * ((m * X.pow(2)).sum(-2) - (X * (M @ X)).sum(-2))  # (..., P, d)
    for j in categorical:
        differ = (X[..., :, None, j] != X[..., None, :, j]).to(M.dtype)  # (P, n, n)
        out[..., j] = (M * differ).sum((-1, -2))
    return out
