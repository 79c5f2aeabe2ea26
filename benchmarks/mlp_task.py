"""A small PyTorch task: an MLP on scikit-learn's digits (a few seconds per evaluation on a CPU).

Seven hyperparameters (mixed space): learning rate, weight decay (log reals),
width (log integer), depth (integer), dropout (real), batch size (log
integer), activation (categorical). AdamW for ``EPOCHS`` epochs on 75 % of
the 80 % training split; the loss is the cross-entropy on the other 25 %
(validation), the held-out loss the cross-entropy on the 20 % test split.
Training is seeded (torch seed 0), single-threaded, on the CPU. The optimum
is unknown, so the report scores it by the best loss ("raw").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import torch

from benchmarks.problems import Cat, Int, Problem, Real

EPOCHS = 15
SPACE = {
    "lr": Real(1e-4, 3e-1, log=True),
    "weight_decay": Real(1e-6, 1e-1, log=True),
    "width": Int(16, 512, log=True),
    "depth": Int(1, 4),
    "dropout": Real(0.0, 0.6),
    "batch_size": Int(16, 256, log=True),
    "activation": Cat(("relu", "gelu", "tanh")),
}


@lru_cache(maxsize=1)
def _data():
    from benchmarks.hpo import load

    Xtr, Xte, ytr, yte = load("digits")
    t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt)  # noqa: E731
    X, Xte = t(Xtr) / 16.0, t(Xte) / 16.0
    y, yte = t(ytr, torch.long), t(yte, torch.long)
    cut = int(0.75 * len(X))
    return X[:cut], y[:cut], X[cut:], y[cut:], Xte, yte


def _net(p: dict[str, Any]) -> torch.nn.Module:
    act = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "tanh": torch.nn.Tanh}[p["activation"]]
    layers, width, fan_in = [], int(p["width"]), 64
    for _ in range(int(p["depth"])):
        layers += [torch.nn.Linear(fan_in, width), act(), torch.nn.Dropout(float(p["dropout"]))]
        fan_in = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, 10))


def train_epochs(p: dict[str, Any], epochs: int) -> Iterator[torch.nn.Module]:
    """Trains the MLP with AdamW on the train split (seeded); yields the net, in eval mode, after each epoch.

    The caller sets torch's thread count (one core per evaluation).
    """
    Xa, ya = _data()[:2]
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = _net(p)
    opt = torch.optim.AdamW(net.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"]))
    bs = int(p["batch_size"])
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(Xa), generator=gen).split(bs):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xa[idx]), ya[idx]).backward()
            opt.step()
        net.eval()
        yield net


def evaluate(p: dict[str, Any]) -> dict[str, float]:
    _, _, Xv, yv, Xte, yte = _data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # restored below; one core per evaluation
    try:
        *_, net = train_epochs(p, EPOCHS)  # the net after the last epoch
        with torch.no_grad():
            val = float(torch.nn.functional.cross_entropy(net(Xv), yv))
            test = float(torch.nn.functional.cross_entropy(net(Xte), yte))
    finally:
        torch.set_num_threads(threads)
    ok = lambda v: v if math.isfinite(v) else math.nan  # noqa: E731
    return {"value": ok(val), "holdout": ok(test)}


class MlpProblem(Problem):
    def evaluate(self, params: dict[str, Any]) -> dict[str, float]:
        return evaluate(params)


mlp_digits = MlpProblem(name="mlp_digits", params=SPACE, fn=lambda p: evaluate(p)["value"],
                        optimum=math.nan, kind="raw", default_budget=30)
