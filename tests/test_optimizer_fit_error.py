"""A fit that cannot be recovered makes the Optimizer suggest Sobol points, with a warning.

The data set genuinely fails (no monkeypatch): objective values of +-1e308
are finite, so they are accepted as results, but their spread overflows
float64 in the output warp and the standardisation, and the GP fit raises
`gpbo.errors.FitError`. The study goes on (DESIGN.md, "Never crash a study
because one fit failed").
"""

from __future__ import annotations

import warnings

import pytest

import gpbo


def test_unrecoverable_fit_falls_back_to_sobol_points():
    opt = gpbo.Optimizer({"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(0.0, 1.0)}, seed=0, settings={"n_initial": 4})
    for i in range(4):
        t = opt.ask()
        opt.tell(t, 1e308 if i % 2 else -1e308)
    with pytest.warns(RuntimeWarning, match=r"GP fit failed \(.*not finite.*\); suggesting Sobol points"):
        t = opt.ask()
    assert set(t.params) == {"x", "y"} and all(0.0 <= v <= 1.0 for v in t.params.values())
    opt.tell(t, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert len(opt.ask(2)) == 2  # still going
