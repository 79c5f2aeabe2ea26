"""Latency of one qLogNEI suggestion with pending points: gpbo against BoTorch's recipe.

    python -m benchmarks.qlognei_latency [--n-list 50,200,400] [--pending 3] [--reps 3] [--threads 1]

The asynchronous case: n observations of Styblinski-Tang on [0,1]^6 (scrambled
Sobol, identical for every method) and ``--pending`` points still under
evaluation; one new point (q = 1). Per n and rep, the methods take turns:

- gpbo: ``gpbo.engine.suggest(..., pending=..., settings={"acquisition": "qlog_nei"})``,
  the GP fitted from scratch (no warm start), so that it does what BoTorch does;
- gpbo default: the same step with the default acquisition (augmented EI and
  UCB taking turns; the pending points believed at the posterior mean), for
  scale;
- BoTorch: ``SingleTaskGP`` + ``fit_gpytorch_mll`` +
  ``qLogNoisyExpectedImprovement(X_baseline, X_pending, prune_baseline=True)``
  + ``optimize_acqf`` (10 restarts, 512 raw samples), BoTorch's recipe for
  pending points.

Prints the median seconds and the ratio gpbo / BoTorch (below 1: gpbo faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from benchmarks.speed import sobol_designs, styblinski_tang


def gpbo_step(X: torch.Tensor, Y: torch.Tensor, pending: torch.Tensor, acquisition: str) -> torch.Tensor:
    """One gpbo suggestion; X (n, d), Y (n,) minimised, pending (k, d) -> (1, d)."""
    from gpbo import engine

    s = engine.suggest(X[None], -Y[None], q=1, pending=pending[None], seed=0, settings={"acquisition": acquisition})
    return s.candidates[0]


def botorch_step(X: torch.Tensor, Y: torch.Tensor, pending: torch.Tensor) -> torch.Tensor:
    """BoTorch's qLogNEI recipe with pending points; X (n, d), Y (n,) minimised -> (1, d)."""
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SingleTaskGP(X, -Y.unsqueeze(-1), outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        acqf = qLogNoisyExpectedImprovement(model, X_baseline=X, X_pending=pending, prune_baseline=True)
        d = X.shape[-1]
        bounds = torch.stack([torch.zeros(d), torch.ones(d)]).to(X)
        cand, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=10, raw_samples=512)
    return cand.detach()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-list", default="50,200,400")
    ap.add_argument("--d", type=int, default=6)
    ap.add_argument("--pending", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = {
        "gpbo": lambda X, Y, p: gpbo_step(X, Y, p, "qlog_nei"),
        "gpbo default": lambda X, Y, p: gpbo_step(X, Y, p, "auto"),
        "BoTorch": botorch_step,
    }
    for fn in methods.values():  # library initialisation is not counted
        X = sobol_designs(1, 12, args.d, "cpu")[0]
        fn(X, styblinski_tang(X), X[:1])
    print(f"one qLogNEI suggestion, d = {args.d}, {args.pending} pending points, q = 1; median of {args.reps} (s)")
    print("| n | " + " | ".join(methods) + " | gpbo / BoTorch |")
    print("|---:|" + "---:|" * (len(methods) + 1))
    for n in (int(v) for v in args.n_list.split(",")):
        U = sobol_designs(1, n + args.pending, args.d, "cpu")[0]
        X, pending = U[:n], U[n:]
        Y = styblinski_tang(X)
        times: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(args.reps):
            for name, fn in methods.items():
                t0 = time.perf_counter()
                fn(X, Y, pending)
                times[name].append(time.perf_counter() - t0)
        med = {m: statistics.median(t) for m, t in times.items()}
        cells = " | ".join(f"{med[m]:.2f}" for m in methods)
        print(f"| {n} | {cells} | {med['gpbo'] / med['BoTorch']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
