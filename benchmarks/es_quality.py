"""Smoke-level quality check of early stopping on LCBench (YAHPO Gym surrogate), development tasks only.

Sequential random search: the same configurations per seed for every rule
(common random numbers); each trial trains epoch by epoch, reports its
validation accuracy and asks the rule whether to stop. The metric is the regret
(percentage points) of the best configuration that reached epoch 52, against
the reference optimum (best of 100,000 random configurations at epoch 52,
cached under benchmarks/results/), at 520 and 1,560 cumulative epochs
(10 and 30 full trainings). Rules: no stopping, the median rule
(:func:`gpbo.early_stopping.model_based.median_rule_stops`, the model-based
rule's own fallback, same minimum step) and :class:`ModelBasedRule` defaults.
The full suite (baselines, workers, 16 seeds) is benchmarks' multi-fidelity
sweep; this is a few seeds for development.

Usage: python benchmarks/es_quality.py [--tasks 3945 7593 34539] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from gpbo.early_stopping import Curves
from gpbo.early_stopping.model_based import ModelBasedRule, median_rule_stops

DATA = Path(__file__).resolve().parents[1] / ".." / ".." / "shared" / "yahpo_lcbench"
DEV_TASKS = ("3945", "7593", "34539", "126025", "126026", "126029", "146212", "167104")
OUT = Path(__file__).resolve().parent / "results" / "es_quality"
MAX_STEP, BUDGETS = 52, (520, 1560)
# (name, low, high, log) in the surrogate's column order after epoch
PARAMS = [("batch_size", 16, 512, True), ("learning_rate", 1e-4, 1e-1, True), ("momentum", 0.1, 0.99, False),
          ("weight_decay", 1e-5, 0.1, False), ("num_layers", 1, 5, False), ("max_units", 64, 1024, True),
          ("max_dropout", 0.0, 1.0, False)]
INTEGER = {"batch_size", "num_layers", "max_units"}


class LCBench:
    """The surrogate for one task: unit-cube configurations -> learning curves (val_accuracy, %)."""

    def __init__(self, task: str, data: Path) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(data / "model.onnx"), providers=["CPUExecutionProvider"])
        self.task_code = json.loads((data / "encoding.json").read_text())["OpenML_task_id"][task]

    @staticmethod
    def decode(U: np.ndarray) -> np.ndarray:
        """(B, 7) unit cube -> raw hyperparameters."""
        cols = []
        for j, (name, lo, hi, log) in enumerate(PARAMS):
            v = np.exp(np.log(lo) + U[:, j] * (np.log(hi) - np.log(lo))) if log else lo + U[:, j] * (hi - lo)
            cols.append(np.round(v) if name in INTEGER else v)
        return np.stack(cols, 1)

    def accuracy(self, U: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        """(B,) val_accuracy of configurations U (B, 7) at epochs (B,)."""
        x_cont = np.concatenate([epochs[:, None], self.decode(U)], 1).astype(np.float32)
        x_cat = np.full((len(U), 1), self.task_code, dtype=np.int32)
        return self.session.run(None, {"x_cat": x_cat, "x_cont": x_cont})[0][:, 1].astype(np.float64)

    def curves(self, U: np.ndarray) -> np.ndarray:
        """(B, 52) learning curves."""
        B = len(U)
        rows = np.repeat(U, MAX_STEP, 0)
        return self.accuracy(rows, np.tile(np.arange(1, MAX_STEP + 1), B).astype(np.float64)).reshape(B, MAX_STEP)


def reference(bench: LCBench, task: str) -> float:
    """Best epoch-52 accuracy of 100,000 random configurations (cached)."""
    path = OUT / f"reference_{task}.json"
    if path.exists():
        return json.loads(path.read_text())["best"]
    U = np.random.default_rng(12345).random((100_000, 7))
    best = max(float(bench.accuracy(U[i:i + 10_000], np.full(10_000, 52.0)).max()) for i in range(0, 100_000, 10_000))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"best": best}))
    return best


def run(rule: str, U: np.ndarray, Y: np.ndarray) -> tuple[dict[int, float], int, float]:
    """Sequential random search with ``rule``: best full-fidelity value at each budget, full trainings, seconds deciding."""
    model = ModelBasedRule() if rule == "model" else None
    min_step = ModelBasedRule().min_fraction * MAX_STEP
    X = torch.from_numpy(U)
    steps: list[torch.Tensor] = []
    values: list[torch.Tensor] = []
    stopped: list[bool] = []
    used, best, at_budget, full, decide = 0, -math.inf, {}, 0, 0.0
    for i in range(len(U)):
        steps.append(torch.zeros(0, dtype=torch.float64))
        values.append(torch.zeros(0, dtype=torch.float64))
        stopped.append(False)
        for t in range(1, MAX_STEP + 1):
            used += 1
            steps[i] = torch.arange(1.0, t + 1, dtype=torch.float64)
            values[i] = torch.from_numpy(Y[i, :t])
            if t == MAX_STEP:
                best, full = max(best, float(Y[i, -1])), full + 1
            for b in BUDGETS:
                if used == b:
                    at_budget[b] = best
            if used >= BUDGETS[-1] or t == MAX_STEP or rule == "none":
                continue
            running = torch.zeros(i + 1, dtype=torch.bool)
            running[i] = True
            curves = Curves(X[: i + 1], tuple(steps), tuple(values), running, torch.tensor(stopped), float(MAX_STEP))
            t0 = time.perf_counter()
            stop = (model.should_stop(curves, i) if model is not None
                    else median_rule_stops(curves, i, min_step=min_step, min_trials=3))
            decide += time.perf_counter() - t0
            if stop:
                stopped[i] = True
                break
        if used >= BUDGETS[-1]:
            break
    return at_budget, full, decide


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", nargs="+", default=["3945", "7593", "34539"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rules", nargs="+", default=["none", "median", "model"])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    for task in args.tasks:
        if task not in DEV_TASKS:
            raise SystemExit(f"task {task} is not a development task {DEV_TASKS}")
    rows = []
    for task in args.tasks:
        bench = LCBench(task, args.data)
        ref = reference(bench, task)
        for seed in range(args.seeds):
            U = np.random.default_rng(seed).random((BUDGETS[-1] // 2, 7))
            Y = bench.curves(U)
            for rule in args.rules:
                at_budget, full, decide = run(rule, U, Y)
                regret = {b: ref - at_budget.get(b, -math.inf) for b in BUDGETS}
                rows.append((task, seed, rule, regret, full))
                print(f"task {task} seed {seed} {rule:6s} regret@520 {regret[520]:7.3f} regret@1560 {regret[1560]:7.3f} "
                      f"full trainings {full:3d}  deciding {decide:6.1f} s", flush=True)
    print("\nmedian regret over seeds (percentage points of val_accuracy)")
    for task in args.tasks:
        for rule in args.rules:
            r = [row for row in rows if row[0] == task and row[2] == rule]
            med = {b: float(np.median([row[3][b] for row in r])) for b in BUDGETS}
            print(f"  task {task} {rule:6s} @520 {med[520]:7.3f}  @1560 {med[1560]:7.3f}  "
                  f"full trainings {np.median([row[4] for row in r]):5.1f}")


if __name__ == "__main__":
    main()
