"""BoTorch acquisitions through gpbo against BoTorch's own loop with the same class.

Quality (issue 25: Hartmann6, 60 evaluations, 16 seeds) is the sweep, with
``botorch:<Class>`` (the class through gpbo's engine, seeds batched) beside
``botorch_loop:<Class>`` (:class:`BoTorchClassLoop`: SingleTaskGP refit each
step + the class + ``optimize_acqf``)::

    python -m benchmarks.sweep --problems hartmann6 --budget 60 --seeds 16 \\
        --methods gpbo,botorch:qKnowledgeGradient,botorch_loop:qKnowledgeGradient,\\
botorch:qLowerBoundMaxValueEntropy,botorch_loop:qLowerBoundMaxValueEntropy --out benchmarks/results/botorch_acq

Time per suggestion, side by side in one process (this module)::

    python -m benchmarks.botorch_acq --classes qKnowledgeGradient,qLowerBoundMaxValueEntropy --n 20 --reps 3

Both sides use the class's BoTorch defaults (qKG: 64 fantasies), the same
defaults for the arguments gpbo fills (`benchmarks.methods.botorch_options`,
256-sample seeded Sobol samplers, 512 Sobol candidates plus the observations
for MES/GIBBON) and the same search sizes (10 restarts, 512 raw samples).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from typing import Any

import torch

from benchmarks.methods import Method, botorch_options, impute, initial_design
from benchmarks.problems import Problem, get

N_SAMPLES, N_CANDIDATES, N_OPTIMA = 256, 512, 16


def botorch_class_acqf(cls_name: str, model, X: torch.Tensor, Y: torch.Tensor, seed: int):
    """``cls_name`` on a BoTorch model, its arguments filled as `gpbo.acquisition.botorch` fills them."""
    import inspect

    from botorch.acquisition.acquisition import OneShotAcquisitionFunction
    from botorch.acquisition.utils import get_optimal_samples
    from botorch.sampling import SobolQMCNormalSampler

    from gpbo.acquisition.botorch_classes import _resolve_class

    cls = _resolve_class(cls_name)
    params = inspect.signature(cls.__init__).parameters
    args: dict[str, Any] = dict(botorch_options(cls_name))
    d = X.shape[-1]
    bounds = torch.stack([torch.zeros(d), torch.ones(d)]).to(X)
    n_fant = params["num_fantasies"].default if issubclass(cls, OneShotAcquisitionFunction) else None
    sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(N_CANDIDATES, dtype=torch.float64).to(X)
    fill = {
        "best_f": lambda: Y.max(), "X_baseline": lambda: X,
        "sampler": lambda: SobolQMCNormalSampler(torch.Size([n_fant or N_SAMPLES]), seed=seed),
        "candidate_set": lambda: torch.cat([sobol, X]), "mc_points": lambda: sobol,
    }
    if "optimal_inputs" in params:
        args["optimal_inputs"], args["optimal_outputs"] = get_optimal_samples(model, bounds, num_optima=N_OPTIMA)
    for name, make in fill.items():
        if name in params and name not in args:
            args[name] = make()
    return cls(model, **args)


def botorch_suggest(cls_name: str, X: torch.Tensor, Y: torch.Tensor, q: int, seed: int) -> torch.Tensor:
    """One BoTorch suggestion: SingleTaskGP fitted from scratch, the class, ``optimize_acqf``."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SingleTaskGP(X, Y.unsqueeze(-1), outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        acqf = botorch_class_acqf(cls_name, model, X, Y, seed)
        bounds = torch.stack([torch.zeros(X.shape[-1]), torch.ones(X.shape[-1])]).to(X)
        cand, _ = optimize_acqf(acqf, bounds=bounds, q=q, num_restarts=10, raw_samples=512)
    return cand.detach().clamp(0, 1)


class BoTorchClassLoop(Method):
    """``botorch_loop:<Class>``: BoTorch's standard loop with that acquisition class, on the unit-cube encoding."""

    def __init__(self, problem: Problem, seed: int, n_init: int, q: int, cls_name: str):
        self.space, self.seed, self.n_init, self.cls = problem.space(), seed, n_init, cls_name
        self.init = initial_design(problem, n_init, seed)
        self.X: list[list[float]] = []
        self.y: list[float] = []

    def ask(self, k):
        if len(self.y) < self.n_init:
            return self.init[len(self.y): len(self.y) + k]
        X = torch.tensor(self.X, dtype=torch.float64)
        Y = -torch.tensor(impute(self.y), dtype=torch.float64)  # maximise
        return self.space.decode(botorch_suggest(self.cls, X, Y, k, self.seed * 100003 + len(self.y)))

    def tell(self, params, values):
        self.X += self.space.encode(params).tolist()
        self.y += list(values)


def _data(problem: Problem, n: int, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, n, d) Sobol designs of ``problem`` and their negated values (P, n), one per seed."""
    space = problem.space()
    X = torch.stack([space.encode(initial_design(problem, n, s)) for s in seeds]).to(torch.float64)
    Y = -torch.tensor([[float(problem.fn(p)) for p in space.decode(x)] for x in X], dtype=torch.float64)
    return X, Y


def time_per_suggestion(cls_name: str, problem: Problem, n: int, reps: int, P: int) -> dict[str, float]:
    """Median seconds per suggestion: BoTorch's loop, gpbo (P = 1) and gpbo with P problems batched."""
    from gpbo import engine
    from gpbo.acquisition import botorch

    settings = {"acquisition": botorch(cls_name, **botorch_options(cls_name))}
    X, Y = _data(problem, n, list(range(max(P, reps))))
    out: dict[str, list[float]] = {"botorch": [], "gpbo_p1": [], f"gpbo_p{P}_per_problem": []}
    for r in range(reps):
        t0 = time.perf_counter()
        botorch_suggest(cls_name, X[r], Y[r], 1, seed=r)
        t1 = time.perf_counter()
        engine.suggest(X[r:r + 1], Y[r:r + 1], q=1, seed=r, settings=settings)
        t2 = time.perf_counter()
        engine.suggest(X[:P], Y[:P], q=1, seed=r, settings=settings)
        t3 = time.perf_counter()
        out["botorch"].append(t1 - t0)
        out["gpbo_p1"].append(t2 - t1)
        out[f"gpbo_p{P}_per_problem"].append((t3 - t2) / P)
    med = {k: statistics.median(v) for k, v in out.items()}
    med.update({f"ratio_{k}": med[k] / med["botorch"] for k in list(med) if k != "botorch"})
    return med


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.botorch_acq", description=__doc__.split("\n")[0])
    ap.add_argument("--classes", default="qKnowledgeGradient,qLowerBoundMaxValueEntropy")
    ap.add_argument("--problem", default="hartmann6")
    ap.add_argument("--n", type=int, default=20, help="observations per problem")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--P", type=int, default=4, help="problems batched in gpbo's second timing")
    a = ap.parse_args(argv)
    from benchmarks.latency import environment

    result = {"env": environment(), "args": vars(a), "timings": {}}
    for cls_name in a.classes.split(","):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result["timings"][cls_name] = time_per_suggestion(cls_name, get(a.problem), a.n, a.reps, a.P)
        print(cls_name, json.dumps(result["timings"][cls_name]), flush=True)
    return result


if __name__ == "__main__":
    main()
