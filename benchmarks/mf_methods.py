"""The multi-fidelity suite's methods, each a :class:`benchmarks.mf_sim.MFMethod` (ask / report / finish).

All minimise the problem's value (LCBench: the validation error in %).

In this process:
- ``random``: random search at full fidelity (a reference, not in the issue's list).
- ``tpe_hyperband``, ``tpe_median``: Optuna's TPESampler (``constant_liar=True``, as trials run
  asynchronously) with its HyperbandPruner (min_resource 1, max_resource = max_step, reduction factor 3)
  or its MedianPruner (Optuna's defaults: 5 startup trials, no warm-up steps); the study is driven
  through ask/tell, ``trial.report`` and ``trial.should_prune`` at the simulator's virtual times.
- ``optuna_gp``: Optuna's GPSampler at full fidelity.
- ``asha``: random search with Ray Tune's ``AsyncHyperBandScheduler`` (Ray's defaults: grace period 1,
  reduction factor 4, one bracket; ``max_t`` = max_step). A full Tune run keeps real time, so the
  scheduler's own decision logic (``on_trial_add`` / ``on_trial_result`` / ``on_trial_complete``) is
  called directly with lightweight trial objects (only ``trial_id`` is read) at the virtual times.
- ``gpbo``: ``gpbo.Optimizer`` ask/tell at full fidelity (asynchronous workers: pending trials).
- ``gpbo_es``, ``gpbo_es_asha``: gpbo with early stopping, the model-based rule or ``"asha"``
  (``Optimizer(..., max_step=, settings=Settings(early_stopping=...))``, ``opt.report`` and
  ``opt.should_stop``).
- ``gpbo_es_resume``: ``gpbo_es`` with ``Settings(resume_stopped=True)``: a stopped configuration that the
  search proposes again continues from its last epoch (the job's ``key`` is the trial id, so the simulator
  charges only the new epochs, as for a checkpointed run).

In other processes (:mod:`benchmarks.mf_external`): ``smac`` (SMAC3's MultiFidelityFacade) and ``dehb``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from benchmarks.mf_problems import MFProblem
from benchmarks.mf_sim import Job

__all__ = ["ALL_MF_METHODS", "DEFAULT_MF_METHODS", "make", "unavailable"]

IN_PROCESS = ("random", "tpe_hyperband", "tpe_median", "optuna_gp", "asha", "gpbo", "gpbo_es", "gpbo_es_asha",
              "gpbo_es_resume")
EXTERNAL = ("smac", "dehb")
ALL_MF_METHODS = (*IN_PROCESS, *EXTERNAL)
DEFAULT_MF_METHODS = "gpbo_es,gpbo_es_asha,gpbo,tpe_hyperband,tpe_median,asha,smac,dehb,optuna_gp"
ES_RULES = {"gpbo_es": "model", "gpbo_es_asha": "asha", "gpbo_es_resume": "model"}
BATCHED = ("gpbo", "gpbo_es", "gpbo_es_asha", "gpbo_es_resume")  # their runs' seeds go in lockstep (GpboMF.report_many)


class RandomFull:
    """Random search at full fidelity; configuration i of seed s is drawn from ``default_rng([s, i])``."""

    def __init__(self, problem: MFProblem, seed: int):
        self.problem, self.seed, self.n = problem, seed, 0

    def ask(self) -> Job:
        self.n += 1
        return Job(self.problem.sample(np.random.default_rng([self.seed, self.n - 1])))

    def report(self, job: Job, step: int, value: float) -> bool:
        return False

    def finish(self, job: Job, stopped: bool) -> None:
        pass


class OptunaMF:
    """An Optuna study (TPE or GP sampler, a pruner or none) driven by the simulator."""

    def __init__(self, problem: MFProblem, seed: int, kind: str):
        import optuna

        from benchmarks.methods import _optuna_distributions

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if kind == "optuna_gp":
            sampler, pruner = optuna.samplers.GPSampler(seed=seed), optuna.pruners.NopPruner()
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
            pruner = (optuna.pruners.HyperbandPruner(min_resource=1, max_resource=problem.max_step,
                                                     reduction_factor=3)
                      if kind == "tpe_hyperband" else optuna.pruners.MedianPruner())
        self.study = optuna.create_study(sampler=sampler, pruner=pruner)
        self.dists = _optuna_distributions(problem)

    def ask(self) -> Job:
        t = self.study.ask(self.dists)
        return Job(dict(t.params), tag=t)

    def report(self, job: Job, step: int, value: float) -> bool:
        if not math.isfinite(value):
            return True
        job.tag.report(value, step)
        return job.tag.should_prune()

    def finish(self, job: Job, stopped: bool) -> None:
        import optuna

        last = job.values[-1] if job.values else math.nan
        if not math.isfinite(last):
            self.study.tell(job.tag, state=optuna.trial.TrialState.FAIL)
        elif stopped:
            self.study.tell(job.tag, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(job.tag, last)


class RayASHA:
    """Random search + Ray Tune's AsyncHyperBandScheduler, its decisions called directly (see the module doc)."""

    def __init__(self, problem: MFProblem, seed: int):
        from ray.tune.schedulers import AsyncHyperBandScheduler

        self.problem, self.seed, self.n = problem, seed, 0
        self.sched = AsyncHyperBandScheduler(time_attr="training_iteration", metric="loss", mode="min",
                                             max_t=problem.max_step)

    def ask(self) -> Job:
        from types import SimpleNamespace

        trial = SimpleNamespace(trial_id=f"t{self.n:05d}")
        self.sched.on_trial_add(None, trial)
        self.n += 1
        return Job(self.problem.sample(np.random.default_rng([self.seed, self.n - 1])), tag=trial)

    def report(self, job: Job, step: int, value: float) -> bool:
        from ray.tune.schedulers import TrialScheduler

        if not math.isfinite(value):
            return True
        return self.sched.on_trial_result(None, job.tag, {"training_iteration": step, "loss": value}) \
            == TrialScheduler.STOP

    def finish(self, job: Job, stopped: bool) -> None:
        if job.steps and math.isfinite(job.values[-1]) and not stopped:
            self.sched.on_trial_complete(None, job.tag, {"training_iteration": job.steps[-1],
                                                         "loss": job.values[-1]})
        else:
            self.sched.on_trial_remove(None, job.tag)


