"""What SQLite storage adds to suggestion latency at n = 100 (Hartmann6, d = 6).

    python -m benchmarks.storage_overhead [--reps 9]

Two optimizers, one in memory and one with ``storage=``, are loaded with the
same 100 Sobol observations. Each rep times one ``ask()`` of each (in
alternating order, in one process) and, untimed, tells both the value of
their suggestion. Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from benchmarks.latency import environment, make_data
from benchmarks.problems import hartmann6_fn
from gpbo.optimizer import Optimizer
from gpbo.space import Real, Space

SPACE = Space({f"x{i}": Real(0.0, 1.0) for i in range(6)})


def timed_ask(opt: Optimizer) -> float:
    start = time.perf_counter()
    trial = opt.ask()
    seconds = time.perf_counter() - start
    opt.tell(trial, hartmann6_fn(trial.params))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    print(f"# {environment()}")
    X, Y = make_data(100, seed=0)
    params, values = SPACE.decode(X), Y.tolist()
    with tempfile.TemporaryDirectory() as tmp:
        memory = Optimizer(SPACE, seed=0)
        stored = Optimizer(SPACE, seed=0, storage=f"{tmp}/study.db")
        times: dict[str, list[float]] = {"memory": [], "storage": []}
        for opt in (memory, stored):
            opt.tell_many(params, values)
            timed_ask(opt)  # warm-up (first fit from scratch)
        for rep in range(args.reps):
            order = [("memory", memory), ("storage", stored)][:: 1 if rep % 2 else -1]
            for name, opt in order:
                times[name].append(timed_ask(opt))
        stored.close()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"ask() median at n=100..{100 + args.reps}: memory {1e3 * med['memory']:.1f} ms, "
          f"storage {1e3 * med['storage']:.1f} ms, storage / memory = {med['storage'] / med['memory']:.3f}")


if __name__ == "__main__":
    main()
