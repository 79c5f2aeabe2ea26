"""Batched on-device optimisers."""

from gpbo.optim.lbfgsb import LbfgsbResult, minimize_lbfgsb

__all__ = ["LbfgsbResult", "minimize_lbfgsb"]
