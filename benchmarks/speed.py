"""Speed: suggestion latency against n and d, and batched-sweep throughput.

    python -m benchmarks.speed [--part latency|throughput|all] [--device cpu|cuda] [--quick]

**Latency** (``--n-list 20,100,300,1000`` at d = ``--n-d`` (6), ``--d-list
2,6,20,50`` at n = 100): the objective is Styblinski-Tang on [0,1]^d (mapped
to [-5,5]^d), the data n scrambled-Sobol points, identical for every method.
Per config and rep:

- gpbo: ``gpbo.engine.suggest`` with P = 1, q = 1, LogEI and the exact GP;
  one untimed call on the first n - 1 points first, then the timed call on
  all n warm-starts from its model (as ``Optimizer.ask`` does between asks;
  until 2026-11-27 21:30 UTC the untimed call saw all n points, so the timed
  fit started at its optimum);
- gpbo_svgp: the same with ``model="svgp"`` (the variational GP);
- gpbo_eager: gpbo with ``GPBO_CUDA_GRAPHS=0``: on CUDA, the L-BFGS-B
  iterations launched one kernel at a time instead of replayed from a CUDA
  graph (see :mod:`gpbo.optim.graphed`); the same as gpbo on the CPU;
- BoTorch: SingleTaskGP + fit_gpytorch_mll + LogEI + optimize_acqf(10
  restarts, 512 raw samples), fitted from scratch (the standard recipe);
- Optuna: GPSampler, a study holding the n trials; the time of one
  ``study.ask(distributions)`` (each rep uses a fresh study and sampler, so
  nothing is cached between reps). Skipped for n > ``--optuna-max-n``.

Ratios gpbo / method and gpbo_svgp / method (below 1: gpbo faster) of the
medians.

**Throughput**: P Hartmann6 replicas (``--P-list 1,8,64,256``), each with
its own 10-point Sobol design (seed = replica), then ``--iters`` (50) BO
iterations with q = 1:

- batched: ONE ``suggest`` call per iteration on (P, n, 6), warm-started;
- sequential gpbo: P = 1 runs one after the other; BoTorch's loop and
  Optuna's GPSampler likewise. A sequential run's cost does not depend on
  how many others follow it, so ``--seq-reps`` replicas are timed and the
  per-replica time is multiplied by P (extrapolation, stated in the output).

Reported as time per replica per iteration and the speed-ups of the batched
run. Both parts first run each method once, untimed, on small data
(:func:`warm_up`), so CUDA and library initialisation is not counted.
Results: a markdown report on stdout and ``benchmarks/results/speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path
from unittest import mock

import torch

from benchmarks.latency import environment
from benchmarks.problems import hartmann6_tensor

RESULTS = Path(__file__).resolve().parent / "results"


def styblinski_tang(U: torch.Tensor) -> torch.Tensor:
    X = 10.0 * U - 5.0
    return 0.5 * (X**4 - 16 * X**2 + 5 * X).sum(-1)


def sobol_designs(P: int, n: int, d: int, device) -> torch.Tensor:
    """(P, n, d) float64: problem p's points are the scrambled Sobol sequence of seed p."""
    return torch.stack([torch.quasirandom.SobolEngine(d, scramble=True, seed=p).draw(n, dtype=torch.float64)
                        for p in range(P)]).to(device)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def gpbo_step(X, Y, model=None, seed=0, kind="auto", graphs=True):
    """One gpbo suggestion; X (P,n,d), Y (P,n) minimised; kind: engine's ``model``;
    graphs: replay the optimisers' iterations from CUDA graphs (CUDA only).

    Returns (cand (P,1,d), model)."""
    from gpbo import engine

    with mock.patch.dict(os.environ, {"GPBO_CUDA_GRAPHS": "1" if graphs else "0"}):
        s = engine.suggest(X, -Y, q=1, seed=seed, warm_start=model, settings={"acquisition": "log_ei", "model": kind})
    return s.candidates, s.model


def botorch_step(X, Y):
    """BoTorch's standard recipe on X (n,d), Y (n,) minimised -> (1, d)."""
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    train_Y = -Y.unsqueeze(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SingleTaskGP(X, train_Y, outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        acqf = LogExpectedImprovement(model, best_f=train_Y.max())
        d = X.shape[-1]
        bounds = torch.stack([torch.zeros(d), torch.ones(d)]).to(X)
        cand, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=10, raw_samples=512)
    return cand.detach()


def optuna_study(X, Y, seed=0):
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    d = X.shape[-1]
    dists = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(d)}
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed, n_startup_trials=1))
    study.add_trials([optuna.trial.create_trial(params=dict(zip(dists, x)), distributions=dists, value=y)
                      for x, y in zip(X.tolist(), Y.tolist())])
    return study, dists


