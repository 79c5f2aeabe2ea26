"""SVGP acceptance benchmarks: latency, model quality, large-budget run.

    python -m benchmarks.svgp                 # full (hours on a 2-core CPU)
    python -m benchmarks.svgp --quick         # reduced sizes, for a smoke run
    python -m benchmarks.svgp --parts latency --ns 1000,20000
    python -m benchmarks.svgp --parts quality --ns 5000 --methods gpbo_exact,gpbo_svgp

Latency: one suggestion (fit + LogEI ascent, q=1) on Ackley-10 data in the
unit cube, each (method, n) in a child process with a wall-clock cap
(``--cap``, default 120 s) and its peak RSS. Quality: held-out RMSE and
Gaussian NLL (noise included) on 2000 uniform points; ``gpbo_svgp`` is the
default (M = 2048, closed-form q); ``gpbo_svgp:M:steps[:subset]`` is a
variant (M inducing points, Adam steps on Z and q, hyperparameter-subset
size), e.g. ``gpbo_svgp:256:100`` for the equal-M comparison with BoTorch's
``SingleTaskVariationalGP`` (M = 256). Large budget:
Ackley-20, q=50 Thompson batches, P = seeds batched in one engine call,
against random search and Optuna TPE.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time

import torch
from botorch.test_functions import Ackley, Hartmann

_D = 10
_M = 256


def ackley(U: torch.Tensor) -> torch.Tensor:
    """Ackley on [-32.768, 32.768]^d from the unit cube, (..., d) -> (...); maximise -f."""
    return -Ackley(dim=U.shape[-1])(U * 65.536 - 32.768)


def hartmann6_noisy(U: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return -Hartmann(dim=6)(U) + 0.05 * torch.randn(U.shape[:-1], generator=gen, dtype=U.dtype)


def _data(n: int, d: int, seed: int, f=ackley):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(1, n, d, generator=g, dtype=torch.float64)
    return X, f(X)


def one_latency(method: str, n: int) -> dict:
    """Time one suggestion of ``method`` at n points (run in a child process)."""
    X, Y = _data(n, _D, 0)
    t0 = time.perf_counter()
    if method.startswith("gpbo"):
        from gpbo.engine import suggest
        suggest(X, Y, settings={"model": method.split("_")[1]})
    else:
        _botorch_suggest(X[0], Y[0].unsqueeze(-1), variational=method == "botorch_svgp")
    return {"seconds": time.perf_counter() - t0,
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _botorch_model(X, Y, variational: bool):
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP, SingleTaskVariationalGP
    from botorch.models.transforms import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood, VariationalELBO
    if variational:
        model = SingleTaskVariationalGP(X, Y, inducing_points=min(_M, len(X)),
                                        outcome_transform=Standardize(1))
        mll = VariationalELBO(model.likelihood, model.model, num_data=len(X))
    else:
        model = SingleTaskGP(X, Y, outcome_transform=Standardize(1))
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
    fit_gpytorch_mll(mll)
    return model


def _botorch_suggest(X, Y, variational: bool):
    from botorch.acquisition import LogExpectedImprovement
    from botorch.optim import optimize_acqf
    model = _botorch_model(X, Y, variational)
    bounds = torch.stack([torch.zeros(X.shape[-1]), torch.ones(X.shape[-1])]).to(X)
    optimize_acqf(LogExpectedImprovement(model, Y.max()), bounds, q=1,
                  num_restarts=10, raw_samples=512)


def latency(ns: list[int], methods: list[str], cap: float) -> list[dict]:
    rows = []
    for n in ns:
        for method in methods:
            cmd = [sys.executable, "-m", "benchmarks.svgp", "--one", method, str(n)]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=cap)
                row = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {
                    "error": out.stderr.strip().splitlines()[-1][:120]}
            except subprocess.TimeoutExpired:
                row = {"error": f"exceeded {cap:.0f} s cap"}
            rows.append({"n": n, "method": method, **row})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _scores(mean: torch.Tensor, var: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    rmse = (mean - y).pow(2).mean().sqrt()
    nll = (0.5 * torch.log(2 * math.pi * var) + 0.5 * (mean - y).pow(2) / var).mean()
    return float(rmse), float(nll)


def _svgp_variant(X: torch.Tensor, Y: torch.Tensor, method: str):
    """``gpbo_svgp:M:steps[:subset]``: gpbo's SVGP with M inducing points, that many
    Adam steps and (optionally) that size of the hyperparameter subset."""
    from gpbo.models.variational import SVGP
    M, steps, *subset = (int(v) for v in method.split(":")[1:])
    return SVGP.fit(X, Y, num_inducing=M, steps=steps, **({"hyper_subset": subset[0]} if subset else {}))


def quality(ns: list[int], methods: list[str]) -> list[dict]:
    from gpbo.models.select import fit_surrogate
    rows = []
    for name, d in (("ackley10", 10), ("hartmann6_noisy", 6)):
        gen = torch.Generator().manual_seed(1)
        f = ackley if name == "ackley10" else (lambda U: hartmann6_noisy(U, gen))
        for n in ns:
            X, Y = _data(n, d, 0, f)
            Xt, Yt = _data(2000, d, 1, f)
            for method in methods:
                t0 = time.perf_counter()
                if method.startswith("gpbo"):
                    m = (_svgp_variant(X, Y, method) if method.startswith("gpbo_svgp:")
                         else fit_surrogate(X, Y, model=method.split("_")[1]))
                    post = m.posterior(Xt.transpose(0, 1).unsqueeze(-2))
                    mean, var = post.mean[:, 0, 0], post.variance[:, 0, 0] + m.noise * m.y_std**2
                else:
                    model = _botorch_model(X[0], Y[0].unsqueeze(-1), variational=True)
                    with torch.no_grad():
                        p = model.posterior(Xt[0], observation_noise=True)
                    mean, var = p.mean.squeeze(-1), p.variance.squeeze(-1)
                rmse, nll = _scores(mean, var, Yt[0])
                rows.append({"problem": name, "n": n, "method": method, "rmse": rmse, "nll": nll,
                             "fit_s": time.perf_counter() - t0})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def large_budget(seeds: int, budget: int, q: int, d: int = 20,
                 methods: tuple[str, ...] = ("gpbo", "random", "tpe")) -> dict:
    """gpbo (auto switch, Thompson) vs random search vs Optuna TPE on Ackley-d.

    Each method can run in its own process (``--methods``); the random numbers
    do not depend on which methods run.
    """
    gen = torch.Generator().manual_seed(0)
    X0 = torch.rand(seeds, q, d, generator=gen, dtype=torch.float64)  # gpbo's first batch
    runners = {  # each returns the best value per seed
        "gpbo": lambda t0: _large_gpbo(X0, budget, q, t0),
        "random": lambda t0: [float(-ackley(torch.rand(budget, d, generator=gen, dtype=torch.float64)).max())
                              for _ in range(seeds)],
        "tpe": lambda t0: _large_tpe(seeds, budget, q, d, t0),
    }
    out: dict = {"budget": budget, "q": q, "seeds": seeds}
    for method in methods:
        t0 = time.perf_counter()
        best = runners[method](t0)
        out.update({method: best, f"{method}_regret_median": float(torch.tensor(best).median()),
                    f"{method}_wall_s": time.perf_counter() - t0})
    return out


def _large_gpbo(X: torch.Tensor, budget: int, q: int, t0: float) -> list[float]:
    from gpbo.engine import suggest
    Y, model = ackley(X), None
    while X.shape[1] < budget:
        out = suggest(X, Y, q=q, seed=X.shape[1], warm_start=model, settings={"acquisition": "thompson"})
        model, X = out.model, torch.cat([X, out.candidates], 1)
        Y = torch.cat([Y, ackley(out.candidates)], 1)
        _progress(f"gpbo n={X.shape[1]} {type(model).__name__} median best {float(-Y.max(-1).values.median()):.3f}", t0)
    return (-Y.max(-1).values).tolist()


def _large_tpe(seeds: int, budget: int, q: int, d: int, t0: float) -> list[float]:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best = []
    for s in range(seeds):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=s, constant_liar=True))
        for _ in range(budget // q):
            trials = [study.ask() for _ in range(q)]
            for t in trials:
                x = torch.tensor([[t.suggest_float(f"x{i}", 0, 1) for i in range(d)]], dtype=torch.float64)
                study.tell(t, float(-ackley(x)))
        best.append(study.best_value)
        _progress(f"tpe seed {s}: {study.best_value:.3f}", t0)
    return best


def _progress(message: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f} s] {message}", file=sys.stderr, flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--one", nargs=2, metavar=("METHOD", "N"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parts", default="latency,quality,large")
    p.add_argument("--ns", default=None)
    p.add_argument("--cap", type=float, default=120.0)
    p.add_argument("--methods", default=None, help="comma-separated subset of the methods")
    a = p.parse_args()
    torch.set_num_threads(1)  # 2 threads on the 2-core CPU under load: 25x slower SVGP fit
    if a.one:
        print(json.dumps(one_latency(a.one[0], int(a.one[1]))))
        return
    import botorch
    import gpytorch
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "cpu": platform.processor() or platform.machine(),
                      "torch": torch.__version__, "gpytorch": gpytorch.__version__,
                      "botorch": botorch.__version__, "load": list(__import__("os").getloadavg())}))
    parts = a.parts.split(",")
    if "latency" in parts:
        ns = [int(x) for x in (a.ns or ("1000,5000" if a.quick else "1000,5000,20000,100000")).split(",")]
        methods = a.methods or "gpbo_svgp,gpbo_exact,botorch_svgp,botorch_exact"
        latency(ns, methods.split(","), a.cap)
    if "quality" in parts:
        ns = [int(x) for x in (a.ns or ("1000" if a.quick else "1000,5000")).split(",")]
        quality(ns, (a.methods or f"gpbo_exact,gpbo_svgp,gpbo_svgp:{_M}:100,botorch_svgp").split(","))
    if "large" in parts:
        methods = tuple((a.methods or "gpbo,random,tpe").split(","))
        print(json.dumps(large_budget(*((2, 500, 50) if a.quick else (4, 3000, 50)), methods=methods)))


if __name__ == "__main__":
    main()
