"""A researcher's acquisition in ~20 lines: cost-aware expected improvement.

    python examples/custom_acquisition.py [--seeds 8] [--iters 20] [--out custom_acquisition.png]
    python -m benchmarks.sweep --problems branin --methods gpbo,gpbo_costei --seeds 8 --budget 25 --out OUT

Evaluations often cost different amounts (a wide network trains longer).
EI per unit cost (Snoek et al., 2012) divides EI by the known cost; in log
space that is ``log EI(x) - alpha * log cost(x)``. The class below follows
`gpbo.acquisition.protocol.Acquisition` and reuses the built-in LogEI.

It runs twice: through the facade (`gpbo.minimize`) and in a batched sweep
(`gpbo.engine.suggest` on P = ``--seeds`` independent runs in one call per
step), where it is compared against LogEI on Branin with a cost that grows
along x1. The plot shows the best value found against the money spent.

The sweep runner knows it as the method ``gpbo_costei`` (registered in
``benchmarks/methods.py``); :func:`from_sweep` reads that run's
``OUT/results.jsonl`` for the same plot (``custom_acquisition_sweep.png``),
and the runner's own report plots regret against evaluations
(``OUT/plots/branin.png``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

import gpbo
from gpbo.acquisition import LogEI


class CostAwareLogEI:
    """``log EI(x) - alpha * log cost(x)``: expected improvement per unit cost."""

    joint = False  # one point at a time; the engine handles batches and pending points

    def __init__(self, log_cost, alpha: float = 1.0) -> None:
        self.log_cost, self.alpha = log_cost, alpha  # log_cost: X (..., d) -> (...) in the unit cube

    def __call__(self, ctx):
        log_ei = LogEI()(ctx)

        def fn(X: torch.Tensor) -> torch.Tensor:  # X (..., P, 1, d) -> (..., P)
            return log_ei(X) - self.alpha * self.log_cost(X[..., 0, :])

        return fn


def log_cost(U: torch.Tensor) -> torch.Tensor:
    """Cost exp(3 u1) of evaluating at U (..., 2) in the unit cube: 1 to 20."""
    return 3.0 * U[..., 0]


def branin_unit(U: torch.Tensor) -> torch.Tensor:
    """Branin on the unit cube, U (..., 2) -> (...); minimum 0.397887."""
    x1, x2 = 15.0 * U[..., 0] - 5.0, 15.0 * U[..., 1]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * torch.cos(x1) + 10


def sweep(acquisition, P: int, iters: int, n_init: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """P independent runs, batched: (P, n) cumulative cost and (P, n) best value so far."""
    X = torch.quasirandom.SobolEngine(2, scramble=True, seed=0).draw(P * n_init)
    X = X.to(torch.float64).view(P, n_init, 2)  # (P, n, d), different initial designs per run
    model = None
    for step in range(iters):
        s = gpbo.engine.suggest(X, -branin_unit(X), seed=step, warm_start=model, settings={"acquisition": acquisition})
        X, model = torch.cat([X, s.candidates], dim=1), s.model  # (P, n + 1, d)
    cost = log_cost(X).exp().cumsum(-1)  # (P, n)
    best = branin_unit(X).cummin(-1).values  # (P, n)
    return cost, best


def run_sweep_runner(out: str | Path, seeds: int, iters: int, n_init: int = 5) -> dict:
    """Both acquisitions through ``benchmarks.sweep`` (gpbo_logei = LogEI, gpbo_costei = this file's)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks/
    from benchmarks import sweep as runner

    return runner.main(["--problems", "branin", "--methods", "gpbo_logei,gpbo_costei", "--seeds", str(seeds),
                        "--budget", str(n_init + iters), "--out", str(out)])


def from_sweep(out: str | Path, problem: str = "branin") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{method: ((P, n) cumulative cost, (P, n) best noiseless value)} from a sweep's OUT/results.jsonl."""
    from benchmarks.problems import get

    space, runs = get(problem).space(), defaultdict(dict)
    for line in (Path(out) / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["problem"] == problem:
            runs[(r["method"], r["seed"])][r["idx"]] = r
    results = {}
    for method in sorted({m for m, _ in runs}):
        rows = [rec for (m, _), rec in sorted(runs.items()) if m == method]
        n = min(len(rec) for rec in rows)
        U = torch.stack([space.encode([rec[i]["params"] for i in range(n)]) for rec in rows])  # (P, n, d)
        true = torch.tensor([[rec[i]["true"] for i in range(n)] for rec in rows], dtype=torch.float64)
        results[method] = (log_cost(U).exp().cumsum(-1), true.cummin(-1).values)
    return results


def plot(results: dict[str, tuple[torch.Tensor, torch.Tensor]]):
    """log10 regret against cumulative cost, mean and IQR over the runs; returns the Figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    budget = torch.linspace(0.0, min(float(c[:, -1].min()) for c, _ in results.values()), 200)
    for i, (name, (cost, best)) in enumerate(results.items()):
        idx = torch.searchsorted(cost.contiguous(), budget.expand(len(cost), -1).contiguous(), right=True)
        curve = best.gather(1, (idx - 1).clamp_min(0))  # best value with that budget spent, (P, 200)
        regret = (curve - 0.397887).clamp_min(1e-6).log10()
        ax.plot(budget, regret.mean(0), color=f"C{i}", label=name)
        ax.fill_between(budget, regret.quantile(0.25, 0), regret.quantile(0.75, 0), color=f"C{i}", alpha=0.2)
    ax.set(xlabel="cumulative evaluation cost", ylabel="log10 regret (mean, IQR)",
           title=f"Branin with cost exp(3 u1), {len(cost)} seeds")
    ax.legend()
    return fig


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--out", default="custom_acquisition.png")
    args = ap.parse_args(argv)

    space = gpbo.Space({"u1": gpbo.Real(0.0, 1.0), "u2": gpbo.Real(0.0, 1.0)})
    result = gpbo.minimize(lambda p: float(branin_unit(torch.tensor([p["u1"], p["u2"]]))), space, 15,
                           seed=0, settings={"acquisition": CostAwareLogEI(log_cost)})
    print(f"facade: best {result.best_value:.4f} at {result.best_params}")

    results = {"LogEI": sweep("log_ei", args.seeds, args.iters),
               "cost-aware LogEI": sweep(CostAwareLogEI(log_cost), args.seeds, args.iters)}
    for name, (cost, best) in results.items():
        print(f"{name:>17}: mean best {best[:, -1].mean():.4f} after {args.iters} steps, "
              f"mean cost {cost[:, -1].mean():.1f}")
    plot(results).savefig(args.out, dpi=100)
    print(f"wrote {args.out}")

    with tempfile.TemporaryDirectory() as out:  # the same comparison through the sweep runner
        run_sweep_runner(out, args.seeds, args.iters)
        via = from_sweep(out)
        print((Path(out) / "summary.md").read_text().split("\n\n")[0])
    sweep_png = str(Path(args.out).with_name(Path(args.out).stem + "_sweep.png"))
    plot({"LogEI (gpbo_logei)": via["gpbo_logei"], "cost-aware LogEI (gpbo_costei)": via["gpbo_costei"]}).savefig(sweep_png, dpi=100)
    print(f"wrote {sweep_png}")


if __name__ == "__main__":
    main()
