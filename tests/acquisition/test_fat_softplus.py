"""gpbo's log_fatplus: BoTorch's values, and autograd's gradient of BoTorch's, in one backward product."""

from __future__ import annotations

import pytest
import torch
from botorch.utils.safe_math import log_fatplus as botorch_log_fatplus

from gpbo.acquisition.fat_softplus import log_fatplus


@pytest.mark.parametrize("tau", [1e-6, 1e-3, 1.0])
def test_values_and_gradients_equal_botorchs(tau):
    x = (torch.linspace(-30.0, 30.0, 601, dtype=torch.float64) * tau).requires_grad_()
    ours = log_fatplus(x, tau)
    theirs = botorch_log_fatplus(x, tau=tau)
    assert torch.equal(ours, theirs)
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    (g_theirs,) = torch.autograd.grad(theirs.sum(), x)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-8, atol=0.0)  # softplus is linear past z = 20: slope 1 vs 1 - 2e-9


def test_gradient_passes_gradcheck_and_no_grad_saves_nothing():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: log_fatplus(t, 0.5), (x,))
    with torch.no_grad():
        assert not log_fatplus(x, 0.5).requires_grad
