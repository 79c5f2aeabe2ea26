"""The q = 1 posterior fast path against the general (autograd) posterior."""

from __future__ import annotations

import pytest
import torch

from gpbo.models.exact import ExactGP
from gpbo.models.kernel import kernel_matrix
from gpbo.models.pointwise import point_moments


def _reference(X, model):
    """Mean and variance through kernel_matrix, differentiated by autograd."""
    k = kernel_matrix(X, model.X_train, model.lengthscale, model.categorical, model.base_kernel)  # (..., P, 1, n)
    mean = (k @ model.alpha.unsqueeze(-1)).squeeze(-1)
    v = k @ model.chol_inv.transpose(-1, -2)
    return mean, 1.0 - v.pow(2).sum(-1)


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
@pytest.mark.parametrize("categorical", [(), (1,)])
def test_values_and_gradients_match_autograd(categorical: tuple[int, ...], kernel: str) -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.rand(2, 15, 3, generator=g, dtype=torch.float64)
    for j in categorical:
        X[..., j] = torch.randint(0, 3, (2, 15), generator=g).double() / 2
    Y = torch.sin(5 * X).sum(-1)
    model = ExactGP.fit(X, Y, categorical=categorical, kernel=kernel)
    Xt = torch.rand(4, 3, 2, 1, 3, generator=g, dtype=torch.float64)  # (..., P, 1, d)
    for j in categorical:
        Xt[..., j] = 0.5
    w_m, w_v = torch.rand(2, 4, 3, 2, 1, generator=g, dtype=torch.float64)
    a = Xt.clone().requires_grad_()
    mean, var = point_moments(a, model.X_train, model.lengthscale, model.alpha, model.chol_inv, categorical, model.base_kernel)
    (ga,) = torch.autograd.grad((w_m * mean + w_v * var).sum(), a)
    b = Xt.clone().requires_grad_()
    ref_mean, ref_var = _reference(b, model)
    (gb,) = torch.autograd.grad((w_m * ref_mean + w_v * ref_var).sum(), b)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(var, ref_var)
    torch.testing.assert_close(ga, gb, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
def test_gradcheck(kernel: str) -> None:
    g = torch.Generator().manual_seed(1)
    X = torch.rand(1, 8, 2, generator=g, dtype=torch.float64)
    model = ExactGP.fit(X, X.sum(-1), kernel=kernel)
    x = torch.rand(3, 1, 1, 2, generator=g, dtype=torch.float64, requires_grad=True)

    def f(x):
        return point_moments(x, model.X_train, model.lengthscale, model.alpha, model.chol_inv, (), model.base_kernel)

    assert torch.autograd.gradcheck(f, (x,))
