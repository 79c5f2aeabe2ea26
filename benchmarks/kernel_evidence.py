"""Which kernel does the evidence prefer on the data gpbo's runs collected?

    python -m benchmarks.kernel_evidence rbf [--n 90] [--results DIR]

For each synthetic problem and seed, the first ``--n`` points of gpbo's run in
``DIR/results.jsonl[.gz]`` (default ``benchmarks/results/s16_gpbo``) are
warped as the engine warps them and fitted by gpbo's MAP fit under each kernel;
the log posterior at the optimum (``-n * neg_log_posterior``) is compared:
``rbf``, Matérn-5/2 (gpbo's kernel) against the RBF kernel (BoTorch's
default), the ``kernel`` field of `gpbo.Settings`. (An ``additive`` variant
compared the shares of an additive kernel part; that experiment and its patch
are gone, its numbers are in docs/decisions/0018-additive-kernel-part.md.)

The question it answers: would choosing the kernel by the evidence move each
problem towards the variant that optimised it better in the 16-seed sweeps?
Prints one line per problem.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import torch

from benchmarks.problems import get
from benchmarks.report import open_results
from gpbo.engine import fit_model
from gpbo.models.marginal import GPPriors, neg_log_posterior

RESULTS = Path(__file__).resolve().parent / "results" / "s16_gpbo"


def load(folder: Path, n: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """problem -> (X (S, n, d) unit-cube points, Y (S, n) maximised values) of gpbo's seeds."""
    runs = collections.defaultdict(list)
    with open_results(folder) as lines:
        for line in lines:
            r = json.loads(line)
            if r["method"] == "gpbo":
                runs[(r["problem"], r["seed"])].append(r)
    data = collections.defaultdict(list)
    for (problem, _), rs in sorted(runs.items()):
        rs.sort(key=lambda r: r["idx"])
        if len(rs) >= n:
            X = get(problem).space().encode([r["params"] for r in rs[:n]])
            data[problem].append((X, -torch.tensor([r["value"] for r in rs[:n]], dtype=torch.float64)))
    return {p: (torch.stack([x for x, _ in xs]), torch.stack([y for _, y in xs])) for p, xs in data.items()}


def log_posterior(X: torch.Tensor, Y: torch.Tensor, kernel_name: str) -> torch.Tensor:
    """(S,) log posterior at gpbo's MAP fit with the kernel ``kernel_name`` (a `gpbo.Settings` kernel)."""
    model = fit_model(X, Y, settings={"kernel": kernel_name})  # warped as the engine warps
    priors = GPPriors.for_dim(X.shape[-1], X)
    loss = neg_log_posterior(model.theta, X, model.Y_train, (), priors, model.base_kernel)
    return -X.shape[-2] * loss.detach()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.kernel_evidence")
    ap.add_argument("variant", choices=("rbf",))
    ap.add_argument("--n", type=int, default=90)
    ap.add_argument("--results", default=str(RESULTS),
                    help="a sweep folder (default benchmarks/results/s16_gpbo: run `python -m benchmarks.sweep "
                    "--problems synthetic --methods gpbo --seeds 16 --out benchmarks/results/s16_gpbo` first)")
    a = ap.parse_args(argv)
    data = load(Path(a.results), a.n)
    for p, (X, Y) in data.items():
        gain = log_posterior(X, Y, "rbf") - log_posterior(X, Y, "matern52")  # > 0: the evidence prefers RBF
        print(f"{p:24s} n={a.n}: RBF preferred on {int((gain > 0).sum())}/{len(gain)} seeds, "
              f"median log-evidence gain of RBF {gain.median().item():+.1f}")


if __name__ == "__main__":
    main()
