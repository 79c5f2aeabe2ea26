"""How wrong was the model rule where it stopped? The stopped trials' true finals against the rule's predictions.

    python -m benchmarks.es_stop_audit OUT [--tasks 7593 3945 126026] [--seeds 0 1 2 3 4 5]

``OUT`` is a sweep's output folder holding 1-worker ``gpbo_es`` runs of the
LCBench tasks at 30 trainings (``python -m benchmarks.sweep --problems
mf_lcbench_7593 --methods gpbo_es --workers 1 --budget 30 --out OUT``). With
one worker the trials ran one after the other, so the study the rule saw when
it stopped trial k is trials 0..k-1 whole and trial k's reports so far. For
every stop the rule is asked again on that study (it is stateless, so it
decides the same), and the surrogate gives the stopped trial's true epoch-52
value. Printed per task and range of stop epochs:

- ``k_true``: ``sqrt(2 mean max(z, 0)^2)`` over those stops, ``z = (y(52) - mean) / std``
  with the curve model's unscaled posterior: how far above its prediction
  the stopped trials would have ended (1 for a calibrated Gaussian);
- ``k_rule``: the median std scale the rule applied to those decisions;
- ``z > 2``: the share of stops whose true final was more than two
  (unscaled) standard deviations above the prediction;
- ``lost``: stops whose true final beat the study's own final best.

See docs/decisions/0057-early-scale.md.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from benchmarks.mf_problems import get_mf
from benchmarks.report import parse_records
from gpbo.early_stopping import Curves
from gpbo.early_stopping.calibration import tail_scale
from gpbo.early_stopping.model_based import ModelBasedRule

RANGES = ((1, 12), (13, 25), (26, 51))


def _stops(jobs: list[dict], task: str) -> list[tuple[int, float, float, bool]]:
    """(stop epoch, z, the rule's scale, lost) for each stop of one run; ``jobs`` its job lines in start order."""
    problem = get_mf(f"mf_lcbench_{task}")
    X = problem.space().encode([j["params"] for j in jobs])
    final_best = min(j["values"][-1] for j in jobs if j["steps"] == problem.max_step)
    rule, out = ModelBasedRule(), []
    for k, job in enumerate(jobs[:-1]):  # the last job was cut by the budget, not stopped by the rule
        if not job["stopped"]:
            continue
        steps = tuple(torch.arange(1, len(j["values"]) + 1, dtype=torch.float64) for j in jobs[:k + 1])
        values = tuple(-torch.tensor(j["values"], dtype=torch.float64) for j in jobs[:k + 1])  # to maximise
        running = torch.arange(k + 1) == k
        stopped = torch.tensor([j["stopped"] for j in jobs[:k + 1]]) & ~running
        curves = Curves(X[:k + 1], steps, values, running, stopped, float(problem.max_step))
        if not rule.should_stop(curves, k):  # stopped by the median rule before the model decides
            continue
        mean, std = rule.predict_final(curves)
        scale = rule._scale(curves, float(len(job["values"])))  # noqa: SLF001 - the rule's own scale, audited
        true = -list(problem.trajectory(job["params"]))[problem.max_step - 1][0]
        out.append((len(job["values"]), (true - float(mean[k])) / float(std[k]), scale, -true < final_best))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--tasks", nargs="+", default=["7593", "3945", "126026"])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(6)))
    args = ap.parse_args(argv)
    records = list(parse_records((args.out / "results.jsonl").read_text().splitlines()))
    runs = {(r["problem"], r["seed"]): r["attempt"] for r in records
            if r["kind"] == "run" and r["method"] == "gpbo_es" and r["workers"] == 1}
    for task in args.tasks:
        stops = []
        for seed in args.seeds:
            attempt = runs.get((f"mf_lcbench_{task}", seed))
            jobs = sorted((r for r in records if r["kind"] == "job" and r.get("attempt") == attempt),
                          key=lambda r: r["job"])
            if attempt is not None:
                stops += _stops(jobs, task)
        for lo, hi in RANGES:
            sel = [s for s in stops if lo <= s[0] <= hi]
            if sel:
                z = torch.tensor([s[1] for s in sel], dtype=torch.float64)
                print(f"task {task} stops at epochs {lo}-{hi}: n={len(sel)} k_true={tail_scale(z):.2f} "
                      f"k_rule={statistics.median(s[2] for s in sel):.2f} z>2={float((z > 2).double().mean()):.2f} "
                      f"lost={sum(s[3] for s in sel)}")


if __name__ == "__main__":
    main()
