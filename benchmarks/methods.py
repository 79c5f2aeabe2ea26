"""The optimisers the sweep compares, behind one small ask/tell interface.

Sequential methods (one object per run) follow :class:`Method`:
``ask(k) -> list[params]`` and ``tell(params_list, values)``; a value of NaN
is a failed evaluation. ``tell`` without a preceding ``ask`` replays history
(used when a killed sweep resumes).

gpbo is different: :func:`benchmarks.sweep.run_gpbo_group` runs many runs
(seeds x problems that share one encoded space) through ONE
``gpbo.engine.suggest`` call per iteration, with the method's `gpbo.Settings`
(:func:`gpbo_settings`).

Every method gets the same initial-design size ``n_init``; gpbo and BoTorch
also get the same scrambled-Sobol initial points (:func:`initial_design`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import warnings
from typing import Any

import numpy as np
import torch

from benchmarks.problems import Cat, Int, Problem, Real
from gpbo.acquisition import UCB, LogEI, PosteriorMean, RoundRobin, ThompsonSampling
from gpbo.settings import Settings


@functools.cache  # loaded once, not at every engine call
def _example_cost_ei():
    """The researcher's example (``examples/custom_acquisition.py``): cost-aware
    LogEI with cost ``exp(3 u1)`` on the first encoded dimension."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "custom_acquisition.py"
    spec = importlib.util.spec_from_file_location("gpbo_example_custom_acquisition", path)
    ca = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ca)
    return ca.CostAwareLogEI(ca.log_cost)


def _log_ei_ucb_ts() -> RoundRobin:
    """LogEI, UCB and Thompson sampling taking turns (measured, not the default)."""
    return RoundRobin((LogEI(), UCB(), ThompsonSampling()))


def _log_ei_ucb_pm() -> RoundRobin:
    """LogEI, UCB and the posterior mean taking turns (measured, not the default)."""
    return RoundRobin((LogEI(), UCB(), PosteriorMean()))


# method -> its settings fields other than the base's: an acquisition (a registry name of
# gpbo.acquisition, or a factory of an acquisition object) and other fields.
# "gpbo" is the engine's default: LogEI until 2026-11-27, 23:50 UTC, then "log_ei_ucb" until
# 2026-12-05, then "log_aei_ucb" (gpbo_log_ei_ucb is the previous default)
GPBO_METHODS: dict[str, dict[str, Any]] = {
    "gpbo": {}, "gpbo_logei": {"acquisition": "log_ei"}, "gpbo_aei": {"acquisition": "log_aei"},
    "gpbo_ucb": {"acquisition": "ucb"}, "gpbo_log_ei_ucb": {"acquisition": "log_ei_ucb"},
    "gpbo_log_ei_ucb_ts": {"acquisition": _log_ei_ucb_ts}, "gpbo_log_ei_ucb_pm": {"acquisition": _log_ei_ucb_pm},
    "gpbo_qlognei": {"acquisition": "qlog_nei"}, "gpbo_thompson": {"acquisition": "thompson"},
    "gpbo_costei": {"acquisition": _example_cost_ei}, "gpbo_nowarp": {"warp": "none"},
}
SEQUENTIAL = ("random", "tpe", "optuna_gp", "botorch", "botorch_qlognei", "hebo", "skopt")
ALL_METHODS = (*GPBO_METHODS, *SEQUENTIAL)
BOTORCH_PREFIX, BOTORCH_LOOP_PREFIX = "botorch:", "botorch_loop:"
"""``botorch:<Class>``: that BoTorch acquisition through gpbo's engine (`gpbo.acquisition.botorch`,
batched like every gpbo method); ``botorch_loop:<Class>``: the same class in BoTorch's own loop
(SingleTaskGP + ``optimize_acqf``, one run at a time)."""


def is_gpbo(method: str) -> bool:
    """Whether ``method`` runs through gpbo's engine (a :data:`GPBO_METHODS` name or ``botorch:<Class>``)."""
    return method in GPBO_METHODS or method.startswith(BOTORCH_PREFIX)


def is_known(method: str) -> bool:
    """Whether ``method`` names a single-objective method of the sweep."""
    return method in ALL_METHODS or method.startswith((BOTORCH_PREFIX, BOTORCH_LOOP_PREFIX))


def gpbo_settings(method: str, base: Settings | None = None) -> Settings:
    """The `gpbo.Settings` of a gpbo method: ``base`` (default: the defaults) with the method's fields.

    ``base`` is how an ablation (``benchmarks/ablations.py``) runs through the sweep: ``"gpbo"`` is
    ``base`` itself, the other methods change their own fields of it.
    """
    if method.startswith(BOTORCH_PREFIX):
        from gpbo.acquisition import botorch

        cls = method.removeprefix(BOTORCH_PREFIX)
        return (base or Settings()).replace(acquisition=botorch(cls, **botorch_options(cls)))
    changes = {k: v() if callable(v) else v for k, v in GPBO_METHODS[method].items()}
    return (base or Settings()).replace(**changes)


