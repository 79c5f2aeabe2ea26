"""The demo with and without early stopping, side by side: held-out accuracy and wall time.

For each seed, runs the demo's study (`gpbo.demo`: an MLP on scikit-learn's
digits, 7 hyperparameters, ``--trials`` trials of ``--epochs`` epochs)
twice, alternating which goes first (after one untimed warm-up run): at full fidelity (`gpbo.demo.Objective`)
and as ``python -m gpbo.demo --early-stopping`` runs it
(`gpbo.demo.ReportingObjective`, gpbo's default model-based rule,
``max_step`` = the epochs, a step budget of ``--budget-fraction`` of the
full-fidelity study's epochs, as many trials as fit). Each best configuration is
scored once on the held-out test split. Reports per seed and the medians:
test accuracy, test log-loss, wall time, process CPU time, epochs trained,
and the wall- and CPU-time ratios (early stopping / full), paired by seed.
On a shared machine the wall time moves with the load; with ``--threads 1``
the CPU time does not, and equals the wall time of an idle machine.

Usage: python -m benchmarks.demo_es [--seeds 0 1 2 3 4] [--trials 40] [--epochs 40] [--budget-fraction 0.4] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import gpbo
from gpbo.demo import Objective, ReportingObjective, evaluate, load_splits, search_space, train


def run(seed: int, early_stopping: bool, trials: int, epochs: int, fraction: float) -> dict[str, float]:
    """One demo study; its best configuration scored on the test split."""
    data = load_splits(seed, torch.device("cpu"))
    objective = (ReportingObjective if early_stopping else Objective)(data, seed, epochs)
    budget = round(fraction * trials * epochs) if early_stopping else None
    t0, c0 = time.perf_counter(), time.process_time()
    result = gpbo.minimize(objective, search_space(), None if budget else trials, seed=seed,
                           max_step=epochs if budget else None, step_budget=budget)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    model = objective.best[2] if objective.best is not None and objective.best[0] == result.best_value \
        else train(result.best_params, data, seed, epochs)
    loss, acc = evaluate(model, data.test)
    trained = sum(t.last_step or epochs for t in result.trials)
    return {"acc": acc, "loss": loss, "wall": wall, "cpu": cpu, "epochs": trained, "val": result.best_value,
            "trials": len(result.trials)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--budget-fraction", type=float, default=0.4)  # the demo's default (gpbo.demo)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 makes CPU time a load-independent measure")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    run(0, True, 3, 2, 1.0)  # warm-up: imports and first-call costs out of the timings
    rows: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for k, seed in enumerate(args.seeds):
        for es in ((False, True) if k % 2 == 0 else (True, False)):
            r = run(seed, es, args.trials, args.epochs, args.budget_fraction)
            rows[es].append(r)
            print(f"seed {seed} {'early stopping' if es else 'full fidelity '}: test accuracy {r['acc']:.4f} "
                  f"log-loss {r['loss']:.4f}  val {r['val']:.4f}  {r['trials']} trials  {r['epochs']:.0f} epochs  "
                  f"{r['wall']:.1f} s wall  {r['cpu']:.1f} s CPU",
                  flush=True)
    ratios = {k: [e[k] / f[k] for f, e in zip(rows[False], rows[True])] for k in ("wall", "cpu")}
    for es in (False, True):
        acc = [r["acc"] for r in rows[es]]
        print(f"{'early stopping' if es else 'full fidelity '}: median test accuracy {statistics.median(acc):.4f} "
              f"(range {min(acc):.4f}-{max(acc):.4f}), median epochs {statistics.median(r['epochs'] for r in rows[es]):.0f}, "
              f"median wall {statistics.median(r['wall'] for r in rows[es]):.1f} s")
    for k, ratio in ratios.items():
        print(f"{k}-time ratio (early stopping / full), paired by seed: median {statistics.median(ratio):.2f} "
              f"(each: {', '.join(f'{x:.2f}' for x in ratio)})")


if __name__ == "__main__":
    main()
