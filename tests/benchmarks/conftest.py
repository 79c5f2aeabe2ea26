"""Restoring what the engine ablations patch (benchmarks.ablations.VARIANTS)."""

from __future__ import annotations

import pytest

from gpbo import engine
from gpbo.acquisition import portfolio
from gpbo.models import exact, kernel, marginal, pointwise, warping
from gpbo.search import multistart

# every module attribute a variant may replace
PATCHED = [(kernel, "matern52"), (marginal, "matern52"), (marginal, "matern52_dsq"),
           (pointwise, "matern52"), (pointwise, "matern52_dsq"), (engine, "_context"),
           (engine, "_N_ANCHORS"), (engine, "suggest"), (engine, "maximize_acquisition"),
           (exact, "minimize_lbfgsb"), (multistart, "minimize_lbfgsb"), (exact, "_standardisation"),
           (multistart, "_ascend"), (warping, "pull_in_far_outcomes"), (warping, "FENCE"),
           (portfolio, "LogAugmentedEI")]


@pytest.fixture
def restore_engine(monkeypatch):
    """Puts every patchable attribute (and ExactGP.fit) back after the test; yields the list."""
    for module, name in PATCHED:
        monkeypatch.setattr(module, name, getattr(module, name))
    monkeypatch.setattr(exact.ExactGP, "fit", exact.ExactGP.__dict__["fit"])
    return PATCHED