def botorch_options(cls: str) -> dict[str, Any]:
    """The class options of a ``botorch:`` / ``botorch_loop:`` method (the same for both): BoTorch's defaults
    except UCB's ``beta`` (required by BoTorch), 0.2 as in its tutorials."""
    return {"beta": 0.2} if "UpperConfidenceBound" in cls else {}


def initial_design(problem: Problem, n: int, seed: int) -> list[dict[str, Any]]:
    """n scrambled-Sobol points (seed ``seed``) decoded to params (snapped to levels)."""
    space = problem.space()
    U = torch.quasirandom.SobolEngine(space.dim, scramble=True, seed=seed).draw(n, dtype=torch.float64)
    return space.decode(U) if n else []


def impute(values: list[float]) -> np.ndarray:
    """Failed (NaN) values replaced by the worst finite one (0 if none)."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    return np.where(ok, v, v[ok].max() if ok.any() else 0.0)


class Method:
    def ask(self, k: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def tell(self, params: list[dict[str, Any]], values: list[float]) -> None:
        raise NotImplementedError


class RandomSearch(Method):
    """Point i of seed s is drawn from ``default_rng([s, i])``: resumable exactly."""

    def __init__(self, problem: Problem, seed: int, n_init: int, q: int):
        self.problem, self.seed, self.n = problem, seed, 0

    def ask(self, k):
        out = [self.problem.sample(np.random.default_rng([self.seed, self.n + i])) for i in range(k)]
        return out

    def tell(self, params, values):
        self.n += len(params)


def _optuna_distributions(problem: Problem) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, s in problem.params.items():
        if isinstance(s, Real):
            out[name] = FloatDistribution(s.low, s.high, log=s.log)
        elif isinstance(s, Int):
            out[name] = IntDistribution(s.low, s.high, log=s.log)
        else:
            out[name] = CategoricalDistribution(list(s.choices))
    return out


class OptunaMethod(Method):
    """Optuna TPE (``tpe``) or GPSampler (``optuna_gp``); batches ask k trials
    before telling (TPE with ``constant_liar=True``)."""

    def __init__(self, problem: Problem, seed: int, n_init: int, q: int, kind: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if kind == "tpe":
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_init, constant_liar=q > 1)
        else:
            sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_init)
        self.study = optuna.create_study(sampler=sampler)
        self.dists = _optuna_distributions(problem)
        self.pending: list = []

    def ask(self, k):
        self.pending = [self.study.ask(self.dists) for _ in range(k)]
        return [dict(t.params) for t in self.pending]

    def tell(self, params, values):
        import optuna

        if self.pending:
            for t, v in zip(self.pending, values):
                if math.isfinite(v):
                    self.study.tell(t, v)
                else:
                    self.study.tell(t, state=optuna.trial.TrialState.FAIL)
            self.pending = []
            return
        for p, v in zip(params, values):
            ok = math.isfinite(v)
            self.study.add_trial(optuna.trial.create_trial(
                params=p, distributions=self.dists, value=v if ok else None,
                state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL))


class BoTorchLoop(Method):
    """BoTorch's standard loop on the unit-cube encoding: SingleTaskGP (refit
    from scratch each step) + LogEI (q = 1) or qLogNEI (q > 1 or
    ``always_nei``) + ``optimize_acqf(num_restarts=10, raw_samples=512)``.
    Integers and categoricals are relaxed to [0, 1] and rounded by decoding."""

    def __init__(self, problem: Problem, seed: int, n_init: int, q: int, always_nei: bool = False):
        self.space, self.seed, self.n_init, self.nei = problem.space(), seed, n_init, always_nei
        self.init = initial_design(problem, n_init, seed)
        self.X: list[list[float]] = []
        self.y: list[float] = []

    def ask(self, k):
        if len(self.y) < self.n_init:
            return self.init[len(self.y): len(self.y) + k]
        return self.space.decode(self._suggest(k))

    def _suggest(self, k: int) -> torch.Tensor:
        from botorch.acquisition import LogExpectedImprovement, qLogNoisyExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.optim import optimize_acqf
        from gpytorch.mlls import ExactMarginalLogLikelihood

        torch.manual_seed(self.seed * 100003 + len(self.y))
        X = torch.tensor(self.X, dtype=torch.float64)
        Y = -torch.tensor(impute(self.y), dtype=torch.float64).unsqueeze(-1)  # maximise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            if k == 1 and not self.nei:
                acqf = LogExpectedImprovement(model, best_f=Y.max())
            else:
                acqf = qLogNoisyExpectedImprovement(model, X_baseline=X, prune_baseline=True)
            bounds = torch.stack([torch.zeros(X.shape[-1]), torch.ones(X.shape[-1])]).to(X)
            cand, _ = optimize_acqf(acqf, bounds=bounds, q=k, num_restarts=10, raw_samples=512)
        return cand.detach().clamp(0, 1)

    def tell(self, params, values):
        self.X += self.space.encode(params).tolist()
        self.y += list(values)


class HeboMethod(Method):
    """HEBO (``pip install --no-deps hebo`` + pymoo disjoint-set catboost)."""

    def __init__(self, problem: Problem, seed: int, n_init: int, q: int):
        from hebo.design_space.design_space import DesignSpace
        from hebo.optimizers.hebo import HEBO

        np.random.seed(seed)
        torch.manual_seed(seed)
        self.problem, spec = problem, []
        for name, s in problem.params.items():
            if isinstance(s, Cat):
                spec.append({"name": name, "type": "cat", "categories": [str(c) for c in s.choices]})
            elif isinstance(s, Int):
                spec.append({"name": name, "type": "pow_int" if s.log else "int", "lb": s.low, "ub": s.high})
            else:
                spec.append({"name": name, "type": "pow" if s.log else "num", "lb": s.low, "ub": s.high})
        self.opt = HEBO(DesignSpace().parse(spec), rand_sample=n_init, scramble_seed=seed)

    def _from_row(self, row) -> dict[str, Any]:
        out = {}
        for name, s in self.problem.params.items():
            v = row[name]
            if isinstance(s, Cat):
                out[name] = next(c for c in s.choices if str(c) == str(v))
            elif isinstance(s, Int):
                out[name] = int(min(s.high, max(s.low, round(float(v)))))
            else:
                out[name] = float(min(s.high, max(s.low, float(v))))
        return out

    def ask(self, k):
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # HEBO prints jitter
            warnings.simplefilter("ignore")
            self.last = self.opt.suggest(n_suggestions=k)
        return [self._from_row(r) for _, r in self.last.iterrows()]

    def tell(self, params, values):
        import pandas as pd

        df = pd.DataFrame([{k: (str(v) if isinstance(self.problem.params[k], Cat) else v)
                            for k, v in p.items()} for p in params])
        y = np.asarray(values, dtype=float).reshape(-1, 1)
        worst = np.nanmax(np.r_[self.opt.y.ravel(), y.ravel()]) if np.isfinite(y).any() or len(self.opt.y) else 0.0
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            self.opt.observe(df, np.where(np.isfinite(y), y, worst))


class SkoptMethod(Method):
    """scikit-optimize's ``Optimizer`` (GP, gp_hedge; its defaults)."""

    def __init__(self, problem: Problem, seed: int, n_init: int, q: int):
        from skopt import Optimizer
        from skopt.space import Categorical, Integer
        from skopt.space import Real as SkReal

        self.names, dims = list(problem.params), []
        for s in problem.params.values():
            if isinstance(s, Cat):
                dims.append(Categorical(list(s.choices)))
            elif isinstance(s, Int):
                dims.append(Integer(s.low, s.high, prior="log-uniform" if s.log else "uniform"))
            else:
                dims.append(SkReal(s.low, s.high, prior="log-uniform" if s.log else "uniform"))
        self.opt = Optimizer(dims, base_estimator="GP", n_initial_points=n_init, random_state=seed)
        self.y: list[float] = []

    def ask(self, k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pts = self.opt.ask(n_points=k) if k > 1 else [self.opt.ask()]
        return [dict(zip(self.names, (v.item() if hasattr(v, "item") else v for v in p))) for p in pts]

    def tell(self, params, values):
        self.y += list(values)
        worst = float(impute(self.y).max())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.opt.tell([[p[n] for n in self.names] for p in params],
                          [v if math.isfinite(v) else worst for v in values])


def make(method: str, problem: Problem, seed: int, n_init: int, q: int) -> Method:
    """A sequential method's state for one run."""
    if method == "random":
        return RandomSearch(problem, seed, n_init, q)
    if method in ("tpe", "optuna_gp"):
        return OptunaMethod(problem, seed, n_init, q, method)
    if method in ("botorch", "botorch_qlognei"):
        return BoTorchLoop(problem, seed, n_init, q, always_nei=method == "botorch_qlognei")
    if method.startswith(BOTORCH_LOOP_PREFIX):
        from benchmarks.botorch_acq import BoTorchClassLoop

        return BoTorchClassLoop(problem, seed, n_init, q, method.removeprefix(BOTORCH_LOOP_PREFIX))
    if method == "hebo":
        return HeboMethod(problem, seed, n_init, q)
    if method == "skopt":
        return SkoptMethod(problem, seed, n_init, q)
    raise ValueError(f"unknown method {method!r}; expected one of {ALL_METHODS}")


def available(method: str) -> bool:
    """False for the optional methods whose package is missing."""
    mod = {"hebo": "hebo", "skopt": "skopt"}.get(method)
    if mod is None:
        return True
    try:
        __import__(mod)
    except Exception:  # noqa: BLE001 - broken installs count as missing
        return False
    return True
