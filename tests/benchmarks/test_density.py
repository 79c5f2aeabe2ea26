"""benchmarks.density: per-method sampling diagnostics from a results file."""

from __future__ import annotations

import json

import numpy as np

from benchmarks import density


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
    run = [{"true": v, "params": {"x1": float(i % 2), "x2": 1.0}} for i, v in enumerate([9.0, 3.0, 5.0, 1.0])]
    stats = density.run_stats(run, optimum=0.0, threshold=4.0, last=2)
    assert stats["log10 best@4"] == np.log10(1.0)
    assert stats["share < 4"] == 0.5  # 5.0 and 1.0: one below
    assert stats["spread"] == 0.25  # x1 in {0, 1}: std 0.5; x2 constant: 0


def test_table_has_one_row_per_method_and_skips_incomplete_runs(tmp_path) -> None:
    values = list(np.linspace(50, 1, 25))
    _write(tmp_path, {"a": [values, values], "b": [values]})
    with open(tmp_path / "results.jsonl", "a") as f:  # an unfinished run of method c
        f.write(json.dumps({"method": "c", "problem": "branin", "seed": 0, "idx": 0, "budget": 25, "q": 1,
                            "params": {"x1": 0.0, "x2": 0.0}, "value": 1.0, "true": 1.0}) + "\n")
    text = density.main([str(tmp_path), "--problem", "branin", "--threshold", "10", "--last", "10"])
    rows = text.splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["a", "b"]
    assert rows[0].split("|")[2].strip() == "2"
