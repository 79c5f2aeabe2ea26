"""One qLogNEHVI batch (2 objectives, n = 100, q = 4, d = 6): gpbo against BoTorch's recipe and Optuna, side by side.

BoTorch's recipe: a SingleTaskGP per outcome in a ModelListGP, fit_gpytorch_mll,
qLogNoisyExpectedHypervolumeImprovement (prune_baseline=True, 128 Sobol
samples), optimize_acqf with 10 restarts and 512 raw samples, the q points
jointly (``sequential=False``) and one at a time (``sequential=True``, the
tutorial's choice). gpbo: ``gpbo.suggest`` with two objectives (default
settings: qLogNEHVI), ``q_batch="joint"`` and ``"sequential"``. Optuna: its
GPSampler on a study with two ``directions`` holding the same n trials,
timed for q sequential suggestions (``study.ask()`` then the sampler's
``sample_relative`` for each, the last n + k trials' data; Optuna has no
q-batch). All fit cold, after one untimed warm-up call each; the methods
take turns going first. Prints the medians and the ratios to gpbo.

    python -m benchmarks.mo_latency --reps 3
    python -m benchmarks.mo_latency --replicas 64 --n 46 --reps 3   # a batched sweep's batch, per replica
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _problem(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    a = -(X - 0.3).pow(2).sum(-1) + 0.01 * torch.randn(n, generator=g, dtype=torch.float64)
    b = -(X - 0.7).pow(2).sum(-1) + 0.01 * torch.randn(n, generator=g, dtype=torch.float64)
    return X, torch.stack([a, b], -1)


def _branincurrin(n: int, seed: int, replicas: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, n, 2) scrambled-Sobol points of the unit square, one design per replica, and their BraninCurrin values (P, n, 2)."""
    from benchmarks.mo_problems import MO

    problem = MO["branincurrin"]
    lo = torch.tensor([p.low for p in problem.params.values()], dtype=torch.float64)
    hi = torch.tensor([p.high for p in problem.params.values()], dtype=torch.float64)
    X = torch.stack([torch.quasirandom.SobolEngine(2, scramble=True, seed=seed * 1000 + k).draw(n, dtype=torch.float64)
                     for k in range(replicas)])  # (P, n, 2)
    return X, problem.evaluate_batch(lo + X.reshape(-1, 2) * (hi - lo)).view(replicas, n, -1)


def gpbo_batch(X: torch.Tensor, Y: torch.Tensor, q: int, seed: int, q_batch: str) -> float:
    """One ``gpbo.suggest`` of q points for X (n, d) or P problems X (P, n, d)."""
    import gpbo
    from gpbo.outcomes import Outcomes

    X, Y = (X, Y) if X.dim() == 3 else (X.unsqueeze(0), Y.unsqueeze(0))
    start = time.perf_counter()
    gpbo.suggest(X, Y, q=q, seed=seed, settings={"outcomes": Outcomes(2, 0), "q_batch": q_batch})
    return time.perf_counter() - start


