"""Early stopping of trials from their learning curves (see `protocol`)."""

from gpbo.early_stopping.protocol import Curves, StoppingRule

__all__ = ["Curves", "StoppingRule"]