# latency method -> (engine.suggest(settings={"model": ...}), CUDA graphs)
GPBO_KINDS = {"gpbo": ("exact", True), "gpbo_svgp": ("svgp", True), "gpbo_eager": ("exact", False)}


def warm_up(device, methods) -> None:
    """One untimed small run of each method on ``device``: library and CUDA
    initialisation (kernel loading, cuBLAS/cuSOLVER handles) is not counted."""
    X = sobol_designs(1, 12, 3, device)[0]
    Y = styblinski_tang(X)
    if any(m in methods for m in GPBO_KINDS):
        batched_run(1, 2, device)
        gpbo_step(X[None], Y[None], kind="svgp")
        gpbo_step(X[None], Y[None], graphs=False)
    if "botorch" in methods:
        botorch_step(X, Y)


def latency(n_list, d_list, reps, device, optuna_max_n, methods, n_d=6) -> list[dict]:
    warm_up(device, methods)
    configs = [(n, n_d) for n in n_list]
    configs += [(100, d) for d in d_list if (100, d) not in configs]
    rows = []
    for n, d in configs:
        X = sobol_designs(1, n + reps, d, "cpu")[0]
        Y = styblinski_tang(X)
        times = {m: [] for m in methods}
        for r in range(reps):
            Xr, Yr = X[: n + r], Y[: n + r]
            for m, (kind, graphs) in GPBO_KINDS.items():
                if m in methods:
                    Xg, Yg = Xr.to(device)[None], Yr.to(device)[None]
                    # untimed: the previous ask
                    _, model = gpbo_step(Xg[:, :-1], Yg[:, :-1], seed=r, kind=kind, graphs=graphs)
                    times[m].append(_time(lambda: gpbo_step(Xg, Yg, model, seed=r + 1, kind=kind, graphs=graphs),
                                          device)[0])
            if "botorch" in methods:
                Xb, Yb = Xr.to(device), Yr.to(device)
                times["botorch"].append(_time(lambda: botorch_step(Xb, Yb), device)[0])
            if "optuna" in methods and n <= optuna_max_n:
                study, dists = optuna_study(Xr, Yr, seed=r)
                times["optuna"].append(_time(lambda: study.ask(dists), "cpu")[0])
        med = {m: statistics.median(t) for m, t in times.items() if t}
        row = {"n": n, "d": d, "median_s": med, "all_s": times}
        row["ratio"] = {f"{a}/{b}": med[a] / med[b] for a in GPBO_KINDS for b in ("botorch", "optuna", "gpbo_eager")
                        if a in med and b in med and a != b}
        rows.append(row)
        print(f"latency n={n} d={d}: " + ", ".join(f"{m} {v * 1e3:.0f} ms" for m, v in med.items()), flush=True)
    return rows


def _hartmann_init(P, device, n0=10):
    X = sobol_designs(P, n0, 6, device)  # (P, n0, 6)
    return X, hartmann6_tensor(X.reshape(-1, 6)).reshape(P, n0)


def batched_run(P, iters, device):
    X, Y = _hartmann_init(P, device)
    model = None
    for it in range(iters):
        cand, model = gpbo_step(X, Y, model, seed=it)  # (P, 1, 6)
        y = hartmann6_tensor(cand.reshape(-1, 6)).reshape(P, 1)
        X, Y = torch.cat([X, cand], 1), torch.cat([Y, y], 1)
    return Y.min(1).values


def sequential_run(method, seed, iters, device):
    X, Y = _hartmann_init(seed + 1, device)
    X, Y = X[seed], Y[seed]
    model = None
    if method == "optuna":
        study, dists = optuna_study(X.cpu(), Y.cpu(), seed=seed)
    for it in range(iters):
        if method == "gpbo":
            cand, model = gpbo_step(X[None], Y[None], model, seed=it)
            cand = cand[0]
        elif method == "botorch":
            cand = botorch_step(X, Y)
        else:
            t = study.ask(dists)
            cand = torch.tensor([[t.params[f"x{i}"] for i in range(6)]], dtype=X.dtype, device=X.device)
        y = hartmann6_tensor(cand)
        if method == "optuna":
            study.tell(t, float(y[0]))
        X, Y = torch.cat([X, cand]), torch.cat([Y, y])
    return Y.min()


