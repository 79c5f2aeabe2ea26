"""gpbo: batched Bayesian optimisation on PyTorch.

Practitioners use :func:`minimize` or the ask/tell :class:`Optimizer` over a
:class:`Space`; benchmark sweeps call :func:`gpbo.engine.suggest` on P
problems at once; researchers plug new acquisitions into either
(:mod:`gpbo.acquisition.protocol`). ``gpbo.plot`` is imported on first
use, and imports matplotlib only when a plot is drawn.
"""

import importlib
from typing import Any

from gpbo import errors
from gpbo.engine import Suggestion, suggest
from gpbo.loop import MinimizeResult, minimize
from gpbo.optimizer import Optimizer
from gpbo.reporting import TrialHandle
from gpbo.settings import Settings
from gpbo.space import Categorical, Integer, Real, Space
from gpbo.storage import Storage, StudyHistory, load_study
from gpbo.trial import Trial, TrialState

__version__ = "0.1.0"

__all__ = [
    "Categorical", "Integer", "MinimizeResult", "Optimizer", "Real", "Settings", "Space",
    "Storage", "StudyHistory", "Suggestion", "Trial", "TrialHandle", "TrialState", "errors", "load_study", "minimize", "plot", "suggest",
]


def __getattr__(name: str) -> Any:
    """``gpbo.plot`` without importing it (or matplotlib) at ``import gpbo``."""
    if name == "plot":
        return importlib.import_module("gpbo.plot")
    raise AttributeError(f"module 'gpbo' has no attribute {name!r}")

