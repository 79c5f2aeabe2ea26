"""gpbo's packages import each other in one direction only (DESIGN.md, "Data flow").

The declared order, bottom up: optim (the batched solver) ← space ← models ←
acquisition ← search ← early_stopping ← settings ← engine ← facade. A module may import
modules of its own layer or of a lower one; any edge that points up (and so
any import cycle between layers) fails this test. Function-level imports count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gpbo

ROOT = Path(gpbo.__file__).parent

# (layer, module prefixes); a module belongs to the layer of its longest matching prefix
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("gpbo.errors", "gpbo.threads", "gpbo.owners", "gpbo.pareto", "gpbo.outcomes", "gpbo.early_stopping.protocol")),
    ("optim", ("gpbo.optim",)),
    ("space", ("gpbo.dims", "gpbo.space", "gpbo.design", "gpbo.validation")),
    ("models", ("gpbo.models",)),
    ("acquisition", ("gpbo.acquisition",)),
    ("search", ("gpbo.search",)),
    ("early_stopping", ("gpbo.early_stopping",)),
    ("settings", ("gpbo.settings",)),
    ("engine", ("gpbo.engine",)),
    ("facade", ("gpbo",)),
]


def _module_name(path: Path) -> str:
    parts = ("gpbo",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer"
    return best


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m == "gpbo" or m.startswith("gpbo.")}


def _edges() -> list[tuple[str, str]]:
    return [(_module_name(p), target) for p in sorted(ROOT.rglob("*.py")) for target in sorted(_imports(p))]


def test_every_module_belongs_to_a_layer():
    assert all(_layer(source) >= 0 and _layer(target) >= 0 for source, target in _edges())


def test_no_import_points_up_the_declared_order():
    upward = [
        f"{source} ({LAYERS[_layer(source)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for source, target in _edges()
        if _layer(target) > _layer(source)
    ]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_the_solver_knows_nothing_of_models_or_acquisitions():
    solver = [(s, t) for s, t in _edges() if s == "gpbo.optim" or s.startswith("gpbo.optim.")]
    assert all(t == "gpbo.errors" or t.startswith("gpbo.optim.") for _, t in solver), solver


def test_the_walk_sees_the_known_edges():
    edges = set(_edges())
    assert ("gpbo.search.multistart", "gpbo.optim.lbfgsb") in edges
    assert ("gpbo.models.exact", "gpbo.optim.lbfgsb") in edges
