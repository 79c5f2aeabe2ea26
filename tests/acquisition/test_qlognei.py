"""qLogNEI: EI limit, pending points, pruning, determinism and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from gpbo.acquisition import qLogNEI
from gpbo.acquisition.monte_carlo import normal_base_samples, prune_baseline
from gpbo.errors import InvalidArgumentError


def _points(gp, T: int, q: int, seed: int = 3) -> torch.Tensor:
    P, _, d = gp.X_train.shape
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(T, P, q, d, generator=g, dtype=torch.float64)
    return X.to(gp.X_train)


def _ei(gp, X: torch.Tensor, best_f: torch.Tensor) -> np.ndarray:
    post = gp.posterior(X.double())
    mean, sigma = post.mean.squeeze(-1), post.variance.squeeze(-1).clamp_min(1e-12).sqrt()
    u = ((mean - best_f) / sigma).cpu().numpy()
    return sigma.cpu().numpy() * (norm.pdf(u) + u * norm.cdf(u))


def test_q1_noiseless_matches_closed_form_ei(dtype: torch.dtype, make_gp, make_ctx) -> None:
    noise = 1e-6 if dtype == torch.float64 else 1e-4
    gp = make_gp(P=2, n=10, dtype=dtype, noise=noise, seed=1)
    ctx = make_ctx(gp)
    X = _points(gp, 8, 1)
    value = qLogNEI(num_samples=4096)(ctx)(X)  # (8, 2)
    assert value.shape == (8, 2) and value.dtype == dtype
    ref_gp = make_gp(P=2, n=10, noise=noise, seed=1)
    expected = _ei(ref_gp, X.double().cpu(), ctx.best_f.double().cpu())
    big = expected > 1e-3  # relative MC error is meaningless where EI ~ 0
    assert big.sum() >= 4
    tol = 0.03 if dtype == torch.float64 else 0.06  # float32: noise 1e-4 blurs the incumbent
    np.testing.assert_allclose(value.exp().double().cpu().numpy()[big], expected[big], rtol=tol)


def test_candidate_on_pending_point_scores_lower(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, n=8, seed=2)
    X = _points(gp, 6, 1)
    without = qLogNEI()(make_ctx(gp))(X)
    with_pending = qLogNEI()(make_ctx(gp, pending=X[2]))(X)  # X[2] is (P, 1, d)
    assert with_pending[2].max() < without[2].min() - 3.0  # no improvement left there
    assert (with_pending <= without + 1e-2).all()


def test_non_incremental_pending_joins_candidates(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, n=8, seed=2)
    X = _points(gp, 6, 2)
    pending = _points(gp, 1, 3, seed=9)[0]  # (P, 3, d)
    acq = qLogNEI(incremental=False)
    value = acq(make_ctx(gp, pending=pending))(X)
    alone = acq(make_ctx(gp))(X)
    assert value.shape == (6, 2) and torch.isfinite(value).all()
    assert (value >= alone - 0.1).all()  # max over more points: never much smaller


@pytest.mark.parametrize("lead", [(), (5,), (4, 3)])
@pytest.mark.parametrize("q", [1, 3])
def test_shapes(lead: tuple[int, ...], q: int, dtype: torch.dtype, device: str,
                make_gp, make_ctx) -> None:
    gp = make_gp(P=2, dtype=dtype, device=device)
    fn = qLogNEI(num_samples=64)(make_ctx(gp))
    X = torch.rand(*lead, 2, q, 2, dtype=dtype, device=device)
    value = fn(X)
    assert value.shape == (*lead, 2) and value.dtype == dtype and value.device == X.device
    assert torch.isfinite(value).all()


def test_fixed_base_samples_make_it_deterministic(make_gp, make_ctx) -> None:
    gp = make_gp(P=2)
    fn = qLogNEI(num_samples=32)(make_ctx(gp, seed=4))
    X = _points(gp, 5, 2)
    torch.testing.assert_close(fn(X), fn(X), rtol=0, atol=0)
    torch.testing.assert_close(fn(X[:2]), fn(X)[:2])  # leading batch does not change draws
    other = qLogNEI(num_samples=32)(make_ctx(gp, seed=5))(X)
    assert not torch.allclose(other, fn(X))


def test_gradcheck(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, seed=2)
    pending = _points(gp, 1, 1, seed=7)[0]
    fn = qLogNEI(num_samples=16, tau_max=0.1)(make_ctx(gp, pending=pending))
    X = _points(gp, 2, 2).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (X,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_pruning_keeps_best_posterior_mean(make_gp) -> None:
    gp = make_gp(P=3, n=12, seed=6)
    kept = prune_baseline(gp, gp.X_train, 4)  # (3, 4, d)
    assert kept.shape == (3, 4, 2)
    mean = gp.posterior(gp.X_train.transpose(0, 1).unsqueeze(-2)).mean.squeeze(-1).T  # (P, n)
    top = mean.topk(4, dim=-1).indices
    torch.testing.assert_close(kept, gp.X_train.gather(1, top[..., None].expand(-1, -1, 2)))
    assert prune_baseline(gp, gp.X_train, 12) is gp.X_train


def test_pruned_baseline_is_used_and_batched_equals_looped(make_gp, make_ctx,
                                                           subproblem) -> None:
    gp = make_gp(P=3, n=12, seed=6)
    pending = _points(gp, 1, 2, seed=8)[0]
    acq = qLogNEI(num_samples=64, max_baseline=4)
    X = _points(gp, 5, 2)
    batched = acq(make_ctx(gp, pending=pending, seed=11))(X)
    for p in range(3):
        ctx_p = make_ctx(subproblem(gp, p), pending=pending[p:p + 1], seed=11)
        torch.testing.assert_close(acq(ctx_p)(X[:, p:p + 1])[:, 0], batched[:, p])


def test_base_samples_are_standard_normal() -> None:
    z = normal_base_samples(4096, 3, seed=0, dtype=torch.float64, device=torch.device("cpu"))
    assert z.shape == (4096, 3)
    torch.testing.assert_close(z.mean(0), torch.zeros(3, dtype=torch.float64), atol=0.01, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(3, dtype=torch.float64), atol=0.02, rtol=0)
    again = normal_base_samples(4096, 3, seed=0, dtype=torch.float64, device=torch.device("cpu"))
    torch.testing.assert_close(z, again, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_samples": 0}, "num_samples"), ({"max_baseline": 2.5}, "max_baseline"),
     ({"tau_max": 0.0}, "tau_max"), ({"tau_relu": float("inf")}, "tau_relu")],
)
def test_rejects_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        qLogNEI(**kwargs)


def test_rejects_unbatched_input(make_gp, make_ctx) -> None:
    fn = qLogNEI(num_samples=8)(make_ctx(make_gp(P=2)))
    with pytest.raises(InvalidArgumentError, match=r"\(\.\.\., P, q, d\)"):
        fn(torch.rand(3, 2, dtype=torch.float64))


class _NoCross:
    """The model without its `CrossPosterior` capability: qLogNEI takes the posterior of the concatenation."""

    def __init__(self, model) -> None:
        self.model = model

    def posterior(self, X):
        return self.model.posterior(X)

    def condition(self, X, Y, *, noiseless=False):
        return _NoCross(self.model.condition(X, Y, noiseless=noiseless))


def test_exact_gp_cross_posterior_equals_the_concatenated_posterior() -> None:
    """The exact GP's baseline terms, computed once, give the values and gradients of the plain posterior."""
    from gpbo.acquisition.protocol import AcquisitionContext
    from gpbo.engine import fit_model
    from gpbo.models.protocol import CrossPosterior

    g = torch.Generator().manual_seed(4)
    X = torch.rand(2, 40, 3, generator=g, dtype=torch.float64)
    Y = -((X - 0.4) ** 2).sum(-1) + 0.05 * torch.randn(2, 40, generator=g, dtype=torch.float64)
    model = fit_model(X, Y, seed=0)
    assert isinstance(model, CrossPosterior) and not isinstance(_NoCross(model), CrossPosterior)
    pending = torch.rand(2, 3, 3, generator=g, dtype=torch.float64)
    acq = qLogNEI(max_baseline=16)
    Xq = torch.rand(5, 2, 2, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    values, grads = [], []
    for m in (model, _NoCross(model)):
        value = acq(AcquisitionContext.from_data(m, X, Y, pending=pending, seed=7))(Xq)  # (5, 2)
        values.append(value.detach())
        grads.append(torch.autograd.grad(value.sum(), Xq)[0])
    torch.testing.assert_close(values[0], values[1], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-7, atol=1e-9)
