"""LCBench through YAHPO Gym's surrogate (``/work/shared/yahpo_lcbench``, see its README), via onnxruntime.

Only the development tasks of that README may be used (:data:`DEV_TASKS`);
asking for another task is an error. The surrogate is called at the last
epoch (52) and returns, per configuration, val_accuracy (%) and the
cumulative training time (s). :func:`curves` returns whole learning curves
(epochs 1 to 52) for the multi-fidelity suite (:mod:`benchmarks.mf_problems`),
and :func:`reference_optimum` its regret reference: the best val_accuracy at
epoch 52 over 100,000 random configurations (the README's rule), computed once
per task and cached in ``benchmarks/results/lcbench_reference/`` (ignored by git).

The hypervolume reference point of a task (:func:`reference_point`) is
BoTorch's rule (``gpbo.pareto.infer_reference_point``: nadir of the front
minus 10 % of its range) applied to 8192 scrambled-Sobol configurations
(seed 0), in the maximisation units (val_accuracy, -time). No maximum
hypervolume is known.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import torch

from benchmarks.problems import Int, Real

__all__ = ["DEV_TASKS", "EPOCHS", "PARAMS", "check_dev_task", "curves", "evaluate", "reference_optimum",
           "reference_point"]

ROOT = Path(os.environ.get("GPBO_LCBENCH_DIR", Path(__file__).resolve().parents[2] / "shared" / "yahpo_lcbench"))
if not ROOT.exists():
    ROOT = Path("/work/shared/yahpo_lcbench")
CACHE = Path(__file__).resolve().parent / "results" / "lcbench_reference"
DEV_TASKS = ("3945", "7593", "34539", "126025", "126026", "126029", "146212", "167104")
EPOCHS = 52
PARAMS = {
    "batch_size": Int(16, 512, log=True),
    "learning_rate": Real(1e-4, 1e-1, log=True),
    "momentum": Real(0.1, 0.99),
    "weight_decay": Real(1e-5, 0.1),
    "num_layers": Int(1, 5),
    "max_units": Int(64, 1024, log=True),
    "max_dropout": Real(0.0, 1.0),
}


def check_dev_task(task: str) -> None:
    if str(task) not in DEV_TASKS:
        raise ValueError(f"LCBench task {task!r} is not a development task; expected one of {DEV_TASKS}")


@functools.cache
def _session():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(ROOT / "model.onnx"), opts, providers=["CPUExecutionProvider"])


@functools.cache
def _task_code(task: str) -> int:
    return int(json.loads((ROOT / "encoding.json").read_text())["OpenML_task_id"][task])


def _run(task: str, x: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """``x (n, 7)`` raw values, ``epochs (n,)`` -> the surrogate's ``(n, 6)`` outputs, float64."""
    check_dev_task(task)
    cont = np.concatenate([epochs.reshape(-1, 1), x], 1).astype(np.float32)  # epoch first
    cat = np.full((len(x), 1), _task_code(task), dtype=np.int32)
    return _session().run(None, {"x_cat": cat, "x_cont": cont})[0].astype(np.float64)


def evaluate(task: str, X: torch.Tensor) -> torch.Tensor:
    """``X (n, 7)`` raw values in :data:`PARAMS` order -> ``(n, 2)``: val_accuracy (%), time (s), float64."""
    x = np.asarray(X, dtype=np.float64).reshape(-1, len(PARAMS))
    out = _run(task, x, np.full(len(x), EPOCHS))  # (n, 6)
    return torch.tensor(out[:, [1, 0]], dtype=torch.float64)


def curves(task: str, X, epochs: int = EPOCHS) -> tuple[np.ndarray, np.ndarray]:
    """Learning curves: ``X (n, 7)`` raw values in :data:`PARAMS` order -> val_accuracy (%) and
    cumulative training time (s), each ``(n, epochs)`` for epochs 1..``epochs``, float64.

    The surrogate predicts each epoch independently, so its time is not always
    increasing; it is made so (running maximum) and each epoch costs at least 1 ms.
    """
    x = np.asarray(X, dtype=np.float64).reshape(-1, len(PARAMS))
    n = len(x)
    e = np.tile(np.arange(1, epochs + 1, dtype=np.float64), n)  # (n * epochs,)
    out = _run(task, np.repeat(x, epochs, 0), e).reshape(n, epochs, 6)
    dt = np.maximum(np.diff(np.maximum.accumulate(out[..., 0], 1), prepend=0.0, axis=1), 1e-3)  # (n, epochs)
    return out[..., 1], np.cumsum(dt, 1)


def random_configs(n: int, seed: int) -> np.ndarray:
    """``(n, 7)`` uniform (log-uniform where ``log``) random configurations, :data:`PARAMS` order."""
    from benchmarks.problems import _sample_param

    rng = np.random.default_rng(seed)
    return np.array([[float(_sample_param(s, rng)) for s in PARAMS.values()] for _ in range(n)])


def reference_optimum(task: str, n: int = 100_000, *, seed: int = 0, cache: Path | None = None) -> float:
    """The best val_accuracy (%) at epoch 52 over ``n`` random configurations (seed ``seed``).

    Computed once and cached as JSON in ``cache`` (default :data:`CACHE`), keyed by task, n and seed.
    """
    check_dev_task(task)
    path = Path(cache or CACHE) / f"{task}_n{n}_seed{seed}.json"
    if path.exists():
        return float(json.loads(path.read_text())["best_val_accuracy"])
    x = random_configs(n, seed)
    best = max(float(_run(task, c, np.full(len(c), EPOCHS))[:, 1].max()) for c in np.array_split(x, -(-n // 10_000)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": task, "n": n, "seed": seed, "epoch": EPOCHS, "best_val_accuracy": best}))
    return best


@functools.cache
def reference_point(task: str) -> tuple[float, float]:
    """(val_accuracy, -time) reference point: BoTorch's rule on 8192 Sobol configurations of the task."""
    from benchmarks.problems import Problem
    from gpbo.pareto import infer_reference_point

    space = Problem("lcbench", PARAMS, fn=lambda p: 0.0, optimum=float("nan")).space()
    U = torch.quasirandom.SobolEngine(len(PARAMS), scramble=True, seed=0).draw(8192, dtype=torch.float64)
    X = torch.tensor([[float(p[n]) for n in PARAMS] for p in space.decode(U)], dtype=torch.float64)
    out = evaluate(task, X)
    Y = torch.stack([out[:, 0], -out[:, 1]], -1)  # (n, 2) maximised
    order = Y[:, 0].argsort(descending=True)  # 2-d front by a sweep: keep points that raise the best -time
    ys = Y[order]
    front = ys[:, 1] > torch.cat([ys.new_full((1,), -float("inf")), torch.cummax(ys[:, 1], 0).values[:-1]])
    ref = infer_reference_point(ys[front])
    return float(ref[0]), float(ref[1])
