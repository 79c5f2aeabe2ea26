"""The exact GP's cross posterior (a fixed baseline and new points) equals the posterior of the concatenation."""

from __future__ import annotations

import dataclasses

import torch

from gpbo.models.cross import ConcatenatedCross, ExactCross, cross_posterior_of
from gpbo.models.exact import ExactGP
from gpbo.models.multi_output import MultiOutputGP, fold_outcomes
from gpbo.models.protocol import BaselineCross, CrossPosterior


def _model(P: int = 2, n: int = 12, d: int = 3, O: int = 1) -> ExactGP:
    g = torch.Generator().manual_seed(0)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    X[..., 1] = (X[..., 1] * 3).floor() / 2  # categorical dim, 3 levels
    Y = torch.stack([torch.sin(5 * X).sum(-1) + o * X[..., 0] for o in range(O)], -1)  # (P, n, O)
    X_f, Y_f = fold_outcomes(X, Y)
    return ExactGP.fit(X_f, Y_f, categorical=(1,), max_iter=5)


def _points(*shape: int, seed: int) -> torch.Tensor:
    X = torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    X[..., 1] = (X[..., 1] * 3).floor() / 2
    return X


def _close(fast, slow) -> None:
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def _grad(outputs, X: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. X of a fixed random linear function of the outputs."""
    g = torch.Generator().manual_seed(9)
    total = sum((torch.randn(t.shape, generator=g, dtype=t.dtype) * t).sum() for t in outputs)
    return torch.autograd.grad(total, X)[0]


def test_exact_cross_equals_the_concatenation_with_gradients():
    gp = _model()
    X_b = _points(2, 7, 3, seed=1)
    assert isinstance(gp, CrossPosterior)
    fast, slow = gp.cross_posterior(X_b), ConcatenatedCross(gp, X_b)
    assert isinstance(fast, ExactCross) and isinstance(fast, BaselineCross)
    for q in (1, 3):
        X = _points(4, 2, q, 3, seed=q).requires_grad_()
        out_fast, out_slow = fast.at(X), slow.at(X)
        assert [t.shape for t in out_fast] == [(4, 2, q), (4, 2, 7, q), (4, 2, q, q)]
        _close(out_fast, out_slow)
        _close([_grad(out_fast, X)], [_grad(out_slow, X)])


def test_exact_cross_batched_equals_looped():
    gp = _model()
    X_b, X = _points(2, 5, 3, seed=1), _points(3, 2, 2, 3, seed=2)
    batched = gp.cross_posterior(X_b).at(X)
    for p in range(2):
        one = dataclasses.replace(gp, **{
            f.name: getattr(gp, f.name)[p:p + 1] for f in dataclasses.fields(gp)
            if isinstance(getattr(gp, f.name), torch.Tensor) and getattr(gp, f.name).dim() >= 1
        })
        looped = one.cross_posterior(X_b[p:p + 1]).at(X[:, p:p + 1])
        _close([t[:, p:p + 1] for t in batched], looped)


def test_multi_output_cross_equals_its_posterior_of_the_concatenation():
    mo = MultiOutputGP(_model(O=3), 3, n_objectives=2)  # the third outcome a constraint
    X_b, X = _points(2, 6, 3, seed=3), _points(5, 2, 2, 3, seed=4)
    fast = mo.cross_posterior(X_b)
    assert isinstance(fast.inner, ExactCross)
    out = fast.at(X)
    assert [t.shape for t in out] == [(5, 2, 2, 3), (5, 2, 3, 6, 2), (5, 2, 3, 2, 2)]
    _close(out, ConcatenatedCross(mo, X_b, points_dim=-2).at(X))


def test_a_model_without_the_capability_gets_the_concatenation():
    @dataclasses.dataclass(frozen=True)
    class Plain:  # a surrogate with a posterior only
        gp: ExactGP

        def posterior(self, X):
            return self.gp.posterior(X)

    gp = _model()
    X_b, X = _points(2, 4, 3, seed=5), _points(2, 2, 3, seed=6)
    cross = cross_posterior_of(Plain(gp), X_b)
    assert isinstance(cross, ConcatenatedCross)
    _close(cross.at(X), gp.cross_posterior(X_b).at(X))
    mo = MultiOutputGP(Plain(gp), 1)
    assert isinstance(mo.cross_posterior(X_b).inner, ConcatenatedCross)
