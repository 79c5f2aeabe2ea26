"""A JSON-lines ask/tell server for an optimiser living in another virtual environment (DEHB, SMAC3).

Run by :mod:`benchmarks.mf_external` as ``VENV/bin/python benchmarks/mf_ext_runner.py``; it imports
neither gpbo nor torch (DEHB pins numpy < 2), only the optimiser and ConfigSpace.

Protocol, one JSON object per line each way:
- first line in: ``{"optimizer": "dehb" | "smac", "seed": s, "min_step": 1, "max_step": 52,
  "params": {name: {"type": "real" | "int" | "cat", "low", "high", "log", "choices"}}, "workdir": path}``;
  out: ``{"ok": true}``;
- ``{"cmd": "ask"}`` -> ``{"job": j, "config": {...}, "budget": b}`` (b an integer step);
- ``{"cmd": "tell", "job": j, "value": v, "cost": c}`` -> ``{"ok": true}`` (v minimised; null = failed);
- end of input: the process exits.
An error is answered ``{"error": "..."}`` and the process exits.
"""

from __future__ import annotations

import json
import math
import sys
import traceback


def config_space(params: dict, seed: int):
    from ConfigSpace import CategoricalHyperparameter, ConfigurationSpace, UniformFloatHyperparameter, UniformIntegerHyperparameter

    cs = ConfigurationSpace(seed=seed)
    for name, p in params.items():
        if p["type"] == "real":
            cs.add(UniformFloatHyperparameter(name, p["low"], p["high"], log=p["log"]))
        elif p["type"] == "int":
            cs.add(UniformIntegerHyperparameter(name, p["low"], p["high"], log=p["log"]))
        else:
            cs.add(CategoricalHyperparameter(name, p["choices"]))
    return cs


def _plain(config) -> dict:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(config).items()}


class Dehb:
    def __init__(self, spec: dict):
        from dehb import DEHB

        self.opt = DEHB(cs=config_space(spec["params"], spec["seed"]), min_fidelity=spec["min_step"],
                        max_fidelity=spec["max_step"], eta=3, n_workers=1, seed=spec["seed"],
                        output_path=spec["workdir"], log_level="ERROR")

    def ask(self) -> tuple[dict, float, object]:
        info = self.opt.ask()
        return _plain(info["config"]), float(info["fidelity"]), info

    def tell(self, handle, value, cost) -> None:
        self.opt.tell(handle, {"fitness": value, "cost": cost})


class Smac:
    def __init__(self, spec: dict):
        from smac import MultiFidelityFacade, Scenario

        scen = Scenario(config_space(spec["params"], spec["seed"]), deterministic=True, n_trials=10**6,
                        min_budget=spec["min_step"], max_budget=spec["max_step"], seed=spec["seed"],
                        output_directory=spec["workdir"])
        intens = MultiFidelityFacade.get_intensifier(scen, eta=3)
        self.opt = MultiFidelityFacade(scen, lambda config, seed=0, budget=1: 0.0, intensifier=intens,
                                       overwrite=True, logging_level=40)

    def ask(self):
        info = self.opt.ask()
        return _plain(info.config), float(info.budget), info

    def tell(self, handle, value, cost) -> None:
        from smac.runhistory.dataclasses import TrialValue
        from smac.runhistory.enumerations import StatusType

        ok = value is not None and math.isfinite(value)
        self.opt.tell(handle, TrialValue(cost=value if ok else math.inf, time=cost,
                                         status=StatusType.SUCCESS if ok else StatusType.CRASHED))


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # the optimisers' prints must not break the protocol
    handles: dict[int, object] = {}
    n_asked = 0
    try:
        spec = json.loads(sys.stdin.readline())
        opt = {"dehb": Dehb, "smac": Smac}[spec["optimizer"]](spec)
        out.write(json.dumps({"ok": True}) + "\n")
        out.flush()
        for line in sys.stdin:
            msg = json.loads(line)
            if msg["cmd"] == "ask":
                config, budget, handle = opt.ask()
                j = n_asked = n_asked + 1
                handles[j] = handle
                reply = {"job": j, "config": config, "budget": int(round(budget))}
            else:
                opt.tell(handles.pop(msg["job"]), msg["value"], msg["cost"])
                reply = {"ok": True}
            out.write(json.dumps(reply) + "\n")
            out.flush()
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        out.write(json.dumps({"error": traceback.format_exc()}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
