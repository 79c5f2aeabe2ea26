"""Suggestions on fixed seeded problems are bit-identical to the recorded ones.

``tests/data/golden_suggestions.json`` holds the candidates (as ``float.hex``)
that gpbo suggested before the consolidation of issue 20; a refactor that
changes any bit of them changes behaviour. Regenerate the file only for a
deliberate change of behaviour, with ``python -m tests.test_golden``, and say
why in the commit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import gpbo
from gpbo.dims import DimSpec

GOLDEN = Path(__file__).parent / "data" / "golden_suggestions.json"


def _data(P: int, n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, dtype=torch.float64, generator=g)
    Y = -((X - 0.3) ** 2).sum(-1) + 0.3 * torch.sin(9 * X).sum(-1) + 0.01 * torch.randn(P, n, generator=g, dtype=torch.float64)
    return X, Y


def _engine(P: int, n: int, d: int, q: int, *, pending: int = 0, seed: int = 0, dims: DimSpec | None = None,
            **options) -> list:
    X, Y = _data(P, n, d, seed)
    if dims is not None:
        X = dims.snap(X)
    pend = torch.rand(P, pending, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1)) if pending else None
    s = gpbo.suggest(X, Y, dims=dims, q=q, pending=pend, seed=seed, settings=options)
    return s.candidates.flatten().tolist()


def _mixed_optimizer(**options) -> list:
    space = gpbo.Space({
        "lr": gpbo.Real(1e-4, 1e-1, log=True),
        "width": gpbo.Integer(16, 256, log=True),
        "act": gpbo.Categorical(["relu", "tanh", "gelu"]),
        "drop": gpbo.Real(0.0, 0.5),
    })
    opt = gpbo.Optimizer(space, seed=3, **options)

    def f(p: dict) -> float:
        act = {"relu": 0.0, "tanh": 0.3, "gelu": 0.1}[p["act"]]
        return (math.log10(p["lr"]) + 2.5) ** 2 + (math.log2(p["width"]) - 6) ** 2 / 4 + act + p["drop"]

    for _ in range(10):
        t = opt.ask()
        opt.tell(t, f(t.params))
    out = []
    for t in opt.ask(3):  # one engine call with q = 3
        out.append([t.params[k] for k in space.names])
    return out


def _discrete_optimizer() -> list:
    space = gpbo.Space({"a": gpbo.Integer(0, 5), "b": gpbo.Categorical(["x", "y", "z"])})
    opt = gpbo.Optimizer(space, seed=5)
    for _ in range(8):
        t = opt.ask()
        opt.tell(t, (t.params["a"] - 3) ** 2 + (t.params["b"] == "y"))
    return [[t.params["a"], t.params["b"]] for t in opt.ask(2)]


MIXED = DimSpec(3, categorical=(2,), levels={1: (0.0, 0.25, 0.5, 0.75, 1.0), 2: (0.0, 0.5, 1.0)})

CASES = {
    "continuous_p1_q1": lambda: _engine(1, 12, 3, 1),
    "batched_p8_q4_pending": lambda: _engine(8, 15, 4, 4, pending=2, seed=1),
    "qlog_nei_p2_q2": lambda: _engine(2, 10, 2, 2, seed=2, acquisition="qlog_nei", q_batch="joint"),
    "qlog_nei_p2_q2_sequential": lambda: _engine(2, 10, 2, 2, seed=2, acquisition="qlog_nei"),
    "thompson_p2_q2": lambda: _engine(2, 10, 2, 2, seed=3, acquisition="thompson"),
    "ucb_deterministic_nowarp": lambda: _engine(3, 9, 3, 1, seed=4, acquisition="ucb", noise="deterministic", warp="none"),
    "mixed_dims_p4_q2": lambda: _engine(4, 12, 3, 2, pending=1, seed=5, dims=MIXED),
    "mixed_optimizer_q3": _mixed_optimizer,
    "discrete_optimizer_q2": _discrete_optimizer,
}


def _encode(value):
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


@pytest.mark.parametrize("case", sorted(CASES))
def test_suggestions_are_bit_identical_to_the_recorded_ones(case):
    golden = json.loads(GOLDEN.read_text())
    assert _encode(CASES[case]()) == golden[case]


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps({name: _encode(make()) for name, make in sorted(CASES.items())}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
