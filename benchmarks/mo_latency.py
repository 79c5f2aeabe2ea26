"""One qLogNEHVI batch (2 objectives, n = 100, q = 4, d = 6): gpbo against BoTorch's recipe, side by side.

BoTorch's recipe: a SingleTaskGP per outcome in a ModelListGP, fit_gpytorch_mll,
qLogNoisyExpectedHypervolumeImprovement (prune_baseline=True, 128 Sobol
samples), optimize_acqf with 10 restarts and 512 raw samples. gpbo:
``gpbo.suggest`` with two objectives (default settings: qLogNEHVI).
Both fit cold. Prints the medians and their ratio.

    python -m benchmarks.mo_latency --reps 3
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


def gpbo_batch(X: torch.Tensor, Y: torch.Tensor, q: int, seed: int) -> float:
    import gpbo
    from gpbo.outcomes import Outcomes

    start = time.perf_counter()
    gpbo.suggest(X.unsqueeze(0), Y.unsqueeze(0), q=q, seed=seed, settings={"outcomes": Outcomes(2, 0)})
    return time.perf_counter() - start


def botorch_batch(X: torch.Tensor, Y: torch.Tensor, q: int, seed: int) -> float:
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
    optimize_acqf(acqf, bounds=bounds, q=q, num_restarts=10, raw_samples=512, sequential=False,
                  options={"batch_limit": 5, "maxiter": 200})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--d", type=int, default=6)
    parser.add_argument("--q", type=int, default=4)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"gpbo": [], "botorch": []}
    for rep in range(args.reps):
        X, Y = _problem(args.n, args.d, rep)
        times["gpbo"].append(gpbo_batch(X, Y, args.q, rep))
        times["botorch"].append(botorch_batch(X, Y, args.q, rep))
        print(f"rep {rep}: gpbo {times['gpbo'][-1]:.2f} s, botorch {times['botorch'][-1]:.2f} s", flush=True)
    g, b = statistics.median(times["gpbo"]), statistics.median(times["botorch"])
    print(f"median gpbo {g:.2f} s, botorch {b:.2f} s, ratio gpbo/botorch {g / b:.2f} "
          f"(n={args.n}, d={args.d}, q={args.q}, {args.reps} reps, torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
