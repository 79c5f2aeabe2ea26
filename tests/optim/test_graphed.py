"""Tests for CUDA-graph replay of the L-BFGS-B iterations (gpbo.optim.graphed).

The replay must give exactly the eager results; the CUDA tests run in
benchmarks/gpu_check.sh (``-k cuda``) on a GPU machine.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import gpbo.optim.graphed as graphed
import gpbo.optim.lbfgsb as lbfgsb
from gpbo import engine
from gpbo.dims import DimSpec
from gpbo.optim import minimize_lbfgsb

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
F64 = torch.float64


def _rosen(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2).sum(-1)


def _starts(device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (4 * torch.rand(64, 5, generator=g, dtype=F64) - 2).to(device)


def _same(a, b) -> None:
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
    torch.testing.assert_close(a.f, b.f, rtol=0, atol=0)
    assert torch.equal(a.n_iter, b.n_iter) and torch.equal(a.converged, b.converged)


def test_graph_is_ignored_on_the_cpu():
    x0 = _starts("cpu")
    out = minimize_lbfgsb(_rosen, x0, -2.0, 2.0, graph=True, unit_first=False, check_every=10)
    _same(out, minimize_lbfgsb(_rosen, x0, -2.0, 2.0, graph=False, unit_first=False, check_every=10))
    assert not out.graphed


def _in_place_replay(step, static):
    """What a captured graph does, on the CPU: advance ``static`` by one step in place."""

    def replay():
        for s, t in zip(static, step(static)):
            if s is not None:
                s.copy_(t)

    return replay


@pytest.mark.parametrize("capture", [_in_place_replay, lambda step, static: None], ids=["replay", "failed"])
@pytest.mark.parametrize("max_iter", [0, 1, 7, 200])
def test_warm_up_capture_replay_logic_equals_eager_on_the_cpu(monkeypatch, capture, max_iter):
    """The graph path's bookkeeping (warm-up, static state updated in place, the
    checks every 10 iterations, the eager fallback) with a stand-in for the graph."""

    def through_graph_path(step, state, done, *, max_iter, check_every, graph):
        return graphed._warm_up_capture_replay(step, state, done, max_iter, check_every, capture)

    x0 = _starts("cpu")
    kw = dict(max_iter=max_iter, unit_first=False, check_every=10)
    eager = minimize_lbfgsb(_rosen, x0, -2.0, 2.0, **kw)
    monkeypatch.setattr(lbfgsb, "iterate", through_graph_path)
    out = minimize_lbfgsb(_rosen, x0, -2.0, 2.0, **kw)
    _same(out, eager)
    assert out.graphed == (capture is _in_place_replay and max_iter > 1)


@cuda
@pytest.mark.parametrize("max_iter", [0, 1, 7, 200])
def test_cuda_graph_replay_equals_eager(max_iter):
    x0 = _starts("cuda")
    eager = minimize_lbfgsb(_rosen, x0, -2.0, 2.0, max_iter=max_iter, graph=False)
    replay = minimize_lbfgsb(_rosen, x0, -2.0, 2.0, max_iter=max_iter, graph=True)
    _same(replay, eager)
    assert replay.graphed == (max_iter > 1)  # one warm-up iteration runs eagerly
    assert not eager.graphed
    if max_iter == 200:
        assert bool(replay.converged.all())


@cuda
def test_cuda_graphs_are_the_default_and_env_turns_them_off(monkeypatch):
    x0 = _starts("cuda")
    assert minimize_lbfgsb(_rosen, x0, -2.0, 2.0).graphed
    monkeypatch.setenv("GPBO_CUDA_GRAPHS", "0")
    assert not minimize_lbfgsb(_rosen, x0, -2.0, 2.0).graphed


@cuda
def test_cuda_capture_failure_warns_and_runs_eagerly():
    def syncing(x):  # a host sync: legal eagerly, not inside a graph
        return _rosen(x) + 0.0 * float(x.sum().item())

    x0 = _starts("cuda")
    with pytest.warns(RuntimeWarning, match="could not capture"):
        out = minimize_lbfgsb(syncing, x0, -2.0, 2.0, graph=True)
    assert not out.graphed
    _same(out, minimize_lbfgsb(syncing, x0, -2.0, 2.0, graph=False))


@cuda
@pytest.mark.parametrize("acquisition", ["log_aei_ucb", "thompson"])
@pytest.mark.parametrize("mixed", [False, True])
def test_cuda_engine_with_graphs_equals_eager(monkeypatch, acquisition, mixed):
    """A whole suggestion (MAP fit, acquisition ascent, discrete sweeps) is
    captured without falling back, and replays to the eager result."""
    g = torch.Generator().manual_seed(1)
    dims = DimSpec.continuous(4)
    if mixed:  # an integer dim and a categorical dim
        dims = DimSpec(d=4, levels={2: tuple(i / 7 for i in range(8)), 3: (0.0, 0.5, 1.0)}, categorical=(3,))
    X = dims.snap(torch.rand(3, 12, 4, generator=g, dtype=F64)).cuda()
    Y = -((X - 0.3) ** 2).sum(-1)
    runs = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("GPBO_CUDA_GRAPHS", flag)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="gpbo: could not capture")
            runs[flag] = engine.suggest(X, Y, dims=dims, q=2, seed=3, settings={"acquisition": acquisition})
    torch.testing.assert_close(runs["1"].candidates, runs["0"].candidates, rtol=0, atol=0)
    torch.testing.assert_close(runs["1"].acq_values, runs["0"].acq_values, rtol=0, atol=0)
