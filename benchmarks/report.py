"""Summary table, rank tests and regret plots from a sweep's ``results.jsonl``.

    python -m benchmarks.report OUT_DIR [--reference gpbo]

Per run the *final metric* is:
- synthetic problems: log10 of the simple regret of the best noiseless value
  evaluated (``true``), floored at 1e-12; lower is better;
- Bayesmark problems: the run's Bayesmark score 100 * (1 - normalised loss of
  its best CV loss); higher is better. ``opt`` = min(cached random-search
  opt, best loss any run in this file saw); ``clip`` = the cached median of one
  random evaluation (``benchmarks/bayesmark_baselines.json``). A problem
  missing from the cache is scored with this file's ``random`` runs (clip =
  median of their evaluations) and flagged;
- other problems ("raw"): the best loss; lower is better;
- multi-outcome problems (:mod:`benchmarks.mo_report`): the hypervolume of
  the feasible points (higher is better; plotted as the log10 gap to the
  known maximum), or, with one objective and constraints, the best feasible
  value (lower is better; plotted as log10 regret); constrained problems also
  get a table of the feasible fraction.

Each metric kind has a direction (:data:`HIGHER_BETTER`); the rank test,
"median >=" and the tables follow it.

Win/tie/loss: for each problem, the reference method against each other
method, two-sided Mann-Whitney U test over seeds at alpha = 0.05 (tie when not
significant). With ``--paired``, the Wilcoxon signed-rank test on the
per-seed differences instead, where both methods completed every seed (seed
s of every method shares its noise draws, and for gpbo and BoTorch its
initial design, so the pairing removes that share of the spread); the
better one is then the one with the better median difference. "median >="
counts problems where the reference's median is at least as good. The problems of each significant win or loss are listed under
the table ("significant differences").
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from benchmarks import mo_report
from benchmarks.hpo import normalised_loss
from benchmarks.mo_problems import is_multi_outcome
from benchmarks.problems import get

BASELINES = Path(__file__).resolve().parent / "bayesmark_baselines.json"
ALPHA = 0.05
# metric kind -> higher is better (the kinds not named here are lower-is-better)
HIGHER_BETTER = {"score": True, **mo_report.HIGHER_BETTER}


def higher_better(kind: str) -> bool:
    return HIGHER_BETTER.get(kind, False)


def open_results(folder: Path):
    """A sweep folder's ``results.jsonl``, or else its stored gzipped copy, opened as text."""
    path = Path(folder) / "results.jsonl"
    return path.open() if path.exists() else gzip.open(path.with_suffix(".jsonl.gz"), "rt")


def parse_records(lines: Iterable[str]) -> Iterator[dict]:
    """The JSON records of a results file's lines; a line cut by a kill is skipped."""
    for line in lines:
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def load(folder: Path) -> dict[tuple[str, str, int, int, int], dict[int, dict]]:
    """(method, problem, seed, budget, q) -> idx -> record, from a sweep folder's results
    (a cut last line, as a kill leaves it, is skipped)."""
    runs: dict = defaultdict(dict)
    with open_results(folder) as f:
        lines = f.read().splitlines()
    for r in parse_records(lines):
        runs[(r["method"], r["problem"], r["seed"], r["budget"], r["q"])].setdefault(r["idx"], r)
    return runs


def _nan(v) -> float:
    return math.nan if v is None else float(v)


def best_so_far(values: list[float]) -> np.ndarray:
    v = np.array([x if math.isfinite(x) else np.inf for x in values])
    return np.minimum.accumulate(v)


def curves(runs, problem: str, budget: int, q: int, methods, seeds, field: str):
    """{method: (seeds, budget) best-so-far of ``field``} for complete runs only."""
    out = {}
    for m in methods:
        rows = []
        for s in seeds:
            rec = runs.get((m, problem, s, budget, q), {})
            if len(rec) >= budget:
                rows.append(best_so_far([_nan(rec[i][field]) for i in range(budget)]))
        if rows:
            out[m] = np.stack(rows)
    return out


def baselines(problem: str, runs, budget, q, seeds) -> tuple[float, float, str]:
    """(opt, clip, source) of a Bayesmark problem."""
    cache = json.loads(BASELINES.read_text()) if BASELINES.exists() else {}
    seen = [_nan(r["value"]) for (m, p, *_), rec in runs.items() if p == problem for r in rec.values()]
    seen_min = np.nanmin(seen) if seen else math.inf
    if problem in cache:
        c = cache[problem]
        return min(c["opt"], seen_min), c["clip"], "cache"
    rand = [_nan(r["value"]) for (m, p, *_), rec in runs.items()
            if p == problem and m == "random" for r in rec.values()]
    if not rand:
        return math.nan, math.nan, "missing"
    return min(np.nanmin(rand), seen_min), float(np.nanmedian(rand)), "this sweep's random runs"


