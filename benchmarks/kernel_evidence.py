"""Which kernel does the evidence prefer on the data gpbo's runs collected?

    python -m benchmarks.kernel_evidence rbf [--n 90] [--results DIR]
    python -m benchmarks.kernel_evidence additive [--n 90]   # needs the additive patch applied

For each synthetic problem and seed, the first ``--n`` points of gpbo's run in
``DIR/results.jsonl[.gz]`` (default ``benchmarks/results/s16_gpbo``) are
warped as the engine warps them and fitted by gpbo's MAP fit under each kernel;
the log posterior at the optimum (``-n * neg_log_posterior``) is compared:

- ``rbf``: Matérn-5/2 (gpbo's kernel) against the RBF kernel (BoTorch's
  default), the ``kernel`` field of `gpbo.Settings`;
- ``additive``: the shares s = 0, 0.25, 0.5, 0.75, 0.95 of the first-order
  additive part of ``benchmarks/patches/additive_kernel.patch`` (``git apply``
  it first; s = 0 is gpbo's kernel).

The question it answers: would choosing the kernel (or fitting the share) by
the evidence move each problem towards the variant that optimised it better
in the 16-seed sweeps? Prints one line per problem.
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
from gpbo.models import kernel, marginal, pointwise
from gpbo.models.exact import ExactGP
from gpbo.models.marginal import GPPriors, neg_log_posterior
from gpbo.models.warping import warp_outcomes

RESULTS = Path(__file__).resolve().parent / "results" / "s16_gpbo"
SHARES = (0.0, 0.25, 0.5, 0.75, 0.95)


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


def log_posterior(X: torch.Tensor, Y: torch.Tensor, kernel_name: str | None = None) -> torch.Tensor:
    """(S,) log posterior at gpbo's MAP fit with the kernel ``kernel_name`` (a `gpbo.Settings`
    kernel), or with the kernel currently installed (None: the additive patch)."""
    if kernel_name is not None:
        model = fit_model(X, Y, settings={"kernel": kernel_name})  # warped as the engine warps
        priors = GPPriors.for_dim(X.shape[-1], X)
        loss = neg_log_posterior(model.theta, X, model.Y_train, (), priors, model.base_kernel)
        return -X.shape[-2] * loss.detach()
    Yw = warp_outcomes(Y)
    model = ExactGP.fit(X, Yw)
    loss = neg_log_posterior(model.theta, X, model.Y_train, (), GPPriors.for_dim(X.shape[-1], X))
    return -X.shape[-2] * loss.detach()


def set_share(s: float) -> None:
    if not hasattr(kernel, "ADDITIVE_SHARE"):
        raise SystemExit("the 'additive' variant needs: git apply benchmarks/patches/additive_kernel.patch")
    kernel.ADDITIVE_SHARE = marginal.ADDITIVE_SHARE = pointwise.ADDITIVE_SHARE = s


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.kernel_evidence")
    ap.add_argument("variant", choices=("rbf", "additive"))
    ap.add_argument("--n", type=int, default=90)
    ap.add_argument("--results", default=str(RESULTS),
                    help="a sweep folder (default benchmarks/results/s16_gpbo: run `python -m benchmarks.sweep "
                    "--problems synthetic --methods gpbo --seeds 16 --out benchmarks/results/s16_gpbo` first)")
    a = ap.parse_args(argv)
    data = load(Path(a.results), a.n)
    if a.variant == "rbf":
        for p, (X, Y) in data.items():
            gain = log_posterior(X, Y, "rbf") - log_posterior(X, Y, "matern52")  # > 0: the evidence prefers RBF
            print(f"{p:24s} n={a.n}: RBF preferred on {int((gain > 0).sum())}/{len(gain)} seeds, "
                  f"median log-evidence gain of RBF {gain.median().item():+.1f}")
        return
    lp = {}
    for s in SHARES:
        set_share(s)
        for p, (X, Y) in data.items():
            lp[p, s] = log_posterior(X, Y)
    for p in data:
        L = torch.stack([lp[p, s] for s in SHARES])  # (shares, seeds)
        best = L.argmax(0)
        print(f"{p:24s} n={a.n}: most probable share per seed "
              + ", ".join(f"s={s}: {int((best == i).sum())}" for i, s in enumerate(SHARES))
              + "; median gain over s=0: " + ", ".join(f"{(L[i] - L[0]).median().item():+.1f}"
                                                       for i in range(1, len(SHARES))))


if __name__ == "__main__":
    main()
