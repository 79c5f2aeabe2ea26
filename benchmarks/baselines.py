"""Random-search baselines (opt, clip) of the Bayesmark-style problems.

    python -m benchmarks.baselines [--n 256] [--pairs knn-iris,svm-wine,...]

For each (model, dataset) pair, ``n`` uniform random configurations (log-
uniform for log parameters; ``default_rng([n, index_of_pair])``) are evaluated
once, and ONE set of CV fits gives the losses of every metric of the dataset
(log-loss and accuracy, or MSE and MAE). Per problem ``model-dataset-metric``:
``opt`` = the best CV loss seen, ``clip`` = the median CV loss (the median
loss of one random evaluation), ``n_ok`` = evaluations that did not fail.
The result is merged into ``benchmarks/bayesmark_baselines.json``. The
report lowers ``opt`` further to the best loss any method reached.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time

import numpy as np

from benchmarks import hpo
from benchmarks.problems import _sample_param
from benchmarks.report import BASELINES


def pairs_of(names: list[str]) -> list[tuple[str, str]]:
    return sorted({hpo.split_name(n)[:2] for n in names})


def run_pair(model: str, dataset: str, n: int, seed: int) -> dict[str, dict]:
    reg = dataset in hpo.REGRESSION
    space = hpo.SPACES[model][1 if reg else 0]
    metrics = tuple(hpo.REG_METRICS if reg else hpo.CLF_METRICS)
    rng = np.random.default_rng([n, seed])
    losses = {m: [] for m in metrics}
    t0 = time.perf_counter()
    for _ in range(n):
        res = hpo.evaluate(model, dataset, {k: _sample_param(s, rng) for k, s in space.items()}, metrics)
        for m in metrics:
            losses[m].append(res[m])
    wall = time.perf_counter() - t0
    out = {}
    for m, v in losses.items():
        v = np.asarray(v, dtype=float)
        out[f"{model}-{dataset}-{m}"] = {"opt": float(np.nanmin(v)), "clip": float(np.nanmedian(v)),
                                         "n": n, "n_ok": int(np.isfinite(v).sum()),
                                         "wall_s": round(wall, 1)}
    return out


def main(argv=None) -> None:
    from benchmarks.sweep import SUITES

    ap = argparse.ArgumentParser(prog="python -m benchmarks.baselines")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--problems", default="bayesmark", help="problem names or 'bayesmark'")
    a = ap.parse_args(argv)
    names = [x for item in a.problems.split(",") for x in SUITES.get(item, [item])]
    cache = json.loads(BASELINES.read_text()) if BASELINES.exists() else {}
    for i, (model, dataset) in enumerate(pairs_of(names)):
        res = run_pair(model, dataset, a.n, i)
        for v in res.values():
            v["date"] = datetime.date.today().isoformat()
        cache.update(res)
        BASELINES.write_text(json.dumps(dict(sorted(cache.items())), indent=1) + "\n")
        print(model, dataset, {k: (round(v["opt"], 4), round(v["clip"], 4), v["wall_s"]) for k, v in res.items()},
              flush=True)


if __name__ == "__main__":
    main()
