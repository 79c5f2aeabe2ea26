"""Optional dependencies: a missing one raises an ImportError naming the gpbo extra.

The hard dependencies are what ``import gpbo`` and ``gpbo.minimize`` (with its
progress bar) need; everything else is an extra in pyproject.toml. Each test
hides a module with ``sys.modules[name] = None``, which makes importing it
raise ImportError as if it were not installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
import torch

import gpbo


def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def _forget(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Drop a gpbo module so that the next import runs its top level again."""
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_import_gpbo_and_minimize_need_no_extra():
    # a fresh interpreter, so that what other tests imported does not count
    code = textwrap.dedent("""
        import sys
        for name in ("sklearn", "matplotlib", "optuna", "ray", "pandas", "nbformat"):
            sys.modules[name] = None
        import gpbo
        space = gpbo.Space({"x": gpbo.Real(0.0, 1.0)})
        result = gpbo.minimize(lambda p: (p["x"] - 0.3) ** 2, space, 3, progress=True)
        assert len(result.trials) == 3
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_plot_without_matplotlib_names_the_plot_extra(monkeypatch):
    from gpbo import plot

    opt = gpbo.Optimizer(gpbo.Space({"x": gpbo.Real(0.0, 1.0)}), seed=0)
    trial = opt.ask()
    opt.tell(trial, 1.0)
    _hide(monkeypatch, "matplotlib")
    with pytest.raises(ImportError, match=re.escape('pip install "gpbo[plot]"')):
        plot.convergence(opt)


def test_demo_without_scikit_learn_names_the_demo_extra(monkeypatch):
    from gpbo import demo

    _hide(monkeypatch, "sklearn")
    with pytest.raises(ImportError, match=re.escape('scikit-learn for its digits data: pip install "gpbo[demo]"')):
        demo.load_splits(0, torch.device("cpu"))


def test_demo_without_matplotlib_skips_the_plot_and_names_the_demo_extra(monkeypatch, tmp_path, capsys):
    from gpbo import demo

    _hide(monkeypatch, "matplotlib")
    demo._save_plot(None, tmp_path / "convergence.png")  # returns before it touches the result
    assert 'pip install "gpbo[demo]"' in capsys.readouterr().out
    assert not (tmp_path / "convergence.png").exists()


def test_to_dataframe_without_pandas_names_the_pandas_extra(monkeypatch, tmp_path):
    db = str(tmp_path / "study.db")
    opt = gpbo.Optimizer(gpbo.Space({"x": gpbo.Real(0.0, 1.0)}), storage=gpbo.Storage(db, "s"), seed=0)
    opt.tell(opt.ask(), 1.0)
    history = gpbo.load_study(db, "s")
    _hide(monkeypatch, "pandas")
    with pytest.raises(ImportError, match=re.escape('to_dataframe needs pandas: pip install "gpbo[pandas]"')):
        history.to_dataframe()


@pytest.mark.parametrize(
    "module, hidden, extra",
    [
        ("gpbo.integrations.optuna", "optuna", "optuna"),
        ("gpbo.integrations.ray_tune", "ray", "ray"),
        ("gpbo.integrations.ray_executor", "ray", "ray"),
    ],
)
def test_integration_without_its_tool_names_its_extra(monkeypatch, module, hidden, extra):
    _hide(monkeypatch, hidden)
    _forget(monkeypatch, module)
    with pytest.raises(ImportError, match=re.escape(f'pip install "gpbo[{extra}]"')):
        __import__(module)
