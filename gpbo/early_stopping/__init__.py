"""Early stopping of trials from their learning curves (see `protocol`).

A rule is any object with ``should_stop(curves, index) -> bool``
(`StoppingRule`). `get` resolves the names ``gpbo.Settings.early_stopping``
accepts: ``"model"`` (`ModelBasedRule`, the freeze-thaw curve model of
`gpbo.early_stopping.model_based`), ``"asha"`` (`ASHA`), ``"hyperband"`` (`Hyperband`) and
``"median"`` (`Median`), each with its default parameters; pass an instance
(``ASHA(eta=3)``) to choose them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpbo.early_stopping.asha import ASHA
from gpbo.early_stopping.hyperband import Hyperband
from gpbo.early_stopping.median import Median
from gpbo.early_stopping.model_based import ModelBasedRule
from gpbo.early_stopping.protocol import Curves, StoppingRule
from gpbo.errors import InvalidArgumentError

__all__ = ["ASHA", "DEFAULT_RULE", "REGISTRY", "Curves", "Hyperband", "Median", "ModelBasedRule", "StoppingRule", "check", "get"]

DEFAULT_RULE = "model"
"""The default of ``gpbo.Settings.early_stopping``: the model-based rule."""


REGISTRY: dict[str, Callable[[], StoppingRule]] = {
    "model": ModelBasedRule,
    "asha": ASHA,
    "hyperband": Hyperband,
    "median": Median,
}


def check(rule: Any) -> str | StoppingRule | None:
    """Validates a ``Settings.early_stopping`` value without building it; ``"none"`` is None (off).

    Raises:
        InvalidArgumentError: For an unknown name or an object without ``should_stop``.
    """
    if rule is None or (isinstance(rule, str) and rule == "none"):
        return None
    if isinstance(rule, type):
        raise InvalidArgumentError(f"early_stopping must be an instance, got the class {rule.__name__}; pass {rule.__name__}()")
    if isinstance(rule, str):
        if rule not in REGISTRY:
            raise InvalidArgumentError(
                f"early_stopping must be one of {sorted(REGISTRY)}, None, or an object with "
                f"should_stop(curves, index) -> bool, got {rule!r}")
        return rule
    if not callable(getattr(rule, "should_stop", None)):
        raise InvalidArgumentError(
            f"early_stopping must be one of {sorted(REGISTRY)}, None, or an object with "
            f"should_stop(curves, index) -> bool (gpbo.early_stopping.StoppingRule), got {type(rule).__name__} {rule!r:.200}")
    return rule


def get(rule: str | StoppingRule | None) -> StoppingRule | None:
    """The rule a ``Settings.early_stopping`` value names (an object passes through; None is None).

    Raises:
        InvalidArgumentError: For an unknown name.
    """
    rule = check(rule)
    return REGISTRY[rule]() if isinstance(rule, str) else rule
