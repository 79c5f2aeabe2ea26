"""Benchmark sweep: many methods x problems x seeds, resumable, one JSONL line per evaluation.

    python -m benchmarks.sweep --problems synthetic --methods gpbo,random,tpe --seeds 16
    python -m benchmarks.sweep --problems bayesmark --budget 128 --batch-size 8 --seeds 5
    python -m benchmarks.sweep --quick            # CI smoke run (< 2 min on 2 cores)
    python -m benchmarks.sweep --methods gpbo,botorch:qKnowledgeGradient,botorch:qLowerBoundMaxValueEntropy
    python -m benchmarks.sweep --problems mo --seeds 16   # multi-objective and constrained suite, q = 4
    python -m benchmarks.sweep --problems mf --seeds 16 --workers 1,4,16 --budget 30  # multi-fidelity suite

gpbo runs batched: every run of a gpbo method whose problems share one encoded
space (same ``DimSpec``: all seeds of a problem, and problems of equal
dimension such as Branin and its noisy variant) advances through ONE
``gpbo.engine.suggest`` call per iteration with P = seeds x problems. The
other methods run one run at a time.

``OUT/results.jsonl`` is append-only; each line is one evaluation
``{method, problem, seed, idx, budget, q, params, value, true, holdout,
t_suggest, t_eval}`` (``value`` is what the optimiser saw: NaN -> ``null`` for
a failed evaluation, noise added for ``*_noisy`` problems; ``true`` the
noiseless value). Rerunning the same command after a kill reads the file and
continues where it stopped (recorded evaluations are replayed, never redone).
Multi-outcome problems (the ``mo`` suite, :mod:`benchmarks.mo_problems`)
run through :mod:`benchmarks.mo_sweep` with their own methods
(:mod:`benchmarks.mo_methods`; ``random`` serves both kinds), ``2 (d + 1)``
Sobol initial points and, by default, q = 4; their records carry
``outcomes``, ``feasible`` and ``hv`` / ``best_feasible`` instead of
``value`` and ``true``. A method is run only on the problems of its kind
(``scbo`` only on those with one objective).
Multi-fidelity problems (the ``mf`` suite, :mod:`benchmarks.mf_problems`)
run through :mod:`benchmarks.mf_sweep`: learning curves step by step on a
simulated asynchronous backend (``--workers``), with ``--budget`` counted in
full trainings, their methods (:mod:`benchmarks.mf_methods`) and report
(:mod:`benchmarks.mf_report`); a sweep is either all multi-fidelity or none.
At the end :mod:`benchmarks.report` writes ``summary.md``, ``summary.json`` and
``plots/*.png`` into OUT.

Noise: ``*_noisy`` problems add ``N(0, noise_std^2)`` drawn from
``default_rng([seed, idx, 12345])`` (the same draws for every method).
Initial design: ``n_init = q`` if q > 1 (Bayesmark: the first batch is
random), else ``max(5, d + 1)`` (gpbo's default); the same for every method.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import methods as M
from benchmarks import mf_methods as MFM
from benchmarks import mo_methods as MM
from benchmarks import mo_sweep
from benchmarks.mf_problems import MF_SUITE, is_multi_fidelity
from benchmarks.mo_problems import MO_SUITE, is_multi_outcome
from benchmarks.problems import DIVERGING, SYNTHETIC, Problem, get
from benchmarks.report import parse_records
from gpbo.settings import Settings

SUITES = {
    "synthetic": list(SYNTHETIC),
    "diverging": list(DIVERGING),  # a few outcomes orders of magnitude above the rest
    # The affordable Bayesmark-style subset (see RESULTS.md); any
    # "<model>-<dataset>-<metric>" name works too.
    "bayesmark": ["knn-iris-nll", "svm-wine-nll", "dt-diabetes-mse", "lasso-diabetes-mae",
                  "linear-breast_cancer-nll", "rf-iris-acc"],
    "mo": MO_SUITE,  # multi-objective and constrained (benchmarks/mo_problems.py)
    "mf": MF_SUITE,  # multi-fidelity, early stopping (benchmarks/mf_problems.py, benchmarks/mf_sweep.py)
}
QUICK = dict(problems="branin,branin_noisy,hartmann6,knn-iris-nll", methods="gpbo,gpbo_ucb,random,tpe",
             seeds=2, budget=14)
DEFAULT_METHODS = "gpbo,gpbo_ucb,gpbo_qlognei,gpbo_thompson,random,tpe,optuna_gp,botorch"
Key = tuple[str, str, int]  # (method, problem, seed)


def applies(method: str, problem: Problem) -> bool:
    """Whether a method runs on a problem: multi-outcome methods on multi-outcome problems, the others on the rest."""
    return MM.applies(method, problem) if is_multi_outcome(problem) else M.is_known(method)


def n_init(problem: Problem, q: int, budget: int) -> int:
    return min(budget, q if q > 1 else max(5, len(problem.params) + 1))


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def evaluate(problem: Problem, params: dict, seed: int, idx: int) -> dict:
    """One evaluation -> the record fields ``value``, ``true``, ``holdout``, ``t_eval``."""
    t0 = time.perf_counter()
    holdout = None
    try:
        if hasattr(problem, "evaluate"):
            res = problem.evaluate(params)
            true, holdout = res["value"], res["holdout"]
        else:
            true = float(problem.fn(params))
    except Exception:  # noqa: BLE001 - a failing objective is a failed evaluation
        true = math.nan
    value = true
    if problem.noise_std and math.isfinite(true):
        value = true + problem.noise_std * float(np.random.default_rng([seed, idx, 12345]).normal())
    fin = lambda x: x if x is not None and math.isfinite(x) else None  # noqa: E731
    return {"value": fin(value), "true": fin(true), "holdout": fin(holdout),
            "t_eval": time.perf_counter() - t0}


class Store:
    """The append-only JSONL file and the records already in it."""

    def __init__(self, path: Path, budget_of: dict[str, int], q: int):
        self.path, self.q = path, q
        self.done: dict[Key, dict[int, dict]] = defaultdict(dict)
        if path.exists():
            for r in parse_records(path.read_text().splitlines()):
                if r.get("q") == q and r.get("budget") == budget_of.get(r.get("problem")):
                    self.done[(r["method"], r["problem"], r["seed"])].setdefault(r["idx"], r)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with path.open("a") as fh:  # terminate a cut line so the next record parses
                fh.write("\n")
        self.fh = path.open("a")

    def write(self, key: Key, idx: int, budget: int, params: dict, res: dict, t_suggest: float) -> dict:
        rec = {"method": key[0], "problem": key[1], "seed": key[2], "idx": idx, "budget": budget,
               "q": self.q, "params": {k: _py(v) for k, v in params.items()}, **res,
               "t_suggest": t_suggest}
        self.fh.write(json.dumps(rec) + "\n")
        self.fh.flush()
        self.done[key][idx] = rec
        return rec

    def close(self):
        self.fh.close()


def _val(rec: dict) -> float:
    return math.nan if rec["value"] is None else rec["value"]


def run_sequential(method: str, problem: Problem, seed: int, budget: int, q: int,
                   store: Store, bar) -> None:
    key = (method, problem.name, seed)
    rec = store.done.get(key, {})
    m = M.make(method, problem, seed, n_init(problem, q, budget), q)
    n = 0
    while n in rec and n < budget:  # replay the recorded prefix
        n += 1
    if n:
        m.tell([rec[i]["params"] for i in range(n)], [_val(rec[i]) for i in range(n)])
    while n < budget:
        k = min(q, budget - n)
        t0 = time.perf_counter()
        batch = m.ask(k)
        ts = (time.perf_counter() - t0) / k
        vals = []
        for j, p in enumerate(batch):
            r = store.write(key, n + j, budget, p, evaluate(problem, p, seed, n + j), ts)
            vals.append(_val(r))
            bar.update(1)
        m.tell(batch, vals)
        n += k


def run_gpbo_group(method: str, runs: list[tuple[Problem, int]], budget: int, q: int,
                   store: Store, bar, device: str, dtype: torch.dtype, settings: Settings | None = None) -> int:
    """All ``runs`` (same encoded space) through one engine call per iteration.

    ``settings`` is the base of the method's settings (:func:`benchmarks.methods.gpbo_settings`).
    Returns the number of ``suggest`` calls made.
    """
    from gpbo import engine

    P = len(runs)
    spaces = [p.space() for p, _ in runs]
    dims = spaces[0].dims
    keys = [(method, p.name, s) for p, s in runs]
    X: list[list[list[float]]] = [[] for _ in runs]
    obs: list[list[float]] = [[] for _ in runs]

    def take(r: int, idx: int, params: dict, t_suggest: float) -> None:
        rec = store.done.get(keys[r], {}).get(idx)
        if rec is None:
            problem, seed = runs[r]
            rec = store.write(keys[r], idx, budget, params, evaluate(problem, params, seed, idx), t_suggest)
            bar.update(1)
        X[r].append(spaces[r].encode([rec["params"]])[0].tolist())
        obs[r].append(_val(rec))

    n0 = min(n_init(runs[0][0], q, budget), budget)
    for r, (problem, seed) in enumerate(runs):
        for i, p in enumerate(M.initial_design(problem, n0, seed)):
            take(r, i, p, 0.0)
    n, calls, model = n0, 0, None
    method_settings = M.gpbo_settings(method, settings)
    while n < budget:
        k = min(q, budget - n)
        if all(n + j in store.done.get(key, {}) for key in keys for j in range(k)):
            for r in range(P):  # fully recorded batch: replay, no engine call
                for j in range(k):
                    take(r, n + j, {}, 0.0)
            n += k
            continue
        Xt = torch.tensor(X, dtype=dtype, device=device)  # (P, n, d)
        Yt = -torch.tensor(np.stack([M.impute(o) for o in obs]), dtype=dtype, device=device)  # (P, n)
        t0 = time.perf_counter()
        s = engine.suggest(Xt, Yt, dims=dims, q=k, seed=n, warm_start=model, settings=method_settings)
        cand = s.candidates.cpu().to(torch.float64)  # (P, k, d)
        ts = (time.perf_counter() - t0) / (P * k)
        calls, model = calls + 1, s.model
        for r in range(P):
            for j, p in enumerate(spaces[r].decode(cand[r])):
                take(r, n + j, p, ts)
        n += k
    return calls


def plan(problems: list[Problem], methods: list[str], seeds: list[int], budget_of: dict[str, int]):
    """gpbo groups {(method, dims, budget): [(problem, seed)]} and sequential runs.

    Sequential runs go seed by seed (every method and problem for seed 0, then
    seed 1, ...), so a sweep stopped part-way has whole seeds to report.
    """
    groups: dict[tuple, list[tuple[Problem, int]]] = defaultdict(list)
    seq = []
    for s in seeds:
        for method in methods:
            for p in problems:
                if not applies(method, p):
                    continue
                if method in MM.GPBO_MO_METHODS:  # one group per problem: its outcomes are settings
                    groups[(method, p.name, budget_of[p.name])].append((p, s))
                elif M.is_gpbo(method):
                    groups[(method, p.space().dims, budget_of[p.name])].append((p, s))
                else:
                    seq.append((method, p, s))
    return groups, seq


def env() -> dict:
    """benchmarks.latency's environment() plus the optional methods' versions."""
    import importlib.metadata

    from benchmarks.latency import environment

    e = environment()
    for pkg in ("hebo", "scikit-optimize", "scikit-learn", "tqdm"):
        try:
            e["versions"][pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            e["versions"][pkg] = "not installed"
    try:
        import subprocess

        e["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        e["git"] = "unknown"
    return e


def _int_at_least(low: int):
    """An argparse type: an int >= ``low``."""
    def parse_int(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {value}")
        return value
    return parse_int


def _worker_counts(text: str) -> str:
    """An argparse type: a comma list of ints >= 1 (kept as the string)."""
    for item in text.split(","):
        _int_at_least(1)(item)
    return text


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="synthetic", help="comma list of names or suites: "
                    + ", ".join(SUITES))
    ap.add_argument("--methods", default=None, help="comma list of " + ",".join(M.ALL_METHODS) + ", botorch:<Class> "
                    "(a BoTorch acquisition through gpbo), botorch_loop:<Class> (the same in BoTorch's loop) (single-"
                    "objective problems) or " + ",".join(MM.ALL_MO_METHODS) + " (multi-outcome problems; "
                    + ",".join(MM.SINGLE_OBJECTIVE_ONLY) + " only on those with one objective); default "
                    + DEFAULT_METHODS + ", or " + MM.DEFAULT_MO_METHODS + " when every problem is multi-outcome")
    ap.add_argument("--seeds", type=_int_at_least(1), default=16, help="seeds K..K+N-1 (K = --first-seed)")
    ap.add_argument("--first-seed", type=_int_at_least(0), default=0,
                    help="K: more seeds for an earlier run, written to another OUT and merged for the report")
    ap.add_argument("--budget", type=_int_at_least(1), default=None, help="evaluations per run (default: per problem)")
    ap.add_argument("--batch-size", type=_int_at_least(1), default=None,
                    help="q: points per iteration (default 1, or 4 when every problem is multi-outcome)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--out", default="benchmarks/results/sweep",
                    help="output folder: results.jsonl, run_info.json, the report (default: "
                    "benchmarks/results/sweep, ignored by git)")
    ap.add_argument("--workers", type=_worker_counts, default="1,4,16",
                    help="multi-fidelity suite: comma list of simulated worker counts (default 1,4,16)")
    ap.add_argument("--lockstep", type=_int_at_least(1), default=16,
                    help="multi-fidelity suite: gpbo's seeds run in lockstep groups of this many, their early-stopping "
                    "decisions batched over the seeds (1: one seed at a time; default 16)")
    ap.add_argument("--quick", action="store_true", help="CI smoke run: " + json.dumps(QUICK))
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    try:
        names = problem_names(args.problems)
        for name in names:
            get(name)
    except ValueError as err:
        ap.error(str(err))
    if not names:
        ap.error("--problems names no problem")
    all_mo = all(is_multi_outcome(get(n)) for n in problem_names(args.problems))
    if args.methods is None and all(is_multi_fidelity(get(n)) for n in problem_names(args.problems)):
        args.methods = MFM.DEFAULT_MF_METHODS
    if args.methods is None:
        args.methods = MM.DEFAULT_MO_METHODS if all_mo else DEFAULT_METHODS
    if args.batch_size is None:
        args.batch_size = 4 if all_mo else 1
    return args


def problem_names(problems: str) -> list[str]:
    """The comma list of names and suites, expanded."""
    return [n for item in problems.split(",") for n in SUITES.get(item, [item])]


def main(argv=None, *, settings: Settings | None = None) -> dict:
    """Runs the sweep of the command line ``argv``; ``settings`` is the base of the gpbo methods' settings."""
    from tqdm import tqdm

    args = parse(argv)
    started = env()
    problems = [get(n) for n in problem_names(args.problems)]
    if any(is_multi_fidelity(p) for p in problems):
        return main_mf(args, problems, started)
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if not M.is_known(m) and m not in MM.ALL_MO_METHODS:
            raise SystemExit(f"unknown method {m!r}; expected one of {M.ALL_METHODS + MM.ALL_MO_METHODS}")
    skipped = [m for m in methods if not M.available(m)]
    methods = [m for m in methods if m not in skipped]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    budget_of = {p.name: args.budget or p.default_budget for p in problems}
    out = Path(args.out)
    print(f"sweep: writing to {out.resolve()}", file=sys.stderr, flush=True)
    store = Store(out / "results.jsonl", budget_of, args.batch_size)
    groups, seq = plan(problems, methods, seeds, budget_of)
    if not groups and not seq:
        raise SystemExit(f"no run to do: none of the methods {methods} applies to the problems "
                         f"{[p.name for p in problems]} (or every method is unavailable: {skipped})")
    total = sum(budget_of[p.name] for ps in groups.values() for p, _ in ps) + sum(
        budget_of[p.name] for _, p, _ in seq)
    done = sum(len(v) for v in store.done.values())
    dtype = getattr(torch, args.dtype)
    calls = {}
    with tqdm(total=total, initial=min(done, total), desc="evaluations", smoothing=0.05) as bar:
        for (method, _, budget), runs in groups.items():
            bar.set_postfix_str(f"{method} P={len(runs)}")
            if is_multi_outcome(runs[0][0]):
                n_calls = mo_sweep.run_gpbo_group(method, runs[0][0], [s for _, s in runs], budget,
                                                  args.batch_size, store, bar, args.device, dtype)
            else:
                n_calls = run_gpbo_group(method, runs, budget, args.batch_size, store, bar, args.device, dtype,
                                         settings)
            calls[f"{method}/{runs[0][0].name}+{len(runs)}runs"] = n_calls
        for method, p, s in seq:
            bar.set_postfix_str(f"{method} {p.name} seed {s}")
            run = mo_sweep.run_sequential if is_multi_outcome(p) else run_sequential
            run(method, p, s, budget_of[p.name], args.batch_size, store, bar)
    store.close()
    info = {"engine_calls": calls, "skipped_methods": skipped, "args": vars(args), "env": started,
            "settings": None if settings is None else settings.to_dict()}
    (out / "run_info.json").write_text(json.dumps(info, indent=1, default=str))
    if not args.no_report:
        from benchmarks import report

        report.write(out, methods=methods, problems=[p.name for p in problems], seeds=seeds,
                     budget_of=budget_of, q=args.batch_size, command=args)
    return info


def main_mf(args: argparse.Namespace, problems: list, started: dict) -> dict:
    """The multi-fidelity suite (:mod:`benchmarks.mf_sweep`); ``--budget`` counts full trainings (default 30)."""
    from benchmarks import mf_report, mf_sweep

    if not all(is_multi_fidelity(p) for p in problems):
        raise SystemExit("a sweep is either all multi-fidelity problems (the mf suite) or none")
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in MFM.ALL_MF_METHODS:
            raise SystemExit(f"unknown multi-fidelity method {m!r}; expected one of {MFM.ALL_MF_METHODS}")
    out, budget = Path(args.out), args.budget or 30
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    workers = [int(w) for w in args.workers.split(",") if w]
    print(f"sweep: writing to {out.resolve()}", file=sys.stderr, flush=True)
    info = mf_sweep.run_all(problems, methods, seeds, workers, budget, out, lockstep=args.lockstep)
    info.update({"args": vars(args), "env": started})
    (out / "run_info.json").write_text(json.dumps(info, indent=1, default=str))
    if not args.no_report:
        mf_report.write(out, methods=methods, budgets=tuple(b for b in (10, 30) if b <= budget) or (budget,))
    return info


if __name__ == "__main__":
    main()