def unavailable(method: str) -> str | None:
    """Why a method cannot run here (a missing package or API), or None."""
    if method in EXTERNAL:
        from benchmarks import mf_external

        return mf_external.unavailable(method)
    mod = {"asha": "ray.tune", "tpe_hyperband": "optuna", "tpe_median": "optuna", "optuna_gp": "optuna"}.get(method)
    if mod is not None:
        try:
            __import__(mod)
        except Exception as exc:  # noqa: BLE001 - a broken install counts as missing
            return f"{mod} is not importable ({exc})"
    return None


class GpboMF:
    """gpbo's facade: full fidelity (``rule=None``) or with an early-stopping rule."""

    def __init__(self, problem: MFProblem, seed: int, rule: str | None, resume: bool = False):
        import gpbo

        self.space, self.rule = problem.space(), rule
        if rule is None:
            self.opt = gpbo.Optimizer(self.space, seed=seed)
        else:
            self.opt = gpbo.Optimizer(self.space, seed=seed, max_step=problem.max_step,
                                      settings=gpbo.Settings(early_stopping=rule, resume_stopped=resume))

    def ask(self) -> Job:
        t = self.opt.ask()
        return Job(dict(t.params), key=t.id, tag=t)

    def report(self, job: Job, step: int, value: float) -> bool:
        return GpboMF.report_many([(self, job, step, value)])[0]

    @staticmethod
    def report_many(reports: list[tuple[GpboMF, Job, int, float]]) -> list[bool]:
        """``report`` of several runs (one report each), their stop decisions batched over the runs
        (``gpbo.Optimizer.should_stop_many``: the curve model of P studies at once)."""
        import gpbo

        asked = [k for k, (m, _, _, value) in enumerate(reports) if m.rule is not None and math.isfinite(value)]
        for k in asked:
            m, job, step, value = reports[k]
            m.opt.report(job.tag, value, step)
        answers = [False] * len(reports)
        decided = gpbo.Optimizer.should_stop_many([(reports[k][0].opt, reports[k][1].tag) for k in asked])
        for k, stop in zip(asked, decided):
            answers[k] = stop
        return answers

    def finish(self, job: Job, stopped: bool) -> None:
        self.opt.tell(job.tag, job.values[-1] if job.values else math.nan)


def make(method: str, problem: MFProblem, seed: int) -> Any:
    """A method's state for one run (one seed of one problem with some number of workers)."""
    if method == "random":
        return RandomFull(problem, seed)
    if method in ("tpe_hyperband", "tpe_median", "optuna_gp"):
        return OptunaMF(problem, seed, method)
    if method == "asha":
        return RayASHA(problem, seed)
    if method == "gpbo":
        return GpboMF(problem, seed, None)
    if method in ES_RULES:
        return GpboMF(problem, seed, ES_RULES[method], resume=method == "gpbo_es_resume")
    if method in EXTERNAL:
        from benchmarks import mf_external

        return mf_external.make(method, problem, seed)
    raise ValueError(f"unknown multi-fidelity method {method!r}; expected one of {ALL_MF_METHODS}")
