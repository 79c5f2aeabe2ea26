"""The optimisers of the multi-outcome suite, behind the sweep's ask/tell interface.

``tell(params_list, outcomes)`` takes, per point, the O outcomes in the
engine's convention (objectives maximised, then constraints feasible iff
``<= 0``; a row of NaN is a failed evaluation). ``tell`` without ``ask``
replays history (a resumed sweep).

- ``gpbo_mo``: ``gpbo.engine.suggest`` on Y (P, n, O) with
  ``settings.outcomes`` (n_objectives, n_constraints, the problem's reference
  point), all seeds of a problem in one call per iteration
  (:func:`benchmarks.mo_sweep.run_gpbo_group`); the engine's default
  acquisition (qLogNEHVI for 2-4 objectives, with a qLogNParEGO turn every
  third point under constraints; for one objective the single-objective
  default plus the log probability of feasibility).
- ``gpbo_mo_joint``: the same with ``Settings(q_batch="joint")``: the q
  points of a batch optimised together (the default until 2026-12-06,
  docs/decisions/0043-sequential-q-batches.md).
- ``gpbo_mo_parego``: the same with ``acquisition="qlog_parego"`` (qLogNParEGO:
  noisy log EI of a random augmented-Chebyshev scalarisation, new weights
  each batch).
- ``gpbo_mo_mix``: ``acquisition="qlog_nehvi_parego"``, qLogNEHVI and
  qLogNParEGO taking turns point by point
  (:class:`gpbo.acquisition.MultiObjectiveRoundRobin`).
- ``gpbo_mo_det``: the default with ``noise="deterministic"`` (the GP's noise
  fixed at its floor), what a user sets for a deterministic objective, and
  what SCBO's recipe assumes (noise at most 1e-3)
  (docs/decisions/0055-deterministic-constrained-ackley.md).
- ``botorch_mo``: BoTorch's tutorial recipe: one ``SingleTaskGP`` per outcome
  (``Standardize``) in a ``ModelListGP``, fitted from scratch each batch;
  qLogNEHVI (the problem's reference point, 128 Sobol QMC samples,
  ``prune_baseline``) for several objectives, qLogNEI for one, constraints via
  ``constraints=``; ``optimize_acqf(num_restarts=10, raw_samples=512,
  sequential=True)``. On the constrained Ackley this is the qLogNEI recipe;
  SCBO's trust-region recipe is ``scbo``.
- ``scbo``: SCBO (Eriksson & Poloczek 2021), :mod:`benchmarks.scbo`: a trust
  region with constrained Thompson sampling, one GP per outcome; for
  single-objective problems only (:func:`applies`; the sweep skips it on the
  others, ``make`` refuses them).
- ``optuna_gp_mo``: Optuna's GPSampler with ``directions`` and constraints.
- ``nsga2``: Optuna's NSGAIISampler (its default population of 50) with constraints.
- ``tpe_mo``: Optuna's TPESampler (``multivariate=True``, ``constant_liar``
  for q > 1) with constraints.
  Constraints reach the Optuna samplers as Optuna 5 takes them,
  ``Trial.set_constraint`` (Optuna 5.0 deprecates ``constraints_func``; the
  samplers read the same values either way); with Optuna 4 through
  ``constraints_func``.
- ``random``: :class:`benchmarks.methods.RandomSearch` (the same points as the single-objective sweep's).

Every method gets ``n_init = 2 (d + 1)`` initial points: gpbo, BoTorch and SCBO the
same scrambled-Sobol points (:func:`benchmarks.methods.initial_design`), the
Optuna samplers ``n_startup_trials = n_init`` of their own (NSGA-II has none:
its first generation is random).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from benchmarks.methods import Method, RandomSearch, _optuna_distributions, initial_design
from benchmarks.mo_problems import MOProblem
from gpbo.settings import Settings

__all__ = ["ALL_MO_METHODS", "GPBO_MO_METHODS", "GPBO_MO_VARIANTS", "MO_SEQUENTIAL", "SINGLE_OBJECTIVE_ONLY",
           "applies", "gpbo_settings", "impute", "initial_design", "make"]

GPBO_MO_METHODS: dict[str, dict] = {"gpbo_mo": {}, "gpbo_mo_joint": {"q_batch": "joint"},
                                     "gpbo_mo_parego": {"acquisition": "qlog_parego"},
                                     "gpbo_mo_mix": {"acquisition": "qlog_nehvi_parego"},
                                     "gpbo_mo_det": {"noise": "deterministic"}}
MO_SEQUENTIAL = ("botorch_mo", "scbo", "optuna_gp_mo", "nsga2", "tpe_mo", "random")
ALL_MO_METHODS = (*GPBO_MO_METHODS, *MO_SEQUENTIAL)
SINGLE_OBJECTIVE_ONLY = ("scbo",)  # skipped by the sweep on problems with several objectives
GPBO_MO_VARIANTS = ("gpbo_mo_joint", "gpbo_mo_parego", "gpbo_mo_mix", "gpbo_mo_det")  # not run by default
DEFAULT_MO_METHODS = ",".join(m for m in ALL_MO_METHODS if m not in GPBO_MO_VARIANTS)


def applies(method: str, problem: MOProblem) -> bool:
    """Whether a multi-outcome method runs on a multi-outcome problem (``scbo``: one objective only)."""
    return method in ALL_MO_METHODS and (method not in SINGLE_OBJECTIVE_ONLY or problem.n_objectives == 1)


def gpbo_settings(method: str, problem: MOProblem, base: Settings | None = None) -> Settings:
    """The method's `gpbo.Settings`, with ``outcomes`` set from the problem."""
    outcomes = {"n_objectives": problem.n_objectives, "n_constraints": problem.n_constraints,
                "ref_point": problem.ref_point or None}
    return (base or Settings()).replace(outcomes=outcomes, **GPBO_MO_METHODS[method])


