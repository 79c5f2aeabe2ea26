"""benchmarks.density: per-method sampling diagnostics from a results file."""

from __future__ import annotations

import json

import numpy as np

from benchmarks import density
from benchmarks.problems import get


def _write(tmp_path, runs: dict[str, list[list[float]]]) -> None:
    lines = []
    for method, per_seed in runs.items():
        for seed, values in enumerate(per_seed):
            for idx, v in enumerate(values):
                lines.append({"method": method, "problem": "branin", "seed": seed, "idx": idx,
                              "budget": len(values), "q": 1, "params": {"x1": float(idx % 2), "x2": 0.0},
                              "value": v, "true": v})
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_stats_of_one_run_are_exact() -> None:
    branin = get("branin")  # x1 in [-5, 10], x2 in [0, 15]
    x1 = [-5.0, 0.0, 10.0, 1.0]  # at the lower bound, inside, at the upper bound, inside
    run = [{"true": v, "params": {"x1": x1[i], "x2": 1.0}} for i, v in enumerate([9.0, 3.0, 500.0, 1.0])]
    stats = density.run_stats(run, branin, threshold=4.0, high=100.0, last=2)
    assert stats["log10 best@4"] == np.log10(1.0 - branin.optimum)
    assert stats["share < 4"] == 0.5  # 500.0 and 1.0: one below
    assert stats["share > 100"] == 0.5
    assert stats["at bound"] == 0.5  # x1 = 10 at the bound, x1 = 1 inside
    assert stats["spread"] == 2.25  # x1 in {10, 1}: std 4.5; x2 constant: 0


def test_turns_split_the_last_evaluations_by_index() -> None:
    branin = get("branin")
    run = [{"true": v, "params": {"x1": 0.0 if i % 2 else -5.0, "x2": 1.0}} for i, v in enumerate([9.0, 3.0, 500.0, 1.0])]
    even = density.run_stats(run, branin, threshold=4.0, high=100.0, last=4, turn=(0, 2))  # 9.0 and 500.0, at x1 = -5
    odd = density.run_stats(run, branin, threshold=4.0, high=100.0, last=4, turn=(1, 2))  # 3.0 and 1.0, inside
    assert not any(k.startswith("log10 best") for k in even)
    assert (even["share < 4"], even["share > 100"], even["at bound"]) == (0.0, 0.5, 1.0)
    assert (odd["share < 4"], odd["share > 100"], odd["at bound"]) == (1.0, 0.0, 0.0)


def test_table_has_one_row_per_method_and_skips_incomplete_runs(tmp_path) -> None:
    values = list(np.linspace(50, 1, 25))
    _write(tmp_path, {"a": [values, values], "b": [values]})
    with open(tmp_path / "results.jsonl", "a") as f:  # an unfinished run of method c
        f.write(json.dumps({"method": "c", "problem": "branin", "seed": 0, "idx": 0, "budget": 25, "q": 1,
                            "params": {"x1": 0.0, "x2": 0.0}, "value": 1.0, "true": 1.0}) + "\n")
    text = density.main([str(tmp_path), "--problem", "branin", "--threshold", "10", "--last", "10", "--turns", "2"])
    rows = text.splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["a", "a turn 0", "a turn 1", "b", "b turn 0", "b turn 1"]
    assert rows[0].split("|")[2].strip() == "2"
    assert rows[1].split("|")[3].strip() == "-"  # a turn row has no best-so-far columns
