"""Multi-objective and constrained benchmark problems (the sweep's ``mo`` suite).

Every problem returns its outcomes in the engine's convention
(:mod:`gpbo.outcomes`): a row of O values per point, the first
``n_objectives`` columns *maximised*, then ``n_constraints`` columns feasible
iff ``<= 0``. BoTorch's test problems minimise and call a constraint feasible
when its slack is ``>= 0``, so objectives are negated (BoTorch's
``negate=True``, which also negates its reference point) and constraints are
the negated slack.

- ``branincurrin`` (d=2), ``dtlz2`` (d=6), ``zdt1`` (d=6): 2 objectives;
  BoTorch's definitions, reference points and maximum hypervolumes.
- ``c2dtlz2`` (d=4, 2 objectives, 1 constraint), ``constrained_branincurrin``
  (d=2, 2 objectives, 1 constraint): BoTorch's.
- ``branin_disc``: Branin (minimised) on [-5, 10] x [0, 15] subject to the disc
  ``(x1 - 2.5)^2 + (x2 - 7.5)^2 <= 50`` (the disc of Gelbart et al. 2014, cited
  by the issue as Gardner et al. 2014; the same disc as BoTorch's
  ConstrainedBraninCurrin). Of Branin's three minima only (pi, 2.275) lies in
  the disc, so the constrained minimum is 5 / (4 pi) = 0.397887.
- ``ackley10_c2``: Ackley (minimised) on [-5, 10]^10 subject to
  ``sum(x) <= 0`` and ``||x||_2 - 5 <= 0`` (Eriksson & Poloczek 2021, SCBO;
  the problem of BoTorch's SCBO tutorial). Minimum 0 at the origin.
- ``lcbench_<task>``: LCBench (YAHPO Gym surrogate, :mod:`benchmarks.lcbench`)
  at epoch 52: maximise val_accuracy (%), minimise training time (s), over 7
  hyperparameters; development tasks only.

Reference points are in the maximisation units (``-`` BoTorch's). The
single-objective constrained problems have no reference point; they carry
``optimum``, the constrained minimum of the objective in its own units.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from botorch.test_functions import multi_objective as mo
from botorch.test_functions.synthetic import Ackley, Branin

from benchmarks.problems import Problem, Real

__all__ = ["MO", "MOProblem", "evaluate_params", "get_mo", "is_multi_outcome"]


@dataclass(frozen=True)
class MOProblem(Problem):
    """A problem with several outcomes, in the engine's convention.

    Attributes (beside :class:`Problem`'s; ``fn`` maps params to the O outcomes):
        batch_fn: ``X (n, d)`` raw parameter values (columns in ``params``
            order, float64) -> ``(n, O)`` outcomes.
        n_objectives: maximised columns first.
        n_constraints: then constraint columns, feasible iff <= 0.
        ref_point: hypervolume reference point (maximisation units), or ()
            for a single objective.
        max_hv: the known maximum hypervolume, or None.
        optimum: (single objective) the constrained minimum of the objective in
            its own (minimised) units; NaN for several objectives.
    """

    batch_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    n_objectives: int = 2
    n_constraints: int = 0
    ref_point: tuple[float, ...] = ()
    max_hv: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_outcomes(self) -> int:
        return self.n_objectives + self.n_constraints

    def evaluate_batch(self, X: torch.Tensor) -> torch.Tensor:
        """``X (n, d)`` raw values -> ``(n, O)`` outcomes (float64, no gradient)."""
        with torch.no_grad():
            return self.batch_fn(torch.as_tensor(X, dtype=torch.float64).reshape(-1, len(self.params)))


def is_multi_outcome(problem: Problem) -> bool:
    return isinstance(problem, MOProblem)


def evaluate_params(problem: MOProblem, params: list[dict[str, Any]]) -> torch.Tensor:
    """Outcomes ``(k, O)`` of k configurations (one batched call)."""
    X = torch.tensor([[float(p[n]) for n in problem.params] for p in params], dtype=torch.float64)
    return problem.evaluate_batch(X)


def _row_fn(batch_fn, names):
    def fn(p: dict[str, Any]) -> list[float]:
        with torch.no_grad():
            return batch_fn(torch.tensor([[float(p[n]) for n in names]], dtype=torch.float64))[0].tolist()
    return fn


def _make(name: str, params: dict, batch_fn, *, n_objectives: int, n_constraints: int = 0,
          ref_point=(), max_hv=None, optimum=math.nan, budget=100, kind="mo", info=None) -> MOProblem:
    return MOProblem(name=name, params=params, fn=_row_fn(batch_fn, list(params)), optimum=optimum, kind=kind,
                     default_budget=budget, batch_fn=batch_fn, n_objectives=n_objectives,
                     n_constraints=n_constraints, ref_point=tuple(float(v) for v in ref_point),
                     max_hv=max_hv, info=info or {})


def _botorch_mo(name: str, f, budget: int = 100) -> MOProblem:
    """A BoTorch multi-objective test problem built with ``negate=True`` (maximised)."""
    lo, hi = f.bounds[0].tolist(), f.bounds[1].tolist()
    n_con = getattr(f, "num_constraints", 0)

    def batch_fn(X: torch.Tensor) -> torch.Tensor:
        Y = f(X)  # (n, m), negated: maximised
        if n_con:
            return torch.cat([Y, -f.evaluate_slack(X, noise=False)], -1)  # feasible iff -slack <= 0
        return Y

    return _make(name, {f"x{i}": Real(a, b) for i, (a, b) in enumerate(zip(lo, hi))}, batch_fn,
                 n_objectives=f.num_objectives, n_constraints=n_con, ref_point=f.ref_point.tolist(),
                 max_hv=float(f.max_hv), budget=budget, kind="mo")


_BRANIN = Branin()


def _branin_disc(X: torch.Tensor) -> torch.Tensor:
    disc = (X[:, 0] - 2.5) ** 2 + (X[:, 1] - 7.5) ** 2 - 50.0  # (n,) feasible iff <= 0
    return torch.stack([-_BRANIN(X), disc], -1)


_ACKLEY10 = Ackley(dim=10)


def _ackley10_c2(X: torch.Tensor) -> torch.Tensor:
    return torch.stack([-_ACKLEY10(X), X.sum(-1), X.norm(dim=-1) - 5.0], -1)


def _lcbench(task: str) -> MOProblem:
    from benchmarks import lcbench

    lcbench.check_dev_task(task)

    def batch_fn(X: torch.Tensor) -> torch.Tensor:
        out = lcbench.evaluate(task, X)  # (n, 2): val_accuracy, time
        return torch.stack([out[:, 0], -out[:, 1]], -1)

    return _make(f"lcbench_{task}", dict(lcbench.PARAMS), batch_fn, n_objectives=2,
                 ref_point=lcbench.reference_point(task), kind="mo",
                 info={"objectives": ["val_accuracy (%)", "-time (s)"], "epoch": lcbench.EPOCHS})


MO: dict[str, MOProblem] = {p.name: p for p in (
    _botorch_mo("branincurrin", mo.BraninCurrin(negate=True), budget=86),
    _botorch_mo("dtlz2", mo.DTLZ2(dim=6, num_objectives=2, negate=True)),
    _botorch_mo("zdt1", mo.ZDT1(dim=6, num_objectives=2, negate=True)),
    _botorch_mo("c2dtlz2", mo.C2DTLZ2(dim=4, num_objectives=2, negate=True)),
    _botorch_mo("constrained_branincurrin", mo.ConstrainedBraninCurrin(negate=True)),
    _make("branin_disc", {"x1": Real(-5.0, 10.0), "x2": Real(0.0, 15.0)}, _branin_disc, n_objectives=1,
          n_constraints=1, optimum=5.0 / (4.0 * math.pi), kind="constrained"),
    _make("ackley10_c2", {f"x{i}": Real(-5.0, 10.0) for i in range(10)}, _ackley10_c2, n_objectives=1,
          n_constraints=2, optimum=0.0, kind="constrained"),
)}
MO_SUITE = [*MO, "lcbench_3945"]


@functools.cache
def get_mo(name: str) -> MOProblem:
    """A multi-outcome problem by name (``lcbench_<task>`` for a development task); KeyError if none."""
    if name in MO:
        return MO[name]
    if name.startswith("lcbench_"):
        return _lcbench(name.removeprefix("lcbench_"))
    raise KeyError(name)