def metric_curves(runs, problem: str, budget: int, q: int, methods, seeds):
    """({method: (seeds, budget) curve}, kind, note); the direction is ``higher_better(kind)``."""
    p = get(problem)
    if is_multi_outcome(p):
        return mo_report.metric_curves(runs, p, budget, q, methods, seeds)
    if p.kind == "synthetic":
        cur = curves(runs, problem, budget, q, methods, seeds, "true")
        return {m: np.log10(np.maximum(c - p.optimum, 1e-12)) for m, c in cur.items()}, "log10 regret", ""
    cur = curves(runs, problem, budget, q, methods, seeds, "value")
    if p.kind == "bayesmark":
        opt, clip, src = baselines(problem, runs, budget, q, seeds)
        if math.isfinite(opt):
            return ({m: 100 * (1 - normalised_loss(c, opt, clip)) for m, c in cur.items()}, "score",
                    "" if src == "cache" else f"opt/clip from {src}")
    return cur, "best loss", ""


def _pct(x: np.ndarray, qs) -> np.ndarray:
    """Percentiles; with +inf present (no feasible point yet) the nearest rank, as interpolating gives NaN."""
    return np.percentile(x, qs, method="linear" if np.isfinite(x).all() else "nearest")


def _fmt(x: np.ndarray) -> str:
    q25, med, q75 = _pct(x, [25, 50, 75])
    return f"{med:.3g} [{q25:.3g}, {q75:.3g}]"


def compare(ref: np.ndarray, other: np.ndarray, higher_better: bool, paired: bool = False) -> str:
    """"win", "tie" or "loss" of ``ref`` against ``other`` (final metrics over seeds).

    ``paired``: the arrays hold the same seeds in the same order (Wilcoxon
    signed-rank); otherwise Mann-Whitney U.
    """
    from scipy.stats import mannwhitneyu, wilcoxon

    if len(ref) < 2 or len(other) < 2 or np.allclose(np.r_[ref, other], ref[0]):
        return "tie"
    if paired:
        diff = ref - other
        if np.allclose(diff, 0.0):
            return "tie"
        p, gain = wilcoxon(ref, other).pvalue, np.median(diff)
    else:
        p, gain = mannwhitneyu(ref, other, alternative="two-sided").pvalue, np.median(ref) - np.median(other)
    if p >= ALPHA or gain == 0:
        return "tie"
    return "win" if (gain > 0) == higher_better else "loss"


def plot(path: Path, problem: str, cur: dict, kind: str, q: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for m, c in cur.items():
        x = np.arange(1, c.shape[1] + 1)
        with np.errstate(invalid="ignore"):  # +inf (no feasible point yet) is not drawn
            lo, med, hi = np.percentile(c, [25, 50, 75], axis=0)
        ax.plot(x, med, label=m, lw=1.4)
        ax.fill_between(x, lo, hi, alpha=0.18)
    ax.set_xlabel("evaluations" + (f" (batches of {q})" if q > 1 else ""))
    ax.set_ylabel(f"{kind} (median, IQR band)")
    ax.set_title(problem)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out: Path, *, methods, problems, seeds, budget_of, q, command=None,
          reference: str | None = None, paired: bool = False) -> dict:
    """Writes OUT/summary.md, OUT/summary.json and OUT/plots/<problem>.png."""
    out = Path(out)
    runs = load(out)
    ref = reference or next((m for m in methods if m.startswith("gpbo")), methods[0])
    (out / "plots").mkdir(exist_ok=True)
    table, wtl, notes, scores = {}, defaultdict(lambda: defaultdict(int)), [], defaultdict(list)
    significant: dict[str, list[str]] = defaultdict(list)  # method -> ["win branin", "loss ...", ...]
    for prob in problems:
        cur, kind, note = metric_curves(runs, prob, budget_of[prob], q, methods, seeds)
        if note:
            notes.append(f"{prob}: {note}")
        if not cur:
            continue
        p = get(prob)
        shown, label = mo_report.plot_curves(p, cur, kind) if is_multi_outcome(p) else (cur, kind)
        plot(out / "plots" / f"{prob}.png", prob, shown, label, q)
        final = {m: c[:, -1] for m, c in cur.items()}
        table[prob] = {"kind": kind, **{m: {"median": float(_pct(v, 50)), "q25": float(_pct(v, 25)),
                                            "q75": float(_pct(v, 75)), "n": len(v),
                                            "text": _fmt(v)} for m, v in final.items()}}
        if is_multi_outcome(p):
            for m, v in mo_report.feasible_fraction(runs, p, budget_of[prob], q, methods, seeds).items():
                table[prob][m]["feasible"] = _fmt(v)
        hb = higher_better(kind)
        if kind == "score":
            for m, v in final.items():
                scores[m].append(float(np.mean(v)))
        for m, v in final.items():
            if m == ref or ref not in final:
                continue
            outcome = compare(final[ref], v, hb, paired=paired and len(final[ref]) == len(v) == len(seeds))
            wtl[m][outcome] += 1
            if outcome != "tie":
                significant[m].append(f"{outcome} {prob}")
            med_ref, med_m = np.median(final[ref]), np.median(v)
            wtl[m]["median>="] += int(med_ref >= med_m if hb else med_ref <= med_m)
            wtl[m]["problems"] += 1
    summary = {"reference": ref, "test": "Wilcoxon signed-rank, paired by seed" if paired else "Mann-Whitney U",
               "table": table, "wtl": {m: dict(v) for m, v in wtl.items()},
               "significant": dict(significant),
               "bayesmark_mean_score": {m: float(np.mean(v)) for m, v in scores.items()},
               "notes": notes, "command": vars(command) if command is not None else None}
    info = out / "run_info.json"
    summary["env"] = json.loads(info.read_text()).get("env") if info.exists() else None
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "summary.md").write_text(markdown(summary, methods))
    return summary


