"""``log fatplus(x)`` with its gradient in closed form: the smooth ReLU of the log-space acquisitions.

BoTorch's ``botorch.utils.safe_math.log_fatplus`` (Ament et al. 2023,
"Unexpected improvements to expected improvement"),

    fatplus(x) = tau * (softplus(x / tau) + 0.1 / (1 + (x / tau)^2)),

computes the same values through about ten autograd nodes; qLogNEHVI calls
it on its largest tensor, ``(S, ..., P, cells, q, m)``, at every step of the
acquisition ascent. Here the forward pass also forms the derivative

    d/dx log fatplus(x) = (sigmoid(z) - 0.2 z / (1 + z^2)^2) / (tau g(z)),   z = x / tau,

``g`` the bracket above, so the backward pass is one product. The values
equal BoTorch's (the same operations); the gradient equals autograd's up to
rounding and softplus's linear branch (``z > 20``, where its slope 1 stands
for sigmoid(z) = 1 - O(e^-20)). No double backward. Measured in
docs/decisions/0044-screened-raw-samples-and-fused-fatplus.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["log_fatplus"]

_ALPHA = 0.1  # BoTorch's coefficient of the Cauchy term (monotone and convex)


class _LogFatplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, tau: float) -> Tensor:  # noqa: ANN001 - autograd's context
        # in place where BoTorch's rounding allows: on the large tensors of qLogNEHVI the
        # temporaries' memory traffic, not the arithmetic, is the cost (about 2x faster)
        z = x / tau
        cauchy = z.square().add_(1.0).reciprocal_()  # 1 / (1 + z^2)
        g = F.softplus(z).add_(cauchy.mul(_ALPHA)).mul_(tau)  # tau (softplus(z) + 0.1 cauchy)
        if x.requires_grad:  # (sigmoid(z) - 0.2 z cauchy^2) / (tau g)
            ctx.save_for_backward(cauchy.square_().mul_(z).mul_(-2 * _ALPHA).add_(torch.sigmoid(z)).div_(g))
        return g.log_()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN001 - autograd's context
        (slope,) = ctx.saved_tensors
        return grad * slope, None


def log_fatplus(x: Tensor, tau: float) -> Tensor:
    """``log(fatplus(x, tau))`` elementwise, as BoTorch's, with a one-product backward pass."""
    return _LogFatplus.apply(x, float(tau))
