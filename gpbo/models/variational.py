"""Batched sparse variational GP (SVGP) surrogate over P independent problems.

Model (per problem, on standardised outcomes, as :mod:`gpbo.models.exact`):
``y = f(x) + eps``, ``f ~ GP(0, k)`` with the same ARD kernel held by the
model (:mod:`gpbo.models.kernel`, Matérn-5/2 by default, unit outputscale),
the same BoTorch priors on lengthscales and noise, and the same per-problem
standardisation (:mod:`gpbo.models.standardise`). The
posterior is approximated with M inducing points ``Z`` per problem and a
whitened Gaussian ``q(u_w) = N(m, S)``, ``u = L u_w`` with ``L L^T = K_ZZ``
(Hensman et al. 2013), built on GPyTorch's ``ApproximateGP`` and
``VariationalStrategy`` with ``batch_shape = (P,)``.

Training, chosen by measurement (docs/decisions/0005-svgp-threshold.md):

1. Hyperparameters: MAP of the exact GP (:class:`ExactGP`, same priors) on a
   random subset of 1024 points, warm-started from the previous
   hyperparameters. Learning them on the minibatch ELBO instead inflated the
   lengthscales and noise and worsened held-out NLL (a known bias of the
   SVGP bound when M < n); a 512-point subset gave a worse NLL at n = 5000.
2. ``Z``: a k-means++ seeding of the data (shared uniforms, so a batched fit
   equals a loop of fits), M = 2048 per problem (capped at n).
3. ``q`` is set to its optimum on all data (Titsias 2009: one full-batch
   natural-gradient step of size 1, exact for the Gaussian likelihood).

By default no gradient steps are taken: at equal time, more inducing points
with the closed-form ``q`` fitted better than fewer trained ones
(docs/decisions/0005-svgp-threshold.md; an Adam step costs an
O(M^3) Cholesky of K_ZZ, so training and a large M do not fit together on a
CPU). ``steps > 0`` still trains ``Z`` and ``q`` on the ELBO with minibatch
Adam (gpbo's whitened ELBO,
:func:`~gpbo.models.variational_train.whitened_elbo`, tested equal to
GPyTorch's ``VariationalELBO``) before step 3, for small M.

A warm start reuses the previous hyperparameters as the start of their fit.
With ``steps > 0`` it also keeps the previous ``Z`` and ``q`` (mapped to the
new standardisation) and runs a quarter of the steps; without steps ``Z`` is
re-seeded, so that it covers the newest points (where a BO run samples
next). A chunk of steps whose loss or parameters turn non-finite is undone,
the step size halved, and after three failures the last good state is kept
with a warning.

After training the posterior is evaluated on cached factors (no GPyTorch
dispatch): ``mean = k_xZ a``, ``cov = k_xx - k_xZ C k_Zx`` with
``a = L^-T m`` and ``C = L^-T (I - S) L^-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from gpytorch.constraints import GreaterThan
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import Kernel as GPyTorchKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.models import ApproximateGP
from gpytorch.variational import CholeskyVariationalDistribution, VariationalStrategy
from torch import Tensor

from gpbo.errors import InvalidArgumentError
from gpbo.models.base import NOISE_FLOOR, StationaryGP, check_noise
from gpbo.models.kernel import Kernel, get_kernel, kernel_matrix
from gpbo.models.marginal import GPPriors
from gpbo.models.per_problem import per_problem_matmul
from gpbo.models.protocol import Posterior, psd_cholesky
from gpbo.models.standardise import standardise
from gpbo.models.variational_train import DEFAULT_SUBSET, kmeans_pp, subset_theta, train_elbo

__all__ = ["DEFAULT_INDUCING", "SVGP"]

DEFAULT_INDUCING = 2048
_BATCH = 256
_STEPS = 0  # see the module docstring
_CHUNK = 1024  # rows of X per block when computing the optimal q (its kernel block stays in cache: 0.88x the fit of 4096)
_GRAM_BLOCKS = 4  # column blocks of K_XZ in the symmetric product K_ZX K_XZ (8: 0.58x of a GEMM, 4: 0.62x)


class _GPyTorchKernel(GPyTorchKernel):
    """GPyTorch wrapper of :func:`gpbo.models.kernel.kernel_matrix` with a given kernel, batch (P,)."""

    has_lengthscale = True

    def __init__(self, P: int, d: int, categorical: tuple[int, ...], min_lengthscale: float, base_kernel: Kernel) -> None:
        super().__init__(
            ard_num_dims=d, batch_shape=torch.Size([P]),
            lengthscale_constraint=GreaterThan(min_lengthscale),
        )
        self.categorical = categorical
        self.base_kernel = base_kernel

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        if diag:  # unit outputscale: k(x, x) = 1
            return torch.ones(x1.shape[:-1], dtype=x1.dtype, device=x1.device)
        return kernel_matrix(x1, x2, self.lengthscale.squeeze(-2), self.categorical, self.base_kernel)


class _Module(ApproximateGP):
    """Zero-mean batched SVGP with whitened inducing values."""

    def __init__(self, Z: Tensor, kernel: _GPyTorchKernel) -> None:
        P, M, _ = Z.shape
        dist = CholeskyVariationalDistribution(M, batch_shape=torch.Size([P]), mean_init_std=0.0)
        super().__init__(VariationalStrategy(self, Z, dist, learn_inducing_locations=True))
        self.covar_module = kernel

    def forward(self, x: Tensor) -> MultivariateNormal:
        zero = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        return MultivariateNormal(zero, self.covar_module(x))


@dataclass(frozen=True)
class SVGP(StationaryGP):
    """A fitted batched SVGP. Build it with :meth:`fit`.

    Attributes:
        X_train, Y_train, y_mean, y_std, lengthscale, noise, outputscale,
            categorical, base_kernel: as in :class:`gpbo.models.base.StationaryGP`.
        inducing_points: (P, M, d) learned ``Z``.
        q_mean: (P, M), q_covar: (P, M, M) whitened ``q(u_w)``.
        chol_inv: (P, M, M) inverse Cholesky factor of ``K_ZZ``.
        alpha: (P, M) ``L^-T m``; c_matrix: (P, M, M) ``L^-T (I - S) L^-1``.
        extra_noise: (P, k) their noise variances.
        extra_X: (P, k, d), extra_Y: (P, k) standardised observations added by
            :meth:`condition` (exact Gaussian conditioning of the SVGP
            posterior); k = 0 after a fit.
    """

    inducing_points: Tensor
    q_mean: Tensor
    q_covar: Tensor
    chol_inv: Tensor
    alpha: Tensor
    c_matrix: Tensor
    extra_X: Tensor
    extra_Y: Tensor
    extra_noise: Tensor

    @classmethod
    def fit(
        cls,
        X: Tensor,
        Y: Tensor,
        *,
        categorical: tuple[int, ...] = (),
        kernel: str | Kernel = "matern52",
        noise: str = "learned",
        prior_mean: str = "worst",
        warm_start: object = None,
        num_inducing: int = DEFAULT_INDUCING,
        steps: int = _STEPS,
        batch_size: int = _BATCH,
        lr: float = 0.01,
        seed: int = 0,
        hyper_subset: int = DEFAULT_SUBSET,
        solver_path: str = "auto",
    ) -> SVGP:
        """Train the SVGP and cache the posterior factors.

        Args:
            X: (P, n, d) inputs in [0, 1]^d; Y: (P, n) finite outcomes.
            categorical: encoded dims with the indicator distance.
            kernel: a name in :data:`gpbo.models.kernel.KERNELS` or a kernel object.
            noise: ``"learned"`` or ``"deterministic"`` (fixed near the floor).
            prior_mean: ``"worst"`` or ``"average"`` observation (:mod:`gpbo.models.standardise`).
            warm_start: any model with ``theta`` (P, d + 1), or such a
                tensor: the start of the hyperparameter fit; with
                ``steps > 0``, a previous :class:`SVGP` of the same P, M and
                d also lends its inducing points and ``q``, and
                ``steps // 4`` steps run.
            num_inducing: M, capped at n.
            steps: Adam steps on ``Z`` and ``q`` from a cold start (default 0);
                batch_size: minibatch size.
            lr: Adam step size.
            seed: seed of the k-means++ draws and the minibatches.
            hyper_subset: points of the exact-GP fit that sets the hyperparameters.
            solver_path: the L-BFGS-B path of that fit (:data:`gpbo.models.exact.SOLVER_PATHS`).

        Raises:
            InvalidArgumentError: on bad shapes, non-finite data or options.
            FitError: if the hyperparameter fit cannot be recovered.
        """
        _check_fit_inputs(X, Y, noise, num_inducing, steps, batch_size, hyper_subset)
        base_kernel = get_kernel(kernel)
        Y_std, y_mean, y_std = standardise(Y, prior_mean)
        P, n, d = X.shape
        M = min(num_inducing, n)
        prev = warm_start if steps and _compatible(warm_start, P, M, d) else None
        gen = torch.Generator(device=X.device).manual_seed(seed)
        theta = subset_theta(
            X, Y, categorical, noise, warm_start, gen, hyper_subset,
            kernel=base_kernel, prior_mean=prior_mean, solver_path=solver_path,
        )
        Z = prev.inducing_points if prev is not None else kmeans_pp(X, M, gen)
        module, likelihood = _build_modules(Z, theta, categorical, base_kernel)
        if prev is not None:
            _load_q(module, prev.rescaled_q(y_mean, y_std))
            steps = steps // 4
        if steps:
            train_elbo(module, X, Y_std, noise=likelihood.noise.detach().squeeze(-1), categorical=categorical,
                       kernel=base_kernel, gen=gen, steps=steps, batch_size=batch_size, lr=lr)
        return _cache(module, likelihood, X, Y_std, y_mean, y_std, categorical)

    def posterior(self, X: Tensor) -> Posterior:
        """Joint posterior of the latent f at ``X`` (..., P, q, d), in Y units."""
        mean, cov = self._latent(X) if self.extra_X.shape[-2] == 0 else self._conditioned(X)
        return Posterior.from_standardised(mean, cov, self.y_mean, self.y_std)

    def posterior_mean(self, X: Tensor) -> Tensor:
        """(..., P, q) posterior mean at ``X`` (..., P, q, d), in Y units, at O(M) a point
        where `posterior` costs O(M^2) (the `gpbo.models.protocol.MeanOnly` capability)."""
        if self.extra_X.shape[-2]:
            return self.posterior(X).mean
        return self.in_y_units((self.kernel(X, self.inducing_points) @ self.alpha.unsqueeze(-1)).squeeze(-1))

    def condition(self, X: Tensor, Y: Tensor, *, noiseless: bool = False) -> SVGP:
        """Add observations (P, k, d), (P, k) in Y units, keeping everything else.

        ``noiseless=True`` gives them the noise floor (kriging-believer fantasies).
        """
        Y_std = self.standardised(Y)
        noise = self.new_point_noise(Y_std, noiseless)
        return replace(
            self,
            extra_X=torch.cat([self.extra_X, X], dim=-2),
            extra_Y=torch.cat([self.extra_Y, Y_std], dim=-1),
            extra_noise=torch.cat([self.extra_noise, noise], dim=-1),
        )

    @property
    def pathwise_basis(self) -> Tensor:
        """(P, M, d) points whose kernel columns carry a posterior sample path."""
        return self.inducing_points

    def pathwise_weights(self, prior_at_basis: Tensor, eps: Tensor) -> Tensor:
        """Matheron update of prior paths ``g`` (Wilson et al. 2020, SVGP form).

        ``f = g + k(., Z) v`` with ``v = L^-T (u_w - L^-1 g(Z))``,
        ``u_w = m + chol(S) eps``. Observations added by :meth:`condition`
        are not part of the paths.

        Args:
            prior_at_basis: (P, s, M) prior path values at ``Z``.
            eps: (s, M) standard normals.

        Returns:
            (P, s, M) weights ``v``.
        """
        u_w = self.q_mean.unsqueeze(-2) + eps @ psd_cholesky(self.q_covar).transpose(-1, -2)
        return (u_w - prior_at_basis @ self.chol_inv.transpose(-1, -2)) @ self.chol_inv

    def rescaled_q(self, y_mean: Tensor, y_std: Tensor) -> tuple[Tensor, Tensor]:
        """Whitened ``q`` (P, M), (P, M, M) expressed in a new standardisation."""
        r = self.y_std / y_std  # (P,)
        shift = (self.y_mean - y_mean) / y_std  # (P,)
        ones_w = self.chol_inv.sum(-1)  # (P, M): L^-1 1
        mean = self.q_mean * r.unsqueeze(-1) + shift.unsqueeze(-1) * ones_w
        return mean, self.q_covar * r.pow(2)[:, None, None]

    def _latent(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised SVGP posterior at X (..., P, q, d): (..., P, q), (..., P, q, q)."""
        k_xz = self.kernel(X, self.inducing_points)  # (..., P, q, M)
        mean = (k_xz @ self.alpha.unsqueeze(-1)).squeeze(-1)  # (..., P, q)
        cov = self.kernel(X, X) - per_problem_matmul(k_xz, self.c_matrix) @ k_xz.transpose(-1, -2)  # (..., P, q, q)
        cov = 0.5 * (cov + cov.transpose(-1, -2))  # exact symmetry, also in float32
        return mean, cov

    def _conditioned(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior at X (..., P, q, d) conditioned on ``extra_X``, ``extra_Y``."""
        q = X.shape[-2]
        Xe = self.extra_X.expand(X.shape[:-2] + self.extra_X.shape[-2:])  # (..., P, k, d)
        mean, cov = self._latent(torch.cat([X, Xe], dim=-2))  # (..., P, q+k), (..., P, q+k, q+k)
        L = psd_cholesky(cov[..., q:, q:] + torch.diag_embed(self.extra_noise))  # (..., P, k, k)
        A = torch.linalg.solve_triangular(L, cov[..., q:, :q], upper=False)  # (..., P, k, q)
        r = torch.linalg.solve_triangular(
            L, (self.extra_Y - mean[..., q:]).unsqueeze(-1), upper=False
        )  # (..., P, k, 1)
        mean = mean[..., :q] + (A.transpose(-1, -2) @ r).squeeze(-1)
        return mean, cov[..., :q, :q] - A.transpose(-1, -2) @ A


def _compatible(prev: object, P: int, M: int, d: int) -> bool:
    return isinstance(prev, SVGP) and prev.inducing_points.shape == (P, M, d)


def _build_modules(
    Z: Tensor, theta: Tensor, categorical: tuple[int, ...], base_kernel: Kernel
) -> tuple[_Module, GaussianLikelihood]:
    """GPyTorch modules at ``theta`` (P, d + 1) with inducing points ``Z`` (P, M, d)."""
    P, _, d = Z.shape
    priors = GPPriors.for_dim(d, Z)
    kernel = _GPyTorchKernel(P, d, categorical, priors.min_lengthscale, base_kernel)
    module = _Module(Z.detach().clone(), kernel).to(Z)
    floor = NOISE_FLOOR[Z.dtype]
    likelihood = GaussianLikelihood(
        batch_shape=torch.Size([P]), noise_constraint=GreaterThan(floor)
    ).to(Z)
    kernel.lengthscale = theta[..., :-1].exp().clamp_min(priors.min_lengthscale * 1.001).unsqueeze(-2)
    likelihood.noise = theta[..., -1].exp().clamp_min(floor * 1.001).unsqueeze(-1)
    return module, likelihood


def _load_q(module: _Module, q: tuple[Tensor, Tensor]) -> None:
    """Set the whitened variational distribution to N(mean, covar)."""
    strategy = module.variational_strategy
    strategy._variational_distribution.initialize_variational_distribution(MultivariateNormal(*q))
    strategy.variational_params_initialized.fill_(1)


@torch.no_grad()
def _cache(
    module: _Module, likelihood: GaussianLikelihood, X: Tensor, Y_std: Tensor,
    y_mean: Tensor, y_std: Tensor, categorical: tuple[int, ...],
) -> SVGP:
    """Read the trained hyperparameters and ``Z``; set ``q`` to its optimum on all data.

    The optimal whitened ``q`` for a Gaussian likelihood (Titsias 2009) is one
    full-batch natural-gradient step of size 1: with ``A = K_XZ L^-T``,
    ``S = (I + A^T A / noise)^-1`` and ``m = S A^T y / noise``. ``A^T A`` is
    computed as ``L^-1 (K_ZX K_XZ) L^-T``: one O(n M^2) product accumulated
    over chunks of X instead of two (half the time of the fit at n = 20,000).
    Products with ``L^-1`` are triangular solves where a GEMM would do twice
    the work.
    """
    strategy = module.variational_strategy
    base_kernel = module.covar_module.base_kernel
    Z = strategy.inducing_points.detach().clone()  # (P, M, d)
    ls = module.covar_module.lengthscale.detach().squeeze(-2)  # (P, d)
    noise = likelihood.noise.detach().squeeze(-1)  # (P,)
    eye = torch.eye(Z.shape[-2], dtype=Z.dtype, device=Z.device)
    K = kernel_matrix(Z, Z, ls, categorical, base_kernel) + strategy.jitter_val * eye  # (P, M, M)
    L = psd_cholesky(K)
    chol_inv = torch.linalg.solve_triangular(L, eye, upper=False)
    gram, kzy = torch.zeros_like(K), torch.zeros_like(Z[..., 0])  # K_ZX K_XZ (P, M, M), K_ZX y (P, M)
    for start in range(0, X.shape[-2], _CHUNK):
        k_xz = kernel_matrix(X[:, start:start + _CHUNK], Z, ls, categorical, base_kernel)  # (P, c, M)
        _add_upper_gram(gram, k_xz)
        kzy += (k_xz.transpose(-1, -2) @ Y_std[:, start:start + _CHUNK].unsqueeze(-1)).squeeze(-1)
    gram = gram.triu() + gram.triu(1).transpose(-1, -2)  # the lower triangle from the upper one
    ata = torch.linalg.solve_triangular(  # A^T A = L^-1 gram L^-T (gram symmetric)
        L, torch.linalg.solve_triangular(L, gram, upper=False).transpose(-1, -2), upper=False)
    precision = eye + 0.5 * (ata + ata.transpose(-1, -2)) / noise[:, None, None]  # (P, M, M)
    b = (chol_inv @ kzy.unsqueeze(-1)).squeeze(-1) / noise[:, None]  # A^T y / noise (P, M)
    q_covar = torch.cholesky_inverse(psd_cholesky(precision))  # (P, M, M)
    q_mean = (q_covar @ b.unsqueeze(-1)).squeeze(-1)  # (P, M)
    return SVGP(
        X_train=X, Y_train=Y_std, y_mean=y_mean, y_std=y_std, lengthscale=ls, noise=noise,
        outputscale=torch.ones_like(noise), categorical=categorical, base_kernel=base_kernel, inducing_points=Z,
        q_mean=q_mean, q_covar=q_covar, chol_inv=chol_inv,
        alpha=(chol_inv.transpose(-1, -2) @ q_mean.unsqueeze(-1)).squeeze(-1),
        c_matrix=_sandwich(L, eye - q_covar), extra_X=X[:, :0], extra_Y=Y_std[:, :0], extra_noise=Y_std[:, :0],
    )


def _add_upper_gram(gram: Tensor, k: Tensor, blocks: int = _GRAM_BLOCKS) -> None:
    """``gram += k^T k`` (k (P, c, M)) on the block upper triangle only, in place.

    The symmetric product needs only the diagonal blocks and the ones above
    them: 10 of 16 products of a (c, M/4) by a (c, M/4) block, about 0.62x
    the time of the full GEMM at M = 2048. The caller mirrors the upper
    triangle once at the end.
    """
    M = k.shape[-1]
    edges = [M * i // blocks for i in range(blocks + 1)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        gram[..., lo:hi, lo:] += k[..., lo:hi].transpose(-1, -2) @ k[..., lo:]


def _sandwich(L: Tensor, B: Tensor) -> Tensor:
    """``L^-T B L^-1`` for lower-triangular L and B (P, M, M), by two triangular solves."""
    left = torch.linalg.solve_triangular(L.transpose(-1, -2), B, upper=True)  # L^-T B
    return torch.linalg.solve_triangular(L.transpose(-1, -2), left.transpose(-1, -2), upper=True).transpose(-1, -2)


def _check_fit_inputs(
    X: Tensor, Y: Tensor, noise: str, num_inducing: int, steps: int, batch_size: int, hyper_subset: int
) -> None:
    """Raise InvalidArgumentError on bad SVGP.fit arguments."""
    if not isinstance(X, Tensor) or X.dim() != 3 or X.dtype not in NOISE_FLOOR or 0 in X.shape:
        raise InvalidArgumentError(
            f"SVGP.fit: X must be a float32/float64 tensor of shape (P, n, d) with P, n, d >= 1, "
            f"got {getattr(X, 'dtype', type(X).__name__)} {tuple(getattr(X, 'shape', ()))}"
        )
    if not isinstance(Y, Tensor) or Y.shape != X.shape[:2] or Y.dtype != X.dtype:
        raise InvalidArgumentError(
            f"SVGP.fit: Y must be a {X.dtype} tensor of shape {tuple(X.shape[:2])}, "
            f"got {getattr(Y, 'dtype', type(Y).__name__)} {tuple(getattr(Y, 'shape', ()))}"
        )
    for name, t in (("X", X), ("Y", Y)):
        bad = ~t.isfinite()
        if bool(bad.any()):
            raise InvalidArgumentError(
                f"SVGP.fit: {name} must be finite, got {int(bad.sum())} NaN/inf entries "
                f"(first at index {tuple(bad.nonzero()[0].tolist())})"
            )
    check_noise("SVGP.fit", noise)
    options = (("num_inducing", num_inducing, 1), ("steps", steps, 0), ("batch_size", batch_size, 1),
               ("hyper_subset", hyper_subset, 2))
    for name, value, low in options:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidArgumentError(f"SVGP.fit: {name} must be an int >= {low}, got {value!r}")
