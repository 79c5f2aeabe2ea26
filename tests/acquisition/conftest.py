"""A tiny exact GP with known posteriors, and fixtures for the acquisition tests."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from gpbo.acquisition import AcquisitionContext
from gpbo.models.kernel import MATERN52
from gpbo.models.protocol import Posterior

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class TinyGP:
    """Exact GP, Matérn-5/2 ARD with indicator distance on categorical dims.

    Follows the Surrogate protocol and the ThompsonFeatures capability
    (gpbo.models.protocol).
    """

    base_kernel = MATERN52  # what `kernel` below computes, for the random features

    def __init__(self, X: Tensor, Y: Tensor, lengthscale: Tensor, noise: Tensor,
                 categorical: tuple[int, ...] = (), outputscale: Tensor | None = None) -> None:
        self.X_train, self.categorical = X, tuple(categorical)  # (P, n, d)
        self.y_mean, self.y_std = Y.mean(-1), Y.std(-1)  # (P,)
        self.Y_train = (Y - self.y_mean[:, None]) / self.y_std[:, None]
        self.lengthscale, self.noise = lengthscale, noise  # (P, d), (P,)
        self.outputscale = torch.ones_like(noise) if outputscale is None else outputscale
        K = self.kernel(X, X) + noise[:, None, None] * torch.eye(X.shape[-2]).to(X)
        self.L = torch.linalg.cholesky(K)  # (P, n, n)
        self.alpha = torch.cholesky_solve(self.Y_train.unsqueeze(-1), self.L)  # (P, n, 1)

    def kernel(self, X1: Tensor, X2: Tensor) -> Tensor:
        """(..., P, a, d), (P, b, d) -> (..., P, a, b), standardised units."""
        diff = X1.unsqueeze(-2) - X2.unsqueeze(-3)  # (..., P, a, b, d)
        is_cat = torch.zeros(X1.shape[-1], dtype=torch.bool, device=X1.device)
        is_cat[list(self.categorical)] = True
        sq = torch.where(is_cat, (diff != 0).to(diff), diff.pow(2))
        r2 = (sq / self.lengthscale[:, None, None, :].pow(2)).sum(-1)
        r = r2.clamp_min(1e-30).sqrt()
        k = (1 + math.sqrt(5) * r + 5.0 / 3.0 * r2) * torch.exp(-math.sqrt(5) * r)
        return self.outputscale[:, None, None] * k

    def posterior(self, X: Tensor) -> Posterior:
        k_star = self.kernel(X, self.X_train)  # (..., P, q, n)
        mean = (k_star @ self.alpha).squeeze(-1)  # (..., P, q)
        L = self.L.expand(k_star.shape[:-2] + self.L.shape[-2:])
        v = torch.linalg.solve_triangular(L, k_star.transpose(-1, -2), upper=False)
        cov = self.kernel(X, X) - v.transpose(-1, -2) @ v  # (..., P, q, q)
        s = self.y_std[:, None]
        return Posterior(mean * s + self.y_mean[:, None], cov * s[..., None].pow(2))

    def condition(self, X: Tensor, Y: Tensor) -> TinyGP:
        raise NotImplementedError


def make_gp(P: int = 2, n: int = 8, d: int = 2, *, dtype: torch.dtype = torch.float64,
            device: str = "cpu", seed: int = 0, noise: float = 1e-4,
            categorical: tuple[int, ...] = (), levels: int = 3) -> TinyGP:
    """P problems with n points each, f = sum(sin(3 x)) + problem offset."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    for j in categorical:
        X[..., j] = torch.randint(0, levels, (P, n), generator=g).double() / (levels - 1)
    Y = torch.sin(3 * X).sum(-1) + torch.arange(P, dtype=torch.float64)[:, None]
    ls = 0.3 + 0.4 * torch.rand(P, d, generator=g, dtype=torch.float64)
    to = {"dtype": dtype, "device": device}
    return TinyGP(X.to(**to), Y.to(**to), ls.to(**to), torch.full((P,), noise, **to),
                  categorical, outputscale=torch.full((P,), 1.3, **to))


def make_ctx(gp: TinyGP, *, pending: Tensor | None = None, seed: int = 0) -> AcquisitionContext:
    """Context over gp's data in original units."""
    Y = gp.Y_train * gp.y_std[:, None] + gp.y_mean[:, None]
    return AcquisitionContext.from_data(gp, gp.X_train, Y, pending=pending, seed=seed)


def subproblem(gp: TinyGP, p: int) -> TinyGP:
    """The single problem p of gp as a P=1 TinyGP (same hyperparameters)."""
    Y = gp.Y_train * gp.y_std[:, None] + gp.y_mean[:, None]
    sl = slice(p, p + 1)
    return TinyGP(gp.X_train[sl], Y[sl], gp.lengthscale[sl], gp.noise[sl], gp.categorical,
                  gp.outputscale[sl])


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    return request.param


# Helpers are handed out as fixtures rather than imported from this module:
# with several conftest.py files in the tree, "import conftest" is ambiguous.
@pytest.fixture(name="make_gp")
def _make_gp_fixture():
    return make_gp


@pytest.fixture(name="make_ctx")
def _make_ctx_fixture():
    return make_ctx


@pytest.fixture(name="subproblem")
def _subproblem_fixture():
    return subproblem
