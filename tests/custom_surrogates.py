"""A researcher's own surrogate, following only the documented protocols (shared test helper).

``FixedGP`` is a tiny exact GP in plain torch (RBF kernel, fixed
hyperparameters, batched over P) with nothing but the base
:class:`~gpbo.models.protocol.Surrogate` protocol: ``posterior`` and
``condition``. ``FixedGPWithNoise`` adds the NoiseAndScale capability.
Both classes are also :class:`~gpbo.models.protocol.SurrogateFactory`\\ s
(``fit`` is a classmethod), so ``gpbo.Settings(model=FixedGP)`` runs them
through ``gpbo.suggest``, ``gpbo.Optimizer`` and ``gpbo.minimize``.

Importable from every test folder: pyproject.toml puts ``tests`` on the path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gpbo.models.protocol import Posterior, Surrogate

__all__ = ["FixedGP", "FixedGPWithNoise"]


class FixedGP:
    """Exact GP with an RBF kernel and fixed hyperparameters, P problems at once.

    Follows only the base protocol. Its private names keep it from looking
    like any capability by accident. ``fits`` counts the calls of `fit` and
    ``warm_starts`` records what each was given (class-level, reset by tests).
    """

    fits: list[object] = []

    def __init__(self, X: Tensor, Y: Tensor, *, prior_mean: Tensor | None = None,
                 diag: Tensor | None = None, ls: float = 0.25, noise_var: float = 1e-3) -> None:
        self._X, self._Y, self._ls, self._noise_var = X, Y, ls, noise_var  # (P, n, d), (P, n)
        self._m = Y.mean(-1, keepdim=True) if prior_mean is None else prior_mean  # (P, 1)
        self._diag = torch.full_like(Y, noise_var) if diag is None else diag  # (P, n)
        K = self._k(X, X) + torch.diag_embed(self._diag)  # (P, n, n)
        self._L = torch.linalg.cholesky(K)
        self._alpha = torch.cholesky_solve((Y - self._m).unsqueeze(-1), self._L)  # (P, n, 1)

    @classmethod
    def fit(cls, X: Tensor, Y: Tensor, *, categorical: tuple[int, ...], seed: int,
            warm_start: Surrogate | None) -> FixedGP:
        """The SurrogateFactory protocol: nothing to fit, the hyperparameters are fixed."""
        FixedGP.fits.append(warm_start)
        return cls(X, Y)

    def _k(self, A: Tensor, B: Tensor) -> Tensor:
        """(..., P, a, d), (P, b, d) -> (..., P, a, b)."""
        sq = (A.unsqueeze(-2) - B.unsqueeze(-3)).pow(2).sum(-1)
        return torch.exp(-0.5 * sq / self._ls**2)

    def posterior(self, X: Tensor) -> Posterior:
        k_xn = self._k(X, self._X)  # (..., P, q, n)
        mean = self._m + (k_xn @ self._alpha).squeeze(-1)  # (..., P, q)
        L = self._L.expand(k_xn.shape[:-2] + self._L.shape[-2:])  # (..., P, n, n)
        v = torch.linalg.solve_triangular(L, k_xn.transpose(-1, -2), upper=False)  # (..., P, n, q)
        return Posterior(mean, self._k(X, X) - v.transpose(-1, -2) @ v)

    def condition(self, X: Tensor, Y: Tensor, *, noiseless: bool = False) -> FixedGP:
        floor = 1e-8 if Y.dtype == torch.float64 else 1e-4  # a believed point may repeat one
        new_diag = torch.full_like(Y, floor if noiseless else self._noise_var)  # (P, k)
        return type(self)(
            torch.cat([self._X, X], -2), torch.cat([self._Y, Y], -1), prior_mean=self._m,
            diag=torch.cat([self._diag, new_diag], -1), ls=self._ls, noise_var=self._noise_var,
        )


class FixedGPWithNoise(FixedGP):
    """The same model plus the NoiseAndScale capability (it works in Y units)."""

    @property
    def noise(self) -> Tensor:
        """(P,) noise variance; with ``y_std = 1`` standardised units are Y units."""
        return torch.full_like(self._m.squeeze(-1), self._noise_var)

    @property
    def y_std(self) -> Tensor:
        """(P,) ones."""
        return torch.ones_like(self._m.squeeze(-1))