def throughput(P_list, iters, seq_reps, device, methods) -> dict:
    out = {"batched": {}, "sequential": {}}
    warm_up(device, methods)
    for P in P_list:
        wall, _ = _time(lambda: batched_run(P, iters, device), device)
        out["batched"][P] = {"wall_s": wall, "per_replica_iter_s": wall / (P * iters)}
        print(f"batched P={P}: {wall:.1f} s, {wall / (P * iters) * 1e3:.2f} ms per replica-iteration", flush=True)
    for m in methods if seq_reps > 0 else ():  # --seq-reps 0: the batched runs only
        walls = [_time(lambda: sequential_run(m, s, iters, device), device)[0] for s in range(seq_reps)]
        per = statistics.mean(walls) / iters
        out["sequential"][m] = {"replicas_timed": seq_reps, "walls_s": walls, "per_replica_iter_s": per}
        print(f"sequential {m}: {per * 1e3:.1f} ms per replica-iteration ({seq_reps} replicas timed)", flush=True)
    out["speedup"] = {P: {m: s["per_replica_iter_s"] / b["per_replica_iter_s"] for m, s in out["sequential"].items()}
                      for P, b in out["batched"].items()}
    return out


def markdown(res: dict) -> str:
    lines = []
    if "latency" in res:
        rows = res["latency"]
        ms = [m for m in (*GPBO_KINDS, "botorch", "optuna") if any(m in r["median_s"] for r in rows)]
        rs = list(dict.fromkeys(k for r in rows for k in r["ratio"]))
        lines += ["| n | d | " + " | ".join(f"{m} median (ms)" for m in ms) + " | " + " | ".join(rs) + " |",
                  "|---:|---:|" + "---:|" * (len(ms) + len(rs))]
        for r in rows:
            med, rat = r["median_s"], r["ratio"]
            lines.append(f"| {r['n']} | {r['d']} | " + " | ".join(
                f"{med[m] * 1e3:.0f}" if m in med else "-" for m in ms) + " | " + " | ".join(
                f"{rat[k]:.2f}" if k in rat else "-" for k in rs) + " |")
    if "throughput" in res:
        t = res["throughput"]
        seq = list(t["sequential"])
        lines += ["", "| P | batched wall (s) | batched ms / replica / iter | "
                  + " | ".join(f"speed-up vs sequential {m}" for m in seq) + " |",
                  "|---:|---:|---:|" + "---:|" * len(seq)]
        for P, b in t["batched"].items():
            lines.append(f"| {P} | {b['wall_s']:.1f} | {b['per_replica_iter_s'] * 1e3:.2f} | "
                         + " | ".join(f"{t['speedup'][P][m]:.1f}x" for m in seq) + " |")
        lines += ["", "sequential ms / replica / iter: " + ", ".join(
            f"{m} {v['per_replica_iter_s'] * 1e3:.1f} ({v['replicas_timed']} replicas timed, x P extrapolated)"
            for m, v in t["sequential"].items())]
    return "\n".join(lines)


def _ints(csv: str) -> list[int]:
    return [int(x) for x in csv.split(",") if x.strip()]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.speed")
    ap.add_argument("--part", default="all", choices=("latency", "throughput", "all"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n-list", default="20,100,300,1000")
    ap.add_argument("--n-d", type=int, default=6, help="d of the --n-list configurations")
    ap.add_argument("--d-list", default="2,6,20,50", help="d values at n = 100 ('' for none)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--optuna-max-n", type=int, default=1000)
    ap.add_argument("--methods", default="gpbo,botorch,optuna",
                    help="gpbo, gpbo_svgp and gpbo_eager (latency only), botorch, optuna")
    ap.add_argument("--P-list", default="1,8,64,256")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seq-reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads for the whole process (gpbo's engine uses 1 on the CPU anyway)")
    ap.add_argument("--quick", action="store_true", help="n 20,100; d 2,6; 1 rep; P 1,8; 5 iterations")
    ap.add_argument("--out", default=str(RESULTS / "speed.json"),
                    help="JSON report (default: benchmarks/results/speed.json, ignored by git)")
    a = ap.parse_args(argv)
    if a.quick:
        a.n_list, a.d_list, a.reps, a.P_list, a.iters = "20,100", "2,6", 1, "1,8", 5
    methods = a.methods.split(",")
    if a.threads:
        torch.set_num_threads(a.threads)
    res = {"env": environment(), "args": vars(a)}
    if a.part in ("latency", "all"):
        res["latency"] = latency(_ints(a.n_list), _ints(a.d_list), a.reps, a.device, a.optuna_max_n, methods,
                                 a.n_d)
    if a.part in ("throughput", "all"):
        res["throughput"] = throughput(_ints(a.P_list), a.iters, a.seq_reps, a.device,
                                       [m for m in methods if m not in ("gpbo_svgp", "gpbo_eager")])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps(res["env"]))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