def impute(problem: MOProblem, rows: list[list[float]]) -> np.ndarray:
    """``(n, O)`` outcomes with failed (NaN) entries replaced: objectives by their worst (lowest) finite
    value, constraints by their most violated (highest) finite value; 0 if a column has none."""
    Y = np.asarray(rows, dtype=float).reshape(len(rows), problem.n_outcomes)
    out = Y.copy()
    for j in range(problem.n_outcomes):
        ok = np.isfinite(Y[:, j])
        fill = (Y[ok, j].min() if j < problem.n_objectives else Y[ok, j].max()) if ok.any() else 0.0
        out[~ok, j] = fill
    return out


def _constraints(trial) -> list[float]:  # Optuna 4's constraints_func
    return trial.user_attrs["constraints"]


def _set_constraint_api() -> bool:
    import optuna

    return hasattr(optuna.trial.Trial, "set_constraint")


class OptunaMO(Method):
    """An Optuna sampler on a study with ``directions`` (all "maximize") and ``constraints_func``."""

    def __init__(self, problem: MOProblem, seed: int, n_init: int, q: int, kind: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.new_api = _set_constraint_api()
        cf = _constraints if problem.n_constraints and not self.new_api else None
        if kind == "optuna_gp_mo":
            sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_init, constraints_func=cf)
        elif kind == "nsga2":
            sampler = optuna.samplers.NSGAIISampler(seed=seed, constraints_func=cf)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_init, multivariate=True,
                                                 constant_liar=q > 1, constraints_func=cf)
        self.problem = problem
        self.study = optuna.create_study(sampler=sampler, directions=["maximize"] * problem.n_objectives)
        self.dists = _optuna_distributions(problem)
        self.pending: list = []

    def ask(self, k):
        self.pending = [self.study.ask(self.dists) for _ in range(k)]
        return [dict(t.params) for t in self.pending]

    def _split(self, y):
        """(ok, objective values, {constraint name: value})."""
        m = self.problem.n_objectives
        ok = all(math.isfinite(v) for v in y)
        return ok, (list(y[:m]) if ok else None), ({f"c{j}": v for j, v in enumerate(y[m:])} if ok else {})

    def tell(self, params, outcomes):
        import optuna

        if self.pending:
            for t, y in zip(self.pending, outcomes):
                ok, values, cons = self._split(y)
                if cons and self.new_api:
                    for key, v in cons.items():
                        t.set_constraint(key, v)
                elif cons:
                    t.set_user_attr("constraints", list(cons.values()))
                if ok:
                    self.study.tell(t, values)
                else:
                    self.study.tell(t, state=optuna.trial.TrialState.FAIL)
            self.pending = []
            return
        for p, y in zip(params, outcomes):
            ok, values, cons = self._split(y)
            kw = ({"constraints": cons} if self.new_api else {"user_attrs": {"constraints": list(cons.values())}}) \
                if cons else {}
            self.study.add_trial(optuna.trial.create_trial(
                params=p, distributions=self.dists, values=values, **kw,
                state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL))


