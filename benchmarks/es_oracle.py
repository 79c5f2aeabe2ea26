"""Did the stopping rule stop a winner? The stopped trials' true finals, for any number of workers.

    python -m benchmarks.es_oracle OUT [OUT ...] [--method gpbo_es]

``OUT`` are sweep output folders with LCBench runs of an early-stopping
method (``python -m benchmarks.sweep --problems mf_lcbench_7593 --methods
gpbo_es --workers 4 --budget 60 --out OUT``). For every stopped job the
surrogate gives its value at ``max_step`` had it run to the end. Per task and
number of workers, medians over the seeds' runs of:

- ``regret``: the run's final regret (best job that reached ``max_step``);
- ``oracle``: the regret had every stopped job run to the end;
- ``lost``: stopped jobs whose true final beats the run's final best;
- ``stops / jobs`` and the median epoch of the stops.

``oracle`` close to ``regret`` and ``lost`` 0: the rule did not stop the
configurations that mattered; a gap to another run is then the search's.
See docs/decisions/0059-four-workers-rule-or-search.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from benchmarks.mf_problems import get_mf


def _load(folders: list[str], method: str) -> tuple[dict, dict]:
    """Job lines per (problem, workers, seed) and the run lines, of ``method``."""
    jobs: dict[tuple, list[dict]] = defaultdict(list)
    runs: dict[tuple, dict] = {}
    for folder in folders:
        for line in (Path(folder) / "results.jsonl").read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a killed sweep
                continue
            if r.get("method") != method:
                continue
            key = (r["problem"], r["workers"], r["seed"])
            if r["kind"] == "job":
                jobs[key].append(r)
            elif r["kind"] == "run":
                runs[key] = r
    return jobs, runs


def _row(problem, jobs: list[dict], optimum: float) -> tuple[float, float, int, int, int, float]:
    """(regret, oracle regret, lost, stops, jobs, median stop epoch) of one run (values minimised)."""
    whole = [j["values"][-1] for j in jobs if not j["stopped"] and j["start_step"] + len(j["values"]) - 1 >= problem.max_step]
    best = min(whole, default=float("inf"))
    stopped = [j for j in jobs if j["stopped"]]
    finals = [list(problem.trajectory(j["params"]))[problem.max_step - 1][0] for j in stopped]
    epochs = [len(j["values"]) for j in stopped]
    return (best - optimum, min([best, *finals]) - optimum, sum(v < best for v in finals), len(stopped), len(jobs),
            statistics.median(epochs) if epochs else 0.0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="+")
    ap.add_argument("--method", default="gpbo_es")
    args = ap.parse_args(argv)
    jobs, runs = _load(args.out, args.method)
    cells: dict[tuple, list[tuple]] = defaultdict(list)
    for (name, workers, seed), run in runs.items():
        problem = get_mf(name)
        cells[(name, workers)].append(_row(problem, jobs[(name, workers, seed)], run["optimum"]))
    print("| task | workers | runs | regret | oracle | lost | stops / jobs | median stop epoch |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for (name, workers), rows in sorted(cells.items()):
        med = [statistics.median(r[i] for r in rows) for i in range(6)]
        print(f"| {name} | {workers} | {len(rows)} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:g} | {med[3]:g} / {med[4]:g} | {med[5]:g} |")


if __name__ == "__main__":
    main()
