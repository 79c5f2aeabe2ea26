"""Early-stopping studies of a sweep in lockstep against one at a time: real time per study.

Runs the same ``--seeds`` seeds of gpbo with the model-based rule on one
LCBench task (1 simulated worker, ``--budget`` full trainings) twice per
repetition, alternating the order: in one lockstep group (their stop
decisions batched over the seeds: :func:`benchmarks.mf_sweep.run_group`,
``gpbo.Optimizer.should_stop_many``) and one seed at a time (``--lockstep 1``).
Prints each repetition's times, the median ratio lockstep / one at a time,
and how many seeds ran the same jobs both ways (a decision at the threshold
can differ in the last bits of the padded batch, and the run then diverges).

Usage: python -m benchmarks.es_lockstep [--task 3945] [--seeds 16] [--budget 10] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import mf_sweep
from benchmarks.mf_problems import get_mf


def _timed(task: str, seeds: list[int], budget: int, size: int) -> tuple[float, dict[int, list]]:
    """Real seconds for the seeds in lockstep groups of ``size``; each seed's jobs (params, values, stops)."""
    problem = get_mf(f"mf_lcbench_{task}")
    with tempfile.TemporaryDirectory() as tmp:
        store = mf_sweep.MFStore(Path(tmp) / "results.jsonl")
        t0 = time.perf_counter()
        for i in range(0, len(seeds), size):
            mf_sweep.run_group("gpbo_es", problem, seeds[i : i + size], 1, budget, store)
        elapsed = time.perf_counter() - t0
        store.close()
        jobs: dict[int, list] = {}
        for line in (Path(tmp) / "results.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["kind"] == "job":
                jobs.setdefault(r["seed"], []).append((r["job"], r["params"], r["values"], r["stopped"]))
    return elapsed, {s: sorted(j) for s, j in jobs.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="3945")
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--budget", type=int, default=10, help="full trainings per study")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    _timed(args.task, [0], 1, 1)  # warm-up: the surrogate's session, the imports
    ratios = []
    for rep in range(args.reps):
        order = (len(seeds), 1) if rep % 2 == 0 else (1, len(seeds))
        result = {size: _timed(args.task, seeds, args.budget, size) for size in order}
        (t_lock, jobs_lock), (t_one, jobs_one) = result[len(seeds)], result[1]
        ratios.append(t_lock / t_one)
        same = sum(jobs_lock[s] == jobs_one[s] for s in seeds)
        print(f"rep {rep}: lockstep {t_lock:.1f} s, one at a time {t_one:.1f} s, ratio {ratios[-1]:.3f}; "
              f"{same} of {len(seeds)} seeds ran the same jobs", flush=True)
    print(f"task {args.task}, {args.seeds} seeds, {args.budget} trainings: median ratio lockstep / one at a time "
          f"{statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
