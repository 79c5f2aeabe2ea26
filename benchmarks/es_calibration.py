"""Is the freeze-thaw curve model's predictive std right? Its upper-tail scale on LCBench.

    python -m benchmarks.es_calibration [--tasks 7593 3945 34539 126026] [--seeds 3]

Per development task and seed: 60 random configurations (``lcbench.random_configs``);
the model's hyperparameters are fitted on the first 20 whole curves (12
log-spaced reports each, as the stopping rule fits); the other 40 are cut at
epoch t (6, 10, 20) and their epoch-52 values predicted, given the 20 whole
curves, as the rule predicts a running trial. Printed per t:

- ``k_true``: over the 40, ``sqrt(2 mean max(z, 0)^2)``, ``z = (y(52) - mean) / std``, the
  upper-tail scale of the errors (1 for a calibrated Gaussian);
- ``k_backtest``: what :func:`gpbo.early_stopping.calibration.upper_tail_scale`
  estimates from the 20 whole curves alone (each cut at t in turn, the others
  whole), the scale the stopping rule applies.

See docs/decisions/0049-recalibrated-stopping.md.
"""

from __future__ import annotations

import argparse
import math

import torch

from benchmarks import lcbench
from benchmarks.problems import Problem
from gpbo.early_stopping.calibration import tail_scale, upper_tail_scale
from gpbo.early_stopping.freeze_thaw import CurveData, FreezeThaw, fit_theta

N_FIT, N_HELD = 20, 40
STEPS = (6, 10, 20)


def measure(task: str, seed: int) -> dict[int, tuple[float, float]]:
    """{t: (k_true on the held-out curves, k_backtest on the fitted ones)}."""
    raw = lcbench.random_configs(N_FIT + N_HELD, seed)  # (60, 7)
    acc, _ = lcbench.curves(task, raw)  # (60, 52)
    space = Problem(name="lcbench", params=dict(lcbench.PARAMS), fn=lambda p: 0.0, optimum=math.nan).space()
    X = space.encode([dict(zip(lcbench.PARAMS, map(float, row))) for row in raw]).to(torch.float64)  # (60, 7)
    t_all = torch.arange(1, lcbench.EPOCHS + 1, dtype=torch.float64)
    y_all = torch.tensor(acc, dtype=torch.float64)
    idx = torch.logspace(0.0, math.log10(lcbench.EPOCHS), 12).round().long().unique() - 1  # the rule's fit reports
    fit = CurveData.pad(X[:N_FIT], [t_all[idx]] * N_FIT, list(y_all[:N_FIT, idx]), lcbench.EPOCHS)
    theta = fit_theta(fit)[0]  # (1, D)
    whole = CurveData.pad(X[:N_FIT], [t_all] * N_FIT, list(y_all[:N_FIT]), lcbench.EPOCHS, (fit.y_mean, fit.y_std))
    out = {}
    for t in STEPS:
        steps = [t_all] * N_FIT + [t_all[:t]] * N_HELD  # the fitted curves whole, the held-out ones cut at t
        cut = CurveData.pad(X, steps, [y[: len(s)] for y, s in zip(y_all, steps)], lcbench.EPOCHS,
                            (fit.y_mean, fit.y_std))
        post = FreezeThaw.condition(theta, cut)
        z = (y_all[N_FIT:, -1] - post.mean[0, N_FIT:]) / post.std[0, N_FIT:]
        k_backtest, _ = upper_tail_scale(theta, whole, torch.tensor([t / lcbench.EPOCHS], dtype=torch.float64))
        out[t] = (tail_scale(z), float(k_backtest[0]))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["7593", "3945", "34539", "126026"])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print("| task | seed | " + " | ".join(f"k_true / k_backtest, t = {t}" for t in STEPS) + " |")
    print("|---|---|" + "---|" * len(STEPS))
    for task in args.tasks:
        lcbench.check_dev_task(task)
        for seed in range(args.seeds):
            res = measure(task, seed)
            print(f"| {task} | {seed} | " + " | ".join(f"{a:.2f} / {b:.2f}" for a, b in res.values()) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
