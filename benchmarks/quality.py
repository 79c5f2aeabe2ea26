"""Optimisation quality of ``gpbo.minimize`` on problems with known optima.

    python -m benchmarks.quality [--seeds 8] [--quick] [--problems branin,hartmann6,mixed]

For each problem and seed s = 0..seeds-1 it runs ``gpbo.minimize(fn, space,
budget, seed=s)`` and random search with ``numpy.random.default_rng(s)`` for
the same budget, and reports the simple regret ``best value - optimum``:

| problem   | evals | target (median gpbo regret) |
| --------- | ----- | --------------------------- |
| branin    | 40    | < 1e-3                      |
| hartmann6 | 100   | < 0.02                      |
| mixed     | 60    | below random search         |

``--quick`` is a smoke test (2 seeds, smaller budgets); its numbers are not
judged against the targets. Prints a markdown table (median and IQR over seeds)
and writes benchmarks/results/quality.json (per-seed regrets, best-so-far
curves, timings, versions).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from benchmarks.latency import environment, quantiles, write_report
from benchmarks.problems import PROBLEMS, Problem

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = {"branin": 40, "hartmann6": 100, "mixed": 60}
QUICK_BUDGETS = {"branin": 20, "hartmann6": 30, "mixed": 25}
TARGETS = {"branin": 1e-3, "hartmann6": 0.02, "mixed": "random"}


def best_so_far(values: list[float | None], optimum: float) -> list[float]:
    """Regret of the incumbent after each evaluation (failed trials: None, skipped)."""
    out, best = [], math.inf
    for v in values:
        if v is not None and math.isfinite(v):
            best = min(best, v)
        out.append(best - optimum)
    return out


def run_gpbo(problem: Problem, budget: int, seed: int, device: str | None, noise: str) -> dict:
    import gpbo

    t0 = time.perf_counter()
    res = gpbo.minimize(problem.fn, problem.space(), budget, seed=seed, settings={"device": device, "noise": noise})
    wall = time.perf_counter() - t0
    values = [getattr(t, "value", None) for t in res.trials]
    if res.best_value is None:  # every trial failed
        return {"regret": math.inf, "curve": [math.inf] * budget, "best_params": None,
                "wall_s": wall}
    return {
        "regret": problem.regret(res.best_value),
        "curve": best_so_far(values, problem.optimum),
        "best_params": {k: (v if isinstance(v, (int, str)) else float(v))
                        for k, v in res.best_params.items()},
        "wall_s": wall,
    }


def run_random(problem: Problem, budget: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    values = [problem.fn(problem.sample(rng)) for _ in range(budget)]
    curve = best_so_far(values, problem.optimum)
    return {"regret": curve[-1], "curve": curve}


def summary(regrets: list[float]) -> dict[str, float]:
    q25, med, q75 = quantiles(sorted(regrets))
    return {"median": med, "q25": q25, "q75": q75}


def verdict(name: str, gp: dict, rs: dict, quick: bool) -> str:
    target = TARGETS[name]
    if quick:
        return "(quick: not judged)"
    if target == "random":
        return "yes" if gp["median"] < rs["median"] else "NO"
    return "yes" if gp["median"] < target else "NO"


def markdown(report: dict) -> str:
    cfg = report["config"]
    lines = [
        f"### Quality: simple regret over {cfg['seeds']} seeds "
        f"({'quick smoke test' if cfg['quick'] else 'full'}; median [IQR])",
        "",
        "| problem | evals | gpbo regret | random-search regret | gpbo < random (seeds) "
        "| target | met | gpbo s/run |",
        "| --- | ---: | --- | --- | ---: | --- | --- | ---: |",
    ]
    for name, res in report["results"].items():
        gp, rs = res["gpbo"]["summary"], res["random"]["summary"]
        wins = sum(g < r for g, r in zip(res["gpbo"]["regrets"], res["random"]["regrets"]))
        target = TARGETS[name]
        target_txt = "< random" if target == "random" else f"< {target:g}"
        lines.append(
            f"| {name} | {res['budget']} | {gp['median']:.2e} [{gp['q25']:.1e}, {gp['q75']:.1e}] "
            f"| {rs['median']:.2e} [{rs['q25']:.1e}, {rs['q75']:.1e}] "
            f"| {wins}/{len(res['gpbo']['regrets'])} | {target_txt} "
            f"| {verdict(name, gp, rs, cfg['quick'])} | {res['gpbo']['median_wall_s']:.1f} |"
        )
    env = report["environment"]
    lines += [
        "",
        f"- CPU: {env['cpu']} ({env['cpu_count']} logical cores), torch threads "
        f"{env['torch_threads']}; date {env['date']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 8; quick 2)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, smaller budgets")
    ap.add_argument("--problems", default="branin,hartmann6,mixed")
    ap.add_argument("--device", default=None, help="device passed to gpbo.minimize")
    ap.add_argument("--noise", default="learned", choices=("learned", "deterministic"),
                    help="gpbo.minimize's noise option (all three problems are deterministic)")
    ap.add_argument("--out", type=Path, default=RESULTS / "quality.json",
                    help="JSON report (default: benchmarks/results/quality.json, ignored by git)")
    args = ap.parse_args(argv)

    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 8)
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    names = [p.strip() for p in args.problems.split(",") if p.strip()]
    unknown = sorted(set(names) - set(PROBLEMS))
    if unknown:
        ap.error(f"unknown problem(s) {unknown}; expected a subset of {sorted(PROBLEMS)}")

    results = {}
    for name in names:
        problem, budget = PROBLEMS[name], budgets[name]
        gp_runs, rs_runs = [], []
        for seed in range(seeds):
            gp_runs.append(run_gpbo(problem, budget, seed, args.device, args.noise))
            rs_runs.append(run_random(problem, budget, seed))
            print(f"{name:>9} seed {seed}: gpbo regret {gp_runs[-1]['regret']:.3e} "
                  f"({gp_runs[-1]['wall_s']:.1f} s), random {rs_runs[-1]['regret']:.3e}",
                  flush=True)
        gp_regrets = [r["regret"] for r in gp_runs]
        rs_regrets = [r["regret"] for r in rs_runs]
        results[name] = {
            "budget": budget,
            "optimum": problem.optimum,
            "gpbo": {"regrets": gp_regrets, "summary": summary(gp_regrets),
                     "median_wall_s": float(np.median([r["wall_s"] for r in gp_runs])),
                     "runs": gp_runs},
            "random": {"regrets": rs_regrets, "summary": summary(rs_regrets),
                       "curves": [r["curve"] for r in rs_runs]},
        }
    report = {
        "benchmark": "quality (simple regret)",
        "config": {"seeds": seeds, "quick": args.quick, "budgets": budgets,
                   "targets": TARGETS, "device": args.device, "noise": args.noise},
        "environment": environment(),
        "results": results,
    }
    print()
    print(markdown(report))
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