def optuna_sequential(X: torch.Tensor, Y: torch.Tensor, q: int, seed: int) -> float:
    """q suggestions of Optuna's GPSampler, one after another, on a study holding (X, Y) (maximised)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [f"x{j}" for j in range(X.shape[-1])]
    dists = {n: optuna.distributions.FloatDistribution(0.0, 1.0) for n in names}
    study = optuna.create_study(directions=["maximize"] * Y.shape[-1],
                                sampler=optuna.samplers.GPSampler(seed=seed, n_startup_trials=1))
    for x, y in zip(X.tolist(), Y.tolist()):
        study.add_trial(optuna.trial.create_trial(params=dict(zip(names, x)), distributions=dists, values=y))
    start = time.perf_counter()
    for _ in range(q):
        trial = study.ask(dists)  # the GP's suggestion, built on the trials so far (earlier asks running)
        assert len(trial.params) == len(names)
    return time.perf_counter() - start


def botorch_batch(X: torch.Tensor, Y: torch.Tensor, q: int, seed: int, sequential: bool) -> float:
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import ModelListGP, SingleTaskGP
    from botorch.optim import optimize_acqf
    from botorch.sampling import SobolQMCNormalSampler
    from botorch.utils.multi_objective.hypervolume import infer_reference_point
    from gpytorch.mlls import SumMarginalLogLikelihood

    start = time.perf_counter()
    model = ModelListGP(*[SingleTaskGP(X, Y[:, i:i + 1]) for i in range(Y.shape[-1])])
    fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
    acqf = qLogNoisyExpectedHypervolumeImprovement(
        model, ref_point=infer_reference_point(Y), X_baseline=X, prune_baseline=True,
        sampler=SobolQMCNormalSampler(torch.Size([128]), seed=seed),
    )
    bounds = torch.stack([torch.zeros(X.shape[-1]), torch.ones(X.shape[-1])]).to(X)
    optimize_acqf(acqf, bounds=bounds, q=q, num_restarts=10, raw_samples=512, sequential=sequential,
                  options={"batch_limit": 5, "maxiter": 200})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--d", type=int, default=6)
    parser.add_argument("--q", type=int, default=4)
    parser.add_argument("--skip-botorch-joint", action="store_true", help="leave out BoTorch's joint batch (the slowest)")
    parser.add_argument("--skip-botorch", action="store_true", help="leave out both BoTorch recipes")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every method (default: torch's)")
    parser.add_argument("--replicas", type=int, default=0,
                        help="P > 0: BraninCurrin (d = 2), one batched gpbo suggestion for P replicas (time per "
                             "replica) against BoTorch's sequential recipe on one replica")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.replicas > 0:
        replicas(args.replicas, args.n, args.q, args.reps)
        return
    runners = {
        "gpbo joint": lambda X, Y, r: gpbo_batch(X, Y, args.q, r, "joint"),
        "gpbo sequential": lambda X, Y, r: gpbo_batch(X, Y, args.q, r, "sequential"),
        "optuna GPSampler x q": lambda X, Y, r: optuna_sequential(X, Y, args.q, r),
    }
    if not args.skip_botorch:
        runners["botorch sequential"] = lambda X, Y, r: botorch_batch(X, Y, args.q, r, True)
    if not (args.skip_botorch or args.skip_botorch_joint):
        runners["botorch joint"] = lambda X, Y, r: botorch_batch(X, Y, args.q, r, False)
    times: dict[str, list[float]] = {name: [] for name in runners}
    X, Y = _problem(args.n, args.d, args.reps)
    for run in runners.values():  # warm-up: imports and first calls out of the timings
        run(X, Y, args.reps)
    for rep in range(args.reps):
        X, Y = _problem(args.n, args.d, rep)
        for name, run in list(runners.items())[:: 1 if rep % 2 == 0 else -1]:  # the methods take turns going first
            times[name].append(run(X, Y, rep))
        print(f"rep {rep}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"n={args.n}, d={args.d}, q={args.q}, {args.reps} reps, torch threads {torch.get_num_threads()}; medians:")
    for name, m in med.items():
        ratios = ", ".join(f"{g} / this {med[g] / m:.3f}" for g in ("gpbo joint", "gpbo sequential"))
        print(f"  {name:22s} {m:8.2f} s   ({ratios})")


def replicas(P: int, n: int, q: int, reps: int) -> None:
    """Per-replica time of one batch: gpbo batched over P BraninCurrin replicas against BoTorch on one."""
    gpbo_t, botorch_t = [], []
    for rep in range(reps):
        X, Y = _branincurrin(n, rep, P)
        gpbo_t.append(gpbo_batch(X, Y, q, rep, "sequential") / P)
        botorch_t.append(botorch_batch(X[0], Y[0], q, rep, True))
        print(f"rep {rep}: gpbo {gpbo_t[-1]:.3f} s per replica (P = {P}), BoTorch {botorch_t[-1]:.2f} s", flush=True)
    g, b = statistics.median(gpbo_t), statistics.median(botorch_t)
    print(f"BraninCurrin n={n}, q={q}, P={P}, {reps} reps, medians: gpbo {g:.3f} s per replica, "
          f"BoTorch sequential {b:.2f} s; BoTorch / gpbo {b / g:.1f}x")


if __name__ == "__main__":
    main()
