"""The multi-fidelity suite's problems (``--problems mf``): learning curves, step by step, with a cost per step.

Every problem is minimised and trains a configuration one step (epoch) at a
time up to ``max_step``; :meth:`MFProblem.trajectory` yields ``(value, dt)``
per step, ``dt`` being the step's cost in (simulated) seconds, which the
simulator (:mod:`benchmarks.mf_sim`) adds to the worker's clock.

- ``mf_lcbench_<task>`` for the development tasks of ``/work/shared/yahpo_lcbench``
  (:data:`benchmarks.lcbench.DEV_TASKS`; other tasks are refused): 7
  hyperparameters, epochs 1-52, value = validation error, 100 - val_accuracy
  (%), cost = the surrogate's training time of the epoch. Optimum: 100 minus the
  best val_accuracy at epoch 52 over 100,000 random configurations
  (:func:`benchmarks.lcbench.reference_optimum`, cached).
- ``mf_hartmann6``: BoTorch's ``AugmentedHartmann`` (6 reals and a fidelity s),
  step t in 1..52 mapped to s = t / 52, so step 52 is Hartmann6 itself
  (optimum -3.32237); each step costs 1 s.
- ``mf_mlp_digits``: :mod:`benchmarks.mlp_task`'s MLP on digits, trained for
  real one epoch per step up to :data:`MLP_EPOCHS` (kept small: a smoke-level
  problem), value = validation cross-entropy, cost = the measured wall time
  of the epoch. The optimum is unknown: the report scores it by the best loss.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch

from benchmarks import lcbench
from benchmarks.problems import Problem, Real

__all__ = ["MF_SUITE", "MFProblem", "MLP_EPOCHS", "get_mf", "is_multi_fidelity"]

MLP_EPOCHS = 20
Trajectory = Iterator[tuple[float, float]]  # (value, dt) per step


@dataclass(frozen=True)
class MFProblem(Problem):
    """A minimised problem whose evaluation is a learning curve.

    Attributes (beside :class:`benchmarks.problems.Problem`'s; ``fn`` is the value at ``max_step``):
        max_step: the step of a complete training (full fidelity).
        steps_fn: ``steps_fn(params) -> iterator of (value, dt)``, one per step 1..max_step.
        optimum_fn: computes the optimum lazily (the LCBench reference is costly once).
    """

    max_step: int = 52
    steps_fn: Callable[[dict[str, Any]], Trajectory] | None = None
    optimum_fn: Callable[[], float] | None = field(default=None, compare=False)

    def trajectory(self, params: dict[str, Any]) -> Trajectory:
        """Yields ``(value, dt)`` for steps 1, 2, ..., ``max_step``; stop iterating to stop training."""
        return self.steps_fn(params)

    def reference(self) -> float:
        """The optimum (the LCBench reference, computed or read from its cache on first use)."""
        return self.optimum_fn() if self.optimum_fn is not None else self.optimum


def is_multi_fidelity(problem: Problem) -> bool:
    return isinstance(problem, MFProblem)


# ------------------------------------------------------------------ LCBench -- #
def _lcbench_steps(task: str) -> Callable[[dict[str, Any]], Trajectory]:
    def steps(params: dict[str, Any]) -> Trajectory:
        acc, cum = lcbench.curves(task, [[float(params[k]) for k in lcbench.PARAMS]])
        dt = np.diff(cum[0], prepend=0.0)
        for a, d in zip(acc[0], dt):
            yield 100.0 - float(a), float(d)

    return steps


def _lcbench(task: str) -> MFProblem:
    lcbench.check_dev_task(task)

    def fn(p):
        return 100.0 - float(lcbench.evaluate(task, torch.tensor([[float(p[k]) for k in lcbench.PARAMS]]))[0, 0])

    return MFProblem(name=f"mf_lcbench_{task}", params=dict(lcbench.PARAMS), fn=fn, optimum=math.nan,
                     kind="mf", default_budget=30, max_step=lcbench.EPOCHS, steps_fn=_lcbench_steps(task),
                     optimum_fn=lambda: 100.0 - lcbench.reference_optimum(task))


# ---------------------------------------------------------------- Hartmann6 -- #
def _hartmann_steps(params: dict[str, Any]) -> Trajectory:
    from botorch.test_functions.multi_fidelity import AugmentedHartmann

    f = AugmentedHartmann()
    x = torch.tensor([float(params[f"x{i}"]) for i in range(6)], dtype=torch.float64)
    s = torch.arange(1, 53, dtype=torch.float64) / 52.0  # (52,) fidelities of steps 1..52
    with torch.no_grad():
        v = f(torch.cat([x.expand(52, 6), s.unsqueeze(-1)], -1))  # (52,)
    for y in v.tolist():
        yield y, 1.0


hartmann6_mf = MFProblem(
    name="mf_hartmann6", params={f"x{i}": Real(0.0, 1.0) for i in range(6)},
    fn=lambda p: list(_hartmann_steps(p))[-1][0], optimum=-3.322368011415515, kind="mf", default_budget=30,
    max_step=52, steps_fn=_hartmann_steps)


# ---------------------------------------------------------------- MLP digits -- #
def _mlp_steps(params: dict[str, Any]) -> Trajectory:
    """:mod:`benchmarks.mlp_task`'s training, one epoch per step (seeded, one CPU thread)."""
    from benchmarks import mlp_task

    _, _, Xv, yv, _, _ = mlp_task._data()
    epochs = mlp_task.train_epochs(params, MLP_EPOCHS)
    for _ in range(MLP_EPOCHS):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # restored below, before the caller runs again
        t0 = time.perf_counter()
        try:
            net = next(epochs)
            with torch.no_grad():
                val = float(torch.nn.functional.cross_entropy(net(Xv), yv))
        finally:
            torch.set_num_threads(threads)
        yield (val if math.isfinite(val) else math.nan), time.perf_counter() - t0


def _mlp() -> MFProblem:
    from benchmarks import mlp_task

    return MFProblem(name="mf_mlp_digits", params=dict(mlp_task.SPACE),
                     fn=lambda p: list(_mlp_steps(p))[-1][0], optimum=math.nan, kind="raw", default_budget=30,
                     max_step=MLP_EPOCHS, steps_fn=_mlp_steps)


MF_SUITE = [f"mf_lcbench_{t}" for t in lcbench.DEV_TASKS] + ["mf_hartmann6", "mf_mlp_digits"]


def get_mf(name: str) -> MFProblem:
    """A multi-fidelity problem by name; KeyError if it is not one (a non-development LCBench task: ValueError)."""
    if name.startswith("mf_lcbench_"):
        return _lcbench(name.removeprefix("mf_lcbench_"))
    if name == hartmann6_mf.name:
        return hartmann6_mf
    if name == "mf_mlp_digits":
        return _mlp()
    raise KeyError(name)
