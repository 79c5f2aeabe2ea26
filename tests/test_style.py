"""The code passes the repository's ruff configuration (pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_passes() -> None:
    pytest.importorskip("ruff", reason="ruff comes with the dev extra")
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "gpbo", "benchmarks", "tests", "examples"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_package_is_typed() -> None:
    assert (ROOT / "gpbo" / "py.typed").exists()
