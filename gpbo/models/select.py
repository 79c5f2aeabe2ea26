"""Choice of surrogate by data size: exact GP below a threshold, SVGP above.

``model="auto"`` uses the exact GP while ``n <= SVGP_THRESHOLD`` and the
SVGP above.

The threshold is provisional. The one measurement so far (benchmarks/
RESULTS.md, "SVGP"; 2-core CPU under heavy load) is at n = 1,000: the SVGP
matched the exact GP's held-out quality but one suggestion took longer
(46 s against 31 s), so the crossover lies above 1,000. 2,500 stands until
``python -m benchmarks.svgp --parts latency --ns 1000,2000,5000`` is run on
an idle machine and the crossover is read off it.
"""

from __future__ import annotations

from torch import Tensor

from gpbo.errors import InvalidArgumentError
from gpbo.models.exact import ExactGP
from gpbo.models.variational import SVGP

MODELS = ("auto", "exact", "svgp")
SVGP_THRESHOLD = 2500  # provisional, see the module docstring


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
