"""Latency of ONE suggestion: gpbo vs BoTorch's standard recipe vs Optuna's GPSampler.

    python -m benchmarks.latency [--reps 7] [--n 100] [--methods gpbo,botorch,optuna]
    python -m benchmarks.latency --profile [cprofile|torch]    # profile gpbo's ask only

Setup (identical data for every method): Hartmann6 (d=6, minimised), n=100
scrambled-Sobol points in [0,1]^6 and their values. Every method first makes
one untimed suggestion and is told its value (warm state), then each rep times
one suggestion and, untimed, tells the value of the suggested point; so rep r
sees n + 1 + r observations for every method.

- gpbo: ``Optimizer`` loaded with ``tell_many``; the time of ``ask()``.
- BoTorch: SingleTaskGP + fit_gpytorch_mll + LogExpectedImprovement +
  optimize_acqf(num_restarts=10, raw_samples=512); the time includes building
  and fitting the GP from scratch (the standard recipe has no warm start).
- Optuna: GPSampler (greenlet installed -> batched L-BFGS-B), a study holding
  the same trials via ``add_trials``; the time of ``study.ask(distributions)``,
  which samples every parameter. The script checks that the GP path ran (all
  6 parameters came from ``sample_relative``, not the independent sampler).

Results: a markdown table on stdout (medians, IQR, ratios gpbo/Optuna and
gpbo/BoTorch; below 1 means gpbo is faster) and benchmarks/results/latency.json.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch

from benchmarks.problems import hartmann6_tensor

D = 6
NAMES = [f"x{i}" for i in range(D)]
RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------- #
# Helpers shared with benchmarks.quality                                      #
# --------------------------------------------------------------------------- #
def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict:
    """Date, CPU, thread count and library versions, for the result files."""
    versions = {}
    for pkg in ("gpbo", "torch", "gpytorch", "botorch", "optuna", "greenlet", "scipy", "numpy"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:  # e.g. gpbo run from a checkout
            try:
                versions[pkg] = getattr(importlib.import_module(pkg), "__version__", "unknown")
            except ImportError:
                versions[pkg] = "not installed"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "versions": versions,
    }


def write_report(path: Path, report: dict) -> None:
    """Write a benchmark's JSON report (creating its folder) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path}")


def quantiles(xs: Sequence[float]) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile), linear interpolation."""
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q25, med, q75 = statistics.quantiles(xs, n=4, method="inclusive")
    return q25, med, q75


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scrambled Sobol X (n, 6) in [0,1]^6 (float64, CPU) and Hartmann6 Y (n,)."""
    X = torch.quasirandom.SobolEngine(D, scramble=True, seed=seed).draw(n, dtype=torch.float64)
    return X, hartmann6_tensor(X)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float, object]:
    """Runs ``fn()``; returns (wall seconds, process CPU seconds, its result)."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0, out


def _value(x: list[float]) -> float:
    return float(hartmann6_tensor(torch.tensor([x], dtype=torch.float64))[0])


class Runner:
    """One method's state. ``step()`` makes one suggestion, timed, then tells
    its value untimed; the constructor makes the untimed warm-up suggestion."""

    def step(self) -> tuple[float, float]:
        raise NotImplementedError

    def info(self) -> dict:
        return {}


# --------------------------------------------------------------------------- #
# gpbo                                                                        #
# --------------------------------------------------------------------------- #
def gpbo_optimizer(X: torch.Tensor, Y: torch.Tensor, *, seed: int, device: str | None):
    """An Optimizer over [0,1]^6 already told the n observations (X, Y)."""
    import gpbo

    space = gpbo.Space({name: gpbo.Real(0.0, 1.0) for name in NAMES})
    opt = gpbo.Optimizer(space, seed=seed, settings={"device": device})
    params = [dict(zip(NAMES, row)) for row in X.tolist()]
    opt.tell_many(params, Y.tolist())
    return opt


def _gpbo_tell(opt, trial) -> None:
    opt.tell(trial, _value([trial.params[k] for k in NAMES]))


class GpboRunner(Runner):
    def __init__(self, X, Y, *, seed: int, device: torch.device):
        self.device = device
        self.opt = gpbo_optimizer(X, Y, seed=seed, device=str(device))
        _gpbo_tell(self.opt, self.opt.ask())  # warm state: the first ask fits from scratch

    def step(self) -> tuple[float, float]:
        wall, cpu, trial = _timed(self.opt.ask, self.device)
        _gpbo_tell(self.opt, trial)
        return wall, cpu


# --------------------------------------------------------------------------- #
# BoTorch standard recipe                                                     #
# --------------------------------------------------------------------------- #
def botorch_suggest(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """One suggestion (1, 6) by BoTorch's standard recipe; Y is minimised."""
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    train_Y = -Y.unsqueeze(-1)  # BoTorch maximises
    model = SingleTaskGP(X, train_Y, outcome_transform=Standardize(m=1))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    acqf = LogExpectedImprovement(model, best_f=train_Y.max())
    bounds = torch.stack([torch.zeros(D), torch.ones(D)]).to(X)
    cand, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=10, raw_samples=512)
    return cand.detach()


