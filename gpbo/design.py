"""The initial design and the per-step seeds of the facade.

The first trials of a study come from a scrambled Sobol sequence whose
categorical and linear integer coordinates are stratified, so that every
choice gets the same share. Every random draw is a pure function of
``(seed, counter)``, which makes a saved or stored study continue exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gpbo.space import Categorical, Integer, Space

__all__ = ["derive_seed", "sobol_design"]


def sobol_design(space: Space, seed: int, start: int, k: int) -> Tensor:
    """Points ``start .. start + k - 1`` of the study's stratified scrambled Sobol sequence.

    Returns:
        (k, d) float64 CPU points in the unit cube.
    """
    engine = torch.quasirandom.SobolEngine(space.dim, scramble=True, seed=seed)
    engine.fast_forward(start)
    return _stratify(engine.draw(k, dtype=torch.float64), space)


def _stratify(U: Tensor, space: Space) -> Tensor:
    """Maps ``U (k, d)`` so each categorical / linear integer value gets an equal share.

    Decoding rounds to the nearest value, which gives the two end values half
    the share of the others; here coordinate ``u`` picks value
    ``floor(u * m)`` of ``m`` instead. Log-scaled integers keep rounding.
    """
    U = U.clone()
    for j, param in enumerate(space.params.values()):
        if isinstance(param, Categorical):
            m = len(param.choices)
        elif isinstance(param, Integer) and not param.log:
            m = param.high - param.low + 1
        else:
            continue
        U[:, j] = (U[:, j] * m).floor().clamp(max=m - 1) / max(m - 1, 1)
    return U


def derive_seed(seed: int, counter: int) -> int:
    """A 32-bit seed that is a pure function of ``(seed, counter)``."""
    return int(np.random.SeedSequence([seed, counter]).generate_state(1)[0])
