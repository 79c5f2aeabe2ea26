"""Training helpers of the batched SVGP (:mod:`gpbo.models.variational`).

- :func:`subset_theta`: hyperparameters by exact-GP MAP on a random subset.
- :func:`kmeans_pp`: k-means++ seeding of the inducing points, batched over P.
- :func:`whitened_elbo`: the minibatch ELBO computed directly on the
  module's parameters with gpbo's kernel.
- :func:`train_elbo`: minibatch Adam on that ELBO over the inducing points and
  the whitened variational distribution, in chunks of ``_CHECK_EVERY`` steps;
  a chunk whose loss or parameters turn non-finite (or that raises, e.g. a
  failed Cholesky of ``K_ZZ``) is undone and the step size halved, and after
  ``_MAX_RETRIES`` failures the last good state is kept with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from gpytorch.models import ApproximateGP
from torch import Tensor

from gpbo.models.exact import ExactGP
from gpbo.models.kernel import MATERN52, Kernel, kernel_matrix

DEFAULT_SUBSET = 1024  # points of the exact-GP fit that sets the hyperparameters
_CHECK_EVERY = 50
_MAX_RETRIES = 3


def kmeans_pp(X: Tensor, M: int, generator: torch.Generator) -> Tensor:
    """k-means++ seeding (D^2 sampling), batched over problems.

    The M uniforms are drawn once and shared by the P problems, so a batched
    call equals a loop over problems.

    Args:
        X: (P, n, d) points; M: number of seeds (<= n).
        generator: source of the uniforms (device of X).

    Returns:
        (P, M, d) seeds, rows of X.
    """
    P, n, d = X.shape
    u = torch.rand(M, generator=generator, dtype=X.dtype, device=X.device)
    idx = (u[0] * n).long().clamp(max=n - 1).expand(P, 1)  # (P, 1)
    chosen = [idx]
    sq = X.pow(2).sum(-1)  # (P, n)
    d2 = _sq_dist(X, sq, idx)  # (P, n)
    for m in range(1, M):
        cdf = d2.cumsum(-1)  # (P, n)
        idx = torch.searchsorted(cdf, u[m] * cdf[:, -1:]).clamp(max=n - 1)  # (P, 1)
        chosen.append(idx)
        torch.minimum(d2, _sq_dist(X, sq, idx), out=d2)
    idx = torch.cat(chosen, dim=-1)  # (P, M)
    return X.gather(1, idx[..., None].expand(P, M, d))


def _sq_dist(X: Tensor, sq: Tensor, idx: Tensor) -> Tensor:
    """Squared distances (P, n) from X (P, n, d) to its rows ``idx`` (P, 1).

    As ``|x|^2 - 2 x.c + |c|^2``: no (P, n, d) temporary per step, which at
    n = 100,000 and M = 2048 steps fragmented the heap.
    """
    centre = X.gather(1, idx[..., None].expand(-1, 1, X.shape[-1]))  # (P, 1, d)
    cross = (X @ centre.transpose(-1, -2)).squeeze(-1)  # (P, n)
    return (sq - 2 * cross + sq.gather(1, idx)).clamp_min(0)


def subset_theta(
    X: Tensor, Y: Tensor, categorical: tuple[int, ...], noise: str, warm_start: object,
    gen: torch.Generator, size: int = DEFAULT_SUBSET, *, kernel: Kernel = MATERN52,
    prior_mean: str = "worst", solver_path: str = "auto",
) -> Tensor:
    """(P, d + 1) MAP hyperparameters of an exact GP on a random subset of the data.

    The subset indices (at most ``size``) are shared by the P problems; the
    fit starts from ``warm_start``'s ``theta`` when it has a compatible one.
    ``kernel``, ``prior_mean`` and ``solver_path`` are passed to :meth:`ExactGP.fit`.
    """
    idx = torch.randperm(X.shape[-2], generator=gen, device=X.device)[:size]
    theta = getattr(warm_start, "theta", warm_start)
    theta = theta if isinstance(theta, Tensor) else None
    return ExactGP.fit(
        X[:, idx], Y[:, idx], categorical=categorical, kernel=kernel, noise=noise, prior_mean=prior_mean,
        warm_start=theta, solver_path=solver_path,
    ).theta


def whitened_elbo(
    Z: Tensor, m: Tensor, chol_S: Tensor, X: Tensor, Y: Tensor, *,
    lengthscale: Tensor, noise: Tensor, categorical: tuple[int, ...], jitter: float, num_data: int,
    kernel: Kernel = MATERN52,
) -> Tensor:
    """Minibatch ELBO per data point of the whitened SVGP, one value per problem.

    ``mean(E_q[log N(y | f, noise)]) - KL(q(u_w) || N(0, I)) / num_data`` with
    ``q(u_w) = N(m, S)``, ``S = chol_S chol_S^T``; it equals GPyTorch's
    ``VariationalELBO`` of the module (tested) at a fraction of the cost.

    Args:
        Z: (P, M, d) inducing points; m: (P, M); chol_S: (P, M, M), its lower
            triangle is used.
        X: (P, b, d), Y: (P, b) standardised minibatch.
        lengthscale: (P, d); noise: (P,); jitter: added to the diagonal of K_ZZ.
        kernel: the model's correlation of the squared scaled distance.

    Returns:
        (P,) ELBO values.
    """
    M = Z.shape[-2]
    eye = torch.eye(M, dtype=Z.dtype, device=Z.device)
    L = torch.linalg.cholesky(kernel_matrix(Z, Z, lengthscale, categorical, kernel) + jitter * eye)  # (P, M, M)
    A = torch.linalg.solve_triangular(L, kernel_matrix(Z, X, lengthscale, categorical, kernel), upper=False)  # (P, M, b)
    chol_S = chol_S.tril()
    mean = (A * m.unsqueeze(-1)).sum(-2)  # (P, b)
    var = 1.0 - A.pow(2).sum(-2) + (chol_S.transpose(-1, -2) @ A).pow(2).sum(-2)  # (P, b)
    noise = noise.unsqueeze(-1)  # (P, 1)
    exp_ll = -0.5 * (torch.log(2 * math.pi * noise) + ((Y - mean).pow(2) + var) / noise)  # (P, b)
    log_det_S = 2.0 * chol_S.diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)  # (P,)
    kl = 0.5 * (chol_S.pow(2).sum((-1, -2)) + m.pow(2).sum(-1) - M - log_det_S)  # (P,)
    return exp_ll.mean(-1) - kl / num_data


def train_elbo(
    module: ApproximateGP, X: Tensor, Y: Tensor, *, noise: Tensor, categorical: tuple[int, ...],
    kernel: Kernel, gen: torch.Generator, steps: int, batch_size: int, lr: float,
) -> None:
    """Maximise the ELBO over ``Z`` and ``q`` in chunks, undoing chunks that diverge.

    The kernel hyperparameters and ``noise`` (P,) stay fixed. The loss is
    :func:`whitened_elbo` on the module's parameters (no GPyTorch dispatch).

    Args:
        X: (P, n, d); Y: (P, n) standardised. The other arguments as in :meth:`SVGP.fit`.
    """
    strategy = module.variational_strategy
    dist = strategy._variational_distribution
    params = [strategy.inducing_points, dist.variational_mean, dist.chol_variational_covar]
    lengthscale = module.covar_module.lengthscale.detach().squeeze(-2)  # (P, d)

    def loss(Xb: Tensor, Yb: Tensor) -> Tensor:  # (P,)
        return -whitened_elbo(*params, Xb, Yb, lengthscale=lengthscale, noise=noise,
                              categorical=categorical, jitter=strategy.jitter_val, num_data=X.shape[-2],
                              kernel=kernel)

    good, done, failures = _snapshot(params), 0, 0
    optimiser = torch.optim.Adam(params, lr=lr)
    while done < steps:
        chunk = min(_CHECK_EVERY, steps - done)
        if _run_chunk(loss, params, X, Y, optimiser, gen, chunk, batch_size):
            good, done = _snapshot(params), done + chunk
            continue
        failures += 1
        with torch.no_grad():
            for p, g in zip(params, good):
                p.copy_(g)
        if failures > _MAX_RETRIES:
            warnings.warn(
                f"gpbo: SVGP training diverged {failures} times; keeping the state after "
                f"{done} of {steps} steps", RuntimeWarning, stacklevel=3,
            )
            return
        lr /= 2
        optimiser = torch.optim.Adam(params, lr=lr)


def _run_chunk(
    loss: Callable[[Tensor, Tensor], Tensor], params: list[Tensor], X: Tensor, Y: Tensor,
    optimiser: torch.optim.Optimizer, gen: torch.Generator, n_steps: int, batch_size: int,
) -> bool:
    """Run ``n_steps`` minibatch steps; False if they fail or leave non-finite values.

    Minibatch indices are shared by the P problems (no P dim in the draws).
    """
    n = X.shape[-2]
    try:
        for _ in range(n_steps):
            Xb, Yb = X, Y
            if n > batch_size:
                idx = torch.randint(n, (batch_size,), generator=gen, device=X.device)
                Xb, Yb = X[:, idx], Y[:, idx]  # (P, b, d), (P, b)
            value = loss(Xb, Yb)  # (P,)
            optimiser.zero_grad()
            value.sum().backward()
            optimiser.step()
    except RuntimeError:  # includes a failed Cholesky of K_ZZ
        return False
    return bool(value.isfinite().all()) and all(bool(p.isfinite().all()) for p in params)


def _snapshot(params: list[Tensor]) -> list[Tensor]:
    return [p.detach().clone() for p in params]
