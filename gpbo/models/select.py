"""Choice of surrogate by data size: exact GP below a threshold, SVGP above.

``model="auto"`` uses the exact GP while ``n <= SVGP_THRESHOLD`` and the
SVGP above.

The threshold is the measured latency crossover, moved up because the exact
GP is the (slightly) better model: up to n = 2048 the SVGP uses M = n
inducing points, but its hyperparameters come from a 1024-point subset
(docs/decisions/0005-svgp-threshold.md).
"""

from __future__ import annotations

from torch import Tensor

from gpbo.errors import InvalidArgumentError
from gpbo.models.exact import ExactGP
from gpbo.models.kernel import Kernel
from gpbo.models.variational import SVGP

MODELS = ("auto", "exact", "svgp")
SVGP_THRESHOLD = 1500  # measured crossover, see the module docstring


def choose_model(model: str, n: int) -> str:
    """``"exact"`` or ``"svgp"`` for ``model`` in :data:`MODELS` and n observations."""
    if model not in MODELS:
        raise InvalidArgumentError(f"model must be one of {MODELS}, got {model!r}")
    if model == "auto":
        return "svgp" if n > SVGP_THRESHOLD else "exact"
    return model


def fit_surrogate(
    X: Tensor,
    Y: Tensor,
    *,
    model: str = "auto",
    categorical: tuple[int, ...] = (),
    kernel: str | Kernel = "matern52",
    noise: str = "learned",
    prior_mean: str = "worst",
    warm_start: object = None,
    seed: int = 0,
    svgp_adam_steps: int = 0,
    solver_path: str = "auto",
) -> ExactGP | SVGP:
    """Fit the surrogate chosen by :func:`choose_model` for X (P, n, d), Y (P, n).

    Args:
        X: (P, n, d) inputs in [0, 1]^d; Y: (P, n) finite outcomes.
        model: ``"auto"``, ``"exact"`` or ``"svgp"`` (:data:`MODELS`).
        categorical: encoded dims with the indicator distance.
        kernel: a name in :data:`gpbo.models.kernel.KERNELS` or a kernel object.
        noise: ``"learned"`` or ``"deterministic"``.
        prior_mean: ``"worst"`` or ``"average"`` observation (:mod:`gpbo.models.standardise`).
        warm_start: either model or a ``theta`` tensor (P, d + 1); an exact
            fit uses its hyperparameters, an SVGP fit also its variational state.
        seed: seed of the SVGP's random draws.
        svgp_adam_steps: minibatch Adam steps of an SVGP fit (``SVGP.fit(steps=...)``);
            unused by the exact GP.
        solver_path: the MAP fit's L-BFGS-B path (:data:`gpbo.models.exact.SOLVER_PATHS`).

    Raises:
        InvalidArgumentError: for an unknown option.
        FitError: if the fit cannot be recovered.
    """
    if choose_model(model, X.shape[-2]) == "svgp":
        return SVGP.fit(
            X, Y, categorical=categorical, kernel=kernel, noise=noise, prior_mean=prior_mean,
            warm_start=warm_start, seed=seed, steps=svgp_adam_steps, solver_path=solver_path,
        )
    theta = getattr(warm_start, "theta", warm_start)
    return ExactGP.fit(
        X, Y, categorical=categorical, kernel=kernel, noise=noise, prior_mean=prior_mean,
        warm_start=theta, solver_path=solver_path,
    )
