"""Training helpers of the batched SVGP (:mod:`gpbo.models.variational`).

- :func:`subset_theta`: hyperparameters by exact-GP MAP on a random subset.
- :func:`kmeans_pp`: k-means++ seeding of the inducing points, batched over P.
- :func:`train_elbo`: minibatch Adam on the ELBO over the inducing points and
  the whitened variational distribution, in chunks of ``_CHECK_EVERY`` steps;
  a chunk whose loss or parameters turn non-finite (or that raises, e.g.
  GPyTorch's ``NotPSDError``) is undone and the step size halved, and after
  ``_MAX_RETRIES`` failures the last good state is kept with a warning.
"""

from __future__ import annotations

import warnings

import gpytorch
import torch
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.models import ApproximateGP
from torch import Tensor

from gpbo.models.exact import ExactGP

_SUBSET = 512  # points of the exact-GP fit that sets the hyperparameters
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
    d2 = (X - X.gather(1, idx[..., None].expand(P, 1, d))).pow(2).sum(-1)  # (P, n)
    for m in range(1, M):
        cdf = d2.cumsum(-1)  # (P, n)
        idx = torch.searchsorted(cdf, u[m] * cdf[:, -1:]).clamp(max=n - 1)  # (P, 1)
        chosen.append(idx)
        new = X.gather(1, idx[..., None].expand(P, 1, d))  # (P, 1, d)
        d2 = torch.minimum(d2, (X - new).pow(2).sum(-1))
    idx = torch.cat(chosen, dim=-1)  # (P, M)
    return X.gather(1, idx[..., None].expand(P, M, d))


def subset_theta(
    X: Tensor, Y: Tensor, categorical: tuple[int, ...], noise: str, warm_start: object,
    gen: torch.Generator,
) -> Tensor:
    """(P, d + 1) MAP hyperparameters of an exact GP on a random subset of the data.

    The subset indices (at most ``_SUBSET``) are shared by the P problems; the
    fit starts from ``warm_start``'s ``theta`` when it has a compatible one.
    """
    idx = torch.randperm(X.shape[-2], generator=gen, device=X.device)[:_SUBSET]
    theta = getattr(warm_start, "theta", warm_start)
    theta = theta if isinstance(theta, Tensor) else None
    return ExactGP.fit(
        X[:, idx], Y[:, idx], categorical=categorical, noise=noise, warm_start=theta
    ).theta


def train_elbo(
    module: ApproximateGP, likelihood: GaussianLikelihood, X: Tensor, Y: Tensor, *,
    gen: torch.Generator, steps: int, batch_size: int, lr: float,
) -> None:
    """Maximise the ELBO over ``Z`` and ``q`` in chunks, undoing chunks that diverge.

    Args:
        X: (P, n, d); Y: (P, n) standardised. The other arguments as in :meth:`SVGP.fit`.
    """
    module.train(), likelihood.train()
    mll = gpytorch.mlls.VariationalELBO(likelihood, module, num_data=X.shape[-2])
    params = [module.variational_strategy.inducing_points, *module.variational_parameters()]
    good, done, failures = _snapshot(module, likelihood), 0, 0
    optimiser = torch.optim.Adam(params, lr=lr)
    while done < steps:
        chunk = min(_CHECK_EVERY, steps - done)
        if _run_chunk(module, likelihood, mll, X, Y, optimiser, gen, chunk, batch_size):
            good, done = _snapshot(module, likelihood), done + chunk
            continue
        failures += 1
        module.load_state_dict(good[0]), likelihood.load_state_dict(good[1])
        if failures > _MAX_RETRIES:
            warnings.warn(
                f"gpbo: SVGP training diverged {failures} times; keeping the state after "
                f"{done} of {steps} steps", RuntimeWarning, stacklevel=3,
            )
            return
        lr /= 2
        optimiser = torch.optim.Adam(params, lr=lr)


def _run_chunk(
    module: ApproximateGP, likelihood: GaussianLikelihood, mll: gpytorch.mlls.VariationalELBO,
    X: Tensor, Y: Tensor, optimiser: torch.optim.Optimizer, gen: torch.Generator, n_steps: int, batch_size: int,
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
            loss = -mll(module(Xb), Yb)  # (P,)
            optimiser.zero_grad()
            loss.sum().backward()
            optimiser.step()
    except RuntimeError:  # includes GPyTorch's NotPSDError
        return False
    params = [p for p in module.parameters()] + [p for p in likelihood.parameters()]
    return bool(loss.isfinite().all()) and all(bool(p.isfinite().all()) for p in params)


def _snapshot(module: ApproximateGP, likelihood: GaussianLikelihood) -> tuple[dict, dict]:
    copy = lambda sd: {k: v.detach().clone() for k, v in sd.items()}
    return copy(module.state_dict()), copy(likelihood.state_dict())
