"""A local Ray runtime shared by the Ray tests (started once, on first use)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def ray_local():
    """``ray.init(num_cpus=2)`` for the session; skips if Ray is not installed.

    The workers get this folder and the repository root on PYTHONPATH, so they
    can import the test modules (whose functions run as Ray tasks) and gpbo.
    """
    ray = pytest.importorskip("ray")
    path = os.pathsep.join(p for p in (str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()