class BotorchRunner(Runner):
    def __init__(self, X, Y, *, seed: int, device: torch.device):
        self.device = device
        self.X, self.Y = X.to(device), Y.to(device)
        torch.manual_seed(seed)
        self.step()  # untimed warm-up, as for the other methods

    def step(self) -> tuple[float, float]:
        wall, cpu, cand = _timed(lambda: botorch_suggest(self.X, self.Y), self.device)
        y = hartmann6_tensor(cand.cpu()).to(self.Y)
        self.X, self.Y = torch.cat([self.X, cand]), torch.cat([self.Y, y])
        return wall, cpu


# --------------------------------------------------------------------------- #
# Optuna GPSampler                                                            #
# --------------------------------------------------------------------------- #
def optuna_study(X: torch.Tensor, Y: torch.Tensor, *, seed: int):
    """A minimising study with a GPSampler and the n observations as trials.

    Returns (study, distributions, sizes), where ``sizes`` records how many
    parameters each ``sample_relative`` call (the GP path) produced.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {name: optuna.distributions.FloatDistribution(0.0, 1.0) for name in NAMES}
    sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=10)
    sizes: list[int] = []
    sample_relative = sampler.sample_relative

    def counting_sample_relative(study, trial, search_space):
        out = sample_relative(study, trial, search_space)
        sizes.append(len(out))
        return out

    sampler.sample_relative = counting_sample_relative  # instance attribute wins
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.add_trials([
        optuna.trial.create_trial(params=dict(zip(NAMES, row)), distributions=dists, value=v)
        for row, v in zip(X.tolist(), Y.tolist())
    ])
    return study, dists, sizes


class OptunaRunner(Runner):
    def __init__(self, X, Y, *, seed: int, device: torch.device):
        self.study, self.dists, self.sizes = optuna_study(X, Y, seed=seed)
        self.step()  # untimed warm-up

    def step(self) -> tuple[float, float]:
        ask = lambda: self.study.ask(fixed_distributions=self.dists)  # noqa: E731
        wall, cpu, trial = _timed(ask, torch.device("cpu"))
        self.study.tell(trial, _value([trial.params[k] for k in NAMES]))
        return wall, cpu

    def info(self) -> dict:
        from optuna._gp import batched_lbfgsb

        if not self.sizes or any(s != D for s in self.sizes):
            raise RuntimeError(f"Optuna's GPSampler did not sample all {D} params with its GP: "
                               f"sample_relative sizes {self.sizes}")
        greenlet = bool(batched_lbfgsb._greenlet_imports.is_successful())
        if not greenlet:
            warnings.warn("greenlet is not installed: Optuna falls back to sequential L-BFGS-B", stacklevel=2)
        return {"gp_path_checked": True, "greenlet": greenlet}


# --------------------------------------------------------------------------- #
# Driver                                                                      #
# --------------------------------------------------------------------------- #
METHODS = {"gpbo": GpboRunner, "botorch": BotorchRunner, "optuna": OptunaRunner}
LABELS = {"gpbo": "gpbo", "botorch": "BoTorch (SingleTaskGP + LogEI + optimize_acqf)",
          "optuna": "Optuna GPSampler"}


def run_interleaved(methods: list[str], X, Y, *, reps: int, seed: int,
                    device: torch.device) -> dict[str, dict]:
    """Times ``reps`` suggestions per method, round-robin.

    Rep r runs every method once, in an order rotated by r, so a change in
    machine load (a shared CPU) hits all methods alike instead of whichever
    happened to run last.
    """
    runners = {}
    for name in methods:
        print(f"setting up {name} (incl. one untimed warm-up suggestion) ...", flush=True)
        runners[name] = METHODS[name](X.clone(), Y.clone(), seed=seed, device=device)
    results = {name: {"times_s": [], "cpu_s": []} for name in methods}
    for r in range(reps):
        order = methods[r % len(methods):] + methods[: r % len(methods)]
        for name in order:
            wall, cpu = runners[name].step()
            results[name]["times_s"].append(wall)
            results[name]["cpu_s"].append(cpu)
        print(f"rep {r + 1}/{reps}: " + ", ".join(
            f"{n} {1e3 * results[n]['times_s'][-1]:.0f} ms" for n in methods), flush=True)
    for name, runner in runners.items():
        results[name].update(runner.info())
    return results


def summarise(results: dict[str, dict]) -> dict[str, float]:
    for res in results.values():
        q25, med, q75 = quantiles(res["times_s"])
        res.update(median_s=med, q25_s=q25, q75_s=q75, min_s=min(res["times_s"]),
                   median_cpu_s=statistics.median(res["cpu_s"]))
    ratios = {}
    if "gpbo" in results:
        ours = results["gpbo"]
        for other, key in (("optuna", "gpbo/optuna"), ("botorch", "gpbo/botorch")):
            if other in results:
                theirs = results[other]
                paired = [a / b for a, b in zip(ours["times_s"], theirs["times_s"])]
                ratios[key] = {
                    "of_medians": ours["median_s"] / theirs["median_s"],
                    "median_paired": statistics.median(paired),
                    "of_median_cpu": ours["median_cpu_s"] / theirs["median_cpu_s"],
                }
    return ratios


def markdown(results: dict[str, dict], ratios: dict[str, float], meta: dict) -> str:
    cfg = meta["config"]
    lines = [
        f"### Latency of one suggestion: Hartmann6, n={cfg['n']}, d={D}, "
        f"{cfg['reps']} reps (device {cfg['device']})",
        "",
        "| method | median wall (ms) | IQR (ms) | min (ms) | median CPU (ms) | gpbo / method |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, res in results.items():
        ratio = (f"{results['gpbo']['median_s'] / res['median_s']:.3f}"
                 if "gpbo" in results else "n/a")
        lines.append(
            f"| {LABELS[name]} | {1e3 * res['median_s']:.1f} | "
            f"{1e3 * res['q25_s']:.1f}-{1e3 * res['q75_s']:.1f} | {1e3 * res['min_s']:.1f} | "
            f"{1e3 * res['median_cpu_s']:.1f} | {ratio} |"
        )
    lines.append("")
    for key, val in ratios.items():
        lines.append(
            f"- ratio {key}: **{val['of_medians']:.3f}** (median wall times; below 1: gpbo is "
            f"faster); median of per-rep ratios {val['median_paired']:.3f}; "
            f"CPU-time ratio {val['of_median_cpu']:.3f}")
    env = meta["environment"]
    lines += [
        f"- CPU: {env['cpu']} ({env['cpu_count']} logical cores), "
        f"torch threads {env['torch_threads']}, 1-min load average before/after "
        f"{env['loadavg_1min_before_after']}; date {env['date']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
    ]
    return "\n".join(lines)


def profile_gpbo(X, Y, *, reps: int, seed: int, device: torch.device, kind: str) -> None:
    """Profiles `reps` warm gpbo asks with cProfile or torch.profiler; prints the top entries."""
    opt = gpbo_optimizer(X, Y, seed=seed, device=str(device))
    _gpbo_tell(opt, opt.ask())
    if kind == "torch":
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts) as prof:
            for _ in range(reps):
                trial = opt.ask()
                _gpbo_tell(opt, trial)
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=30))
        return
    import cProfile
    import pstats

    prof = cProfile.Profile()
    for _ in range(reps):
        prof.enable()
        trial = opt.ask()
        prof.disable()
        _gpbo_tell(opt, trial)
    stats = pstats.Stats(prof).strip_dirs()
    print(f"== cProfile of {reps} gpbo ask() calls, top 30 by cumulative time")
    stats.sort_stats("cumulative").print_stats(30)
    print("== top 20 by own time")
    stats.sort_stats("tottime").print_stats(20)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7, help="timed suggestions per method")
    ap.add_argument("--n", type=int, default=100, help="observations before the first suggestion")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="gpbo,botorch,optuna",
                    help="comma-separated subset of gpbo,botorch,optuna")
    ap.add_argument("--device", default="cpu", help="device for gpbo and BoTorch (Optuna: CPU)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads for this benchmark process (default: leave)")
    ap.add_argument("--profile", nargs="?", const="cprofile", choices=["cprofile", "torch"],
                    help="only profile gpbo's ask() and print the top entries")
    ap.add_argument("--out", type=Path, default=RESULTS / "latency.json",
                    help="JSON report (default: benchmarks/results/latency.json, ignored by git)")
    args = ap.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    X, Y = make_data(args.n, args.seed)
    if args.profile:
        profile_gpbo(X, Y, reps=args.reps, seed=args.seed, device=device, kind=args.profile)
        return {}

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"unknown method(s) {unknown}; expected a subset of {sorted(METHODS)}")
    load_before = os.getloadavg()
    results = run_interleaved(methods, X, Y, reps=args.reps, seed=args.seed, device=device)
    ratios = summarise(results)
    meta = {
        "benchmark": "latency of one suggestion",
        "problem": "hartmann6",
        "config": {"n": args.n, "d": D, "reps": args.reps, "seed": args.seed,
                   "device": str(device), "methods": methods},
        "environment": {**environment(), "loadavg_1min_before_after": [
            round(load_before[0], 2), round(os.getloadavg()[0], 2)]},
    }
    print()
    print(markdown(results, ratios, meta))
    report = {**meta, "results": results, "ratios": ratios}
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