class BoTorchMO(Method):
    """BoTorch's tutorial recipe on the unit-cube encoding (see the module docstring)."""

    def __init__(self, problem: MOProblem, seed: int, n_init: int, q: int):
        self.problem, self.space, self.seed, self.n_init = problem, problem.space(), seed, n_init
        self.init = initial_design(problem, n_init, seed)
        self.X: list[list[float]] = []
        self.Y: list[list[float]] = []

    def ask(self, k):
        if len(self.Y) < self.n_init:
            return self.init[len(self.Y): len(self.Y) + k]
        return self.space.decode(self._suggest(k))

    def _acquisition(self, model, X: torch.Tensor):
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
        from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
        from botorch.acquisition.objective import GenericMCObjective
        from botorch.sampling import SobolQMCNormalSampler

        m, c = self.problem.n_objectives, self.problem.n_constraints
        cons = [lambda Z, j=j: Z[..., j] for j in range(m, m + c)] or None  # feasible iff <= 0
        sampler = SobolQMCNormalSampler(sample_shape=torch.Size([128]))
        if m == 1:
            return qLogNoisyExpectedImprovement(model, X_baseline=X, sampler=sampler, prune_baseline=True,
                                                objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]),
                                                constraints=cons)
        return qLogNoisyExpectedHypervolumeImprovement(
            model, ref_point=list(self.problem.ref_point), X_baseline=X, sampler=sampler, prune_baseline=True,
            objective=IdentityMCMultiOutputObjective(outcomes=list(range(m))), constraints=cons)

    def _suggest(self, k: int) -> torch.Tensor:
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import ModelListGP, SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.optim import optimize_acqf
        from gpytorch.mlls import SumMarginalLogLikelihood

        torch.manual_seed(self.seed * 100003 + len(self.Y))
        X = torch.tensor(self.X, dtype=torch.float64)
        Y = torch.tensor(impute(self.problem, self.Y), dtype=torch.float64)  # (n, O)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ModelListGP(*[SingleTaskGP(X, Y[:, j:j + 1], outcome_transform=Standardize(m=1))
                                  for j in range(Y.shape[1])])
            fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
            bounds = torch.stack([torch.zeros(X.shape[-1]), torch.ones(X.shape[-1])]).to(X)
            cand, _ = optimize_acqf(self._acquisition(model, X), bounds=bounds, q=k, num_restarts=10,
                                    raw_samples=512, options={"batch_limit": 5, "maxiter": 200}, sequential=True)
        return cand.detach().clamp(0, 1)

    def tell(self, params, outcomes):
        self.X += self.space.encode(params).tolist()
        self.Y += [list(y) for y in outcomes]


def make(method: str, problem: MOProblem, seed: int, n_init: int, q: int) -> Method:
    """A sequential method's state for one run."""
    if method == "random":
        return RandomSearch(problem, seed, n_init, q)
    if method in ("optuna_gp_mo", "nsga2", "tpe_mo"):
        return OptunaMO(problem, seed, n_init, q, method)
    if method == "botorch_mo":
        return BoTorchMO(problem, seed, n_init, q)
    if method == "scbo":
        from benchmarks.scbo import SCBO

        return SCBO(problem, seed, n_init, q)  # ValueError for several objectives
    raise ValueError(f"unknown multi-outcome method {method!r}; expected one of {ALL_MO_METHODS}")
