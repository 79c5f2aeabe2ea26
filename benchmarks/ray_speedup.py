"""Wall-time speed-up of `gpbo.minimize` on Ray with k workers against 1 worker.

    python -m benchmarks.ray_speedup [--trials 20] [--sleep 2.0] [--workers 4]

The objective sleeps ``--sleep`` seconds (a stand-in for training a model)
and returns a Branin value. Both runs use `gpbo.integrations.ray_executor.RayExecutor`
on one local Ray instance (``ray.init(num_cpus=workers)``, one CPU per task),
the same seed and the same number of trials; only ``n_workers`` differs. Ray's
worker processes are started before timing (one no-op task per worker), so the
ratio measures the loop, not Ray's start-up. Writes
``benchmarks/results/ray_speedup.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import time
from pathlib import Path

import ray
import torch

import gpbo
from gpbo.integrations.ray_executor import RayExecutor

SPACE = gpbo.Space({"x1": gpbo.Real(-5.0, 10.0), "x2": gpbo.Real(0.0, 15.0)})


class SleepyBranin:
    """Branin after ``seconds`` of sleep."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, p: dict) -> float:
        time.sleep(self.seconds)
        x1, x2 = p["x1"], p["x2"]
        b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
        return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def timed_run(pool: RayExecutor, n_workers: int, args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    result = gpbo.minimize(SleepyBranin(args.sleep), SPACE, args.trials, seed=0,
                           n_workers=n_workers, executor=pool)
    wall = time.perf_counter() - t0
    return {"n_workers": n_workers, "wall_s": round(wall, 2), "best_value": result.best_value}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--sleep", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    with RayExecutor(num_cpus=1) as pool:
        [f.result() for f in [pool.submit(time.sleep, 0.5) for _ in range(args.workers)]]  # warm workers
        runs = [timed_run(pool, 1, args), timed_run(pool, args.workers, args)]
    ray.shutdown()
    speedup = runs[0]["wall_s"] / runs[1]["wall_s"]
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "ray": ray.__version__, "gpbo": gpbo.__version__},
        "trials": args.trials, "sleep_s": args.sleep, "runs": runs,
        "speedup": round(speedup, 2), "ideal": args.workers,
    }
    out = Path(__file__).parent / "results" / "ray_speedup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
