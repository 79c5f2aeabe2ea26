"""Early stopping of trials from their learning curves (see `protocol`).

A rule is any object with ``should_stop(curves, index) -> bool``
(`StoppingRule`). `get` resolves the names ``gpbo.Settings.early_stopping``
accepts: ``"model"`` (`ModelBasedRule`, the freeze-thaw curve model of
`gpbo.early_stopping.model_based`), ``"asha"`` (`ASHA`), ``"hyperband"`` (`Hyperband`) and
``"median"`` (`Median`), each with its default parameters; pass an instance
(``ASHA(eta=3)``) to choose them. `should_stop_many` decides for several
studies at once, batching the rules that can be batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gpbo.early_stopping.asha import ASHA
from gpbo.early_stopping.hyperband import Hyperband
from gpbo.early_stopping.median import Median
from gpbo.early_stopping.model_based import ModelBasedRule
from gpbo.early_stopping.protocol import Curves, StoppingRule
from gpbo.errors import InvalidArgumentError

__all__ = ["ASHA", "DEFAULT_RULE", "REGISTRY", "Curves", "Hyperband", "Median", "ModelBasedRule", "StoppingRule", "check", "get",
           "should_stop_many"]

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


def should_stop_many(requests: Sequence[tuple[StoppingRule, Curves, int]]) -> list[bool]:
    """``rule.should_stop(curves, index)`` of each request, a rule per study.

    Rules of a class with a static ``should_stop_many(requests) -> list[bool]``
    (`ModelBasedRule`: the curve model batched over the studies) are decided
    in one call per class; the others one at a time.
    """
    answers: list[bool] = [False] * len(requests)
    by_class: dict[type, list[int]] = {}
    for k, (rule, _, _) in enumerate(requests):
        by_class.setdefault(type(rule), []).append(k)
    for cls, ks in by_class.items():
        many = getattr(cls, "should_stop_many", None)
        if callable(many):
            decided = many([requests[k] for k in ks])
        else:
            decided = [requests[k][0].should_stop(requests[k][1], requests[k][2]) for k in ks]
        for k, stop in zip(ks, decided):
            answers[k] = bool(stop)
    return answers
