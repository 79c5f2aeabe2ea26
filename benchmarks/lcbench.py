"""LCBench through YAHPO Gym's surrogate (``/work/shared/yahpo_lcbench``, see its README), via onnxruntime.

Only the development tasks of that README may be used (:data:`DEV_TASKS`);
asking for another task is an error. The surrogate is called at the last
epoch (52) and returns, per configuration, val_accuracy (%) and the
cumulative training time (s).

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

__all__ = ["DEV_TASKS", "EPOCHS", "PARAMS", "check_dev_task", "evaluate", "reference_point"]

ROOT = Path(os.environ.get("GPBO_LCBENCH_DIR", Path(__file__).resolve().parents[2] / "shared" / "yahpo_lcbench"))
if not ROOT.exists():
    ROOT = Path("/work/shared/yahpo_lcbench")
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


def evaluate(task: str, X: torch.Tensor) -> torch.Tensor:
    """``X (n, 7)`` raw values in :data:`PARAMS` order -> ``(n, 2)``: val_accuracy (%), time (s), float64."""
    check_dev_task(task)
    x = np.asarray(X, dtype=np.float64).reshape(-1, len(PARAMS))
    cont = np.concatenate([np.full((len(x), 1), EPOCHS), x], 1).astype(np.float32)  # epoch first
    cat = np.full((len(x), 1), _task_code(task), dtype=np.int32)
    out = _session().run(None, {"x_cat": cat, "x_cont": cont})[0]  # (n, 6)
    return torch.tensor(out[:, [1, 0]], dtype=torch.float64)


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
