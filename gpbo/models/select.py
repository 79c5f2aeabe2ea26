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
    X: Tensor, Y: Tensor, *, model: str = "auto", categorical: tuple[int, ...] = (),
    noise: str = "learned", warm_start: object = None, seed: int = 0,
) -> ExactGP | SVGP:
    """Fit the surrogate chosen by :func:`choose_model` for X (P, n, d), Y (P, n).

    ``warm_start`` may be either model or a ``theta`` tensor (P, d + 1); an
    exact fit uses its hyperparameters, an SVGP fit also its variational state.
    """
    if choose_model(model, X.shape[-2]) == "svgp":
        return SVGP.fit(X, Y, categorical=categorical, noise=noise, warm_start=warm_start, seed=seed)
    theta = getattr(warm_start, "theta", warm_start)
    return ExactGP.fit(X, Y, categorical=categorical, noise=noise, warm_start=theta)
