"""Integrations with other tools; each module imports its tool only when imported.

- :mod:`gpbo.integrations.optuna`: `GPBOSampler`, an Optuna sampler
  (``pip install "gpbo[optuna]"``).
- :mod:`gpbo.integrations.ray_tune`: `GPBOSearch`, a Ray Tune searcher
  (``pip install "gpbo[ray]"``).
- :mod:`gpbo.integrations.ray_executor`: `RayExecutor`, a
  ``concurrent.futures.Executor`` that runs each call as a Ray task, for
  ``gpbo.minimize(..., executor=RayExecutor())`` (``pip install "gpbo[ray]"``).
- :mod:`gpbo.integrations.ray_relay`: how `RayExecutor` carries trial
  handles (``report`` / ``should_stop``) between its tasks and the driver.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Imports ``module``, or raises an ImportError naming the gpbo extra to install.

    Args:
        module: The module to import, e.g. ``"ray"``.
        extra: The gpbo extra that installs it, e.g. ``"ray"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"this gpbo integration needs {module!r}, which is not installed; "
            f'install it with: pip install "gpbo[{extra}]"'
        ) from exc