def markdown(s: dict, methods) -> str:
    cols = [m for m in methods if any(m in row for row in s["table"].values())]
    lines = ["| problem | metric | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for prob, row in s["table"].items():
        lines.append(f"| {prob} | {row['kind']} | " + " | ".join(
            row[m]["text"] if m in row else "-" for m in cols) + " |")
    feas = {prob: row for prob, row in s["table"].items() if any("feasible" in row.get(m, {}) for m in cols)}
    if feas:
        lines += ["", "Feasible fraction of the evaluations (median [IQR] over seeds):", "",
                  "| problem | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        lines += [f"| {prob} | " + " | ".join(row[m].get("feasible", "-") if m in row else "-" for m in cols) + " |"
                  for prob, row in feas.items()]
    if s["bayesmark_mean_score"]:
        lines += ["", "Bayesmark mean score (mean over seeds, then problems; higher is better):", "",
                  "| " + " | ".join(s["bayesmark_mean_score"]) + " |",
                  "|" + "---|" * len(s["bayesmark_mean_score"]),
                  "| " + " | ".join(f"{v:.2f}" for v in s["bayesmark_mean_score"].values()) + " |"]
    if s["wtl"]:
        lines += ["", f"{s['reference']} against each method, over problems ({s.get('test', 'Mann-Whitney U')} over seeds, "
                  f"alpha {ALPHA}; 'median >=': {s['reference']}'s median at least as good):", "",
                  "| method | win | tie | loss | median >= |", "|---|---|---|---|---|"]
        for m, v in s["wtl"].items():
            lines.append(f"| {m} | {v.get('win', 0)} | {v.get('tie', 0)} | {v.get('loss', 0)} | "
                         f"{v.get('median>=', 0)}/{v.get('problems', 0)} |")
        sig = s.get("significant") or {}
        lines += ["", "significant differences: " + ("; ".join(
            f"{m}: {', '.join(v)}" for m, v in sig.items()) if sig else "none")]
    lines += [f"\nnote: {n}" for n in s["notes"]]
    e = s.get("env")
    if e:
        v = e["versions"]
        lines.append(f"\n{e['date']}, {e['cpu']} ({e['cpu_count']} cores, torch threads {e['torch_threads']}), "
                     + ", ".join(f"{k} {v[k]}" for k in ("torch", "gpytorch", "botorch", "optuna", "hebo",
                                                           "scikit-optimize", "scikit-learn") if k in v))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report")
    ap.add_argument("out")
    ap.add_argument("--reference", default=None)
    ap.add_argument("--methods", default=None, help="override run_info.json's (e.g. for merged files)")
    ap.add_argument("--problems", default=None)
    ap.add_argument("--seeds", type=int, default=None, help="report seeds 0..N-1")
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--paired", action="store_true",
                    help="Wilcoxon signed-rank test paired by seed (methods complete on every seed)")
    a = ap.parse_args(argv)
    path = Path(a.out) / "run_info.json"
    info = json.loads(path.read_text())["args"] if path.exists() else {"budget": None, "batch_size": 1}
    for key in ("methods", "problems", "seeds", "budget", "batch_size"):
        if getattr(a, key) is not None:
            info[key] = getattr(a, key)
    names = [n for item in info["problems"].split(",")
             for n in __import__("benchmarks.sweep").sweep.SUITES.get(item, [item])]
    budget_of = {n: info["budget"] or get(n).default_budget for n in names}
    s = write(Path(a.out), methods=info["methods"].split(","), problems=names,
              seeds=list(range(info["seeds"])), budget_of=budget_of, q=info["batch_size"],
              reference=a.reference, paired=a.paired)
    print(markdown(s, info["methods"].split(",")))


if __name__ == "__main__":
    main()
