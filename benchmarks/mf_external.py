"""SMAC3 and DEHB for the multi-fidelity suite, each in a subprocess speaking JSON lines (:mod:`benchmarks.mf_ext_runner`).

- ``dehb``: DEHB (eta 3, min/max fidelity 1 and max_step) pins numpy < 2, so it lives in its own
  virtual environment, ``$GPBO_DEHB_VENV`` (default ``/work/venv-dehb``;
  ``python -m venv /work/venv-dehb && /work/venv-dehb/bin/pip install dehb``).
- ``smac``: SMAC3's MultiFidelityFacade (Hyperband intensifier, eta 3, budgets 1 to max_step),
  run by ``$GPBO_SMAC_PYTHON`` (default: this interpreter, where ``pip install smac`` installs
  it; its random forest needs ``pyrfr``, which builds with SWIG: ``pip install swig`` and the
  ``swig`` package's ``data/bin`` on PATH).

Both ask for (configuration, budget in steps); the simulator (:mod:`benchmarks.mf_sim`) trains the
configuration up to that step, continuing from the furthest step it already trained to (a
checkpointed run: a promoted configuration pays only its new steps), and the value at that step is
told back. Both optimisers ask and tell asynchronously: with W workers W jobs are in flight.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.mf_problems import MFProblem
from benchmarks.mf_sim import Job
from benchmarks.problems import Cat, Int, Real

__all__ = ["ExternalMF", "interpreter", "make", "unavailable"]

RUNNER = Path(__file__).resolve().parent / "mf_ext_runner.py"


def interpreter(method: str) -> str:
    if method == "dehb":
        return str(Path(os.environ.get("GPBO_DEHB_VENV", "/work/venv-dehb")) / "bin" / "python")
    return os.environ.get("GPBO_SMAC_PYTHON", sys.executable)


def unavailable(method: str) -> str | None:
    """Why ``method`` cannot run (its interpreter or package is missing), or None."""
    py = interpreter(method)
    if not Path(py).exists():
        return f"{method}: no interpreter at {py} (see benchmarks/mf_external.py)"
    probe = {"dehb": "import dehb, ConfigSpace", "smac": "import smac, ConfigSpace, pyrfr"}[method]
    r = subprocess.run([py, "-c", probe], capture_output=True, text=True)
    if r.returncode:
        return f"{method}: `{probe}` fails in {py}: {r.stderr.strip().splitlines()[-1] if r.stderr else ''}"
    return None


def _spec(problem: MFProblem) -> dict:
    out = {}
    for name, s in problem.params.items():
        if isinstance(s, Real):
            out[name] = {"type": "real", "low": s.low, "high": s.high, "log": s.log}
        elif isinstance(s, Int):
            out[name] = {"type": "int", "low": s.low, "high": s.high, "log": s.log}
        else:
            assert isinstance(s, Cat)
            out[name] = {"type": "cat", "choices": list(s.choices)}
    return out


class ExternalMF:
    """An optimiser in a subprocess; a job trains its configuration to the asked budget."""

    def __init__(self, method: str, problem: MFProblem, seed: int):
        self.problem, self._tmp = problem, tempfile.TemporaryDirectory(prefix=f"gpbo-mf-{method}-")
        self.proc = subprocess.Popen([interpreter(method), str(RUNNER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._call({"optimizer": method, "seed": seed, "min_step": 1, "max_step": problem.max_step,
                    "params": _spec(problem), "workdir": self._tmp.name})

    def _call(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        reply = json.loads(line) if line else {"error": "the runner exited"}
        if "error" in reply:
            self.close()
            raise RuntimeError(f"external optimiser failed: {reply['error']}")
        return reply

    def ask(self) -> Job:
        r = self._call({"cmd": "ask"})
        params = {k: self._cast(k, v) for k, v in r["config"].items()}
        key = tuple(sorted(params.items()))
        return Job(params, key=key, stop_at=max(1, min(self.problem.max_step, r["budget"])), tag=r["job"])

    def _cast(self, name: str, v):
        s = self.problem.params[name]
        return int(v) if isinstance(s, Int) else float(v) if isinstance(s, Real) else v

    def report(self, job: Job, step: int, value: float) -> bool:
        return False  # the optimiser decides by the budgets it asks for

    def finish(self, job: Job, stopped: bool) -> None:
        if self.proc.poll() is not None:
            return
        last = job.values[-1] if job.values else math.nan
        self._call({"cmd": "tell", "job": job.tag, "value": last if math.isfinite(last) else None,
                    "cost": float(job.t_end - job.t_start)})

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._tmp.cleanup()


def make(method: str, problem: MFProblem, seed: int) -> ExternalMF:
    return ExternalMF(method, problem, seed)
