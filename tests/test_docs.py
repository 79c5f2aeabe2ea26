"""The docs say only what the code does.

Every dotted ``gpbo.`` name, every ``path/to/file.py`` and every relative
Markdown link in docs/internals.md, README.md, benchmarks/RESULTS.md and
docs/decisions/*.md exists, and every
function signature quoted in docs/internals.md as ``name(args)`` (in
backticks) has the parameter names of ``inspect.signature``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INTERNALS = ROOT / "docs" / "internals.md"
DOCS = [
    INTERNALS,
    ROOT / "README.md",
    ROOT / "benchmarks" / "RESULTS.md",
    *sorted((ROOT / "docs" / "decisions").glob("*.md")),
]

_DOTTED = re.compile(r"\bgpbo(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)+[\w.-]+\.py)\b")
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)#\s]+)")
_CALL = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)")


def _resolve(dotted: str):
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)  # AttributeError names the missing part
        return obj
    raise ImportError(f"no module in {dotted!r}")


def _refs(pattern: re.Pattern, group: int = 0) -> list[tuple[str, int, str]]:
    out = []
    for doc in DOCS:
        for lineno, line in enumerate(doc.read_text().splitlines(), 1):
            for m in pattern.finditer(line):
                out.append((doc.relative_to(ROOT).as_posix(), lineno, m.group(group)))
    return out


def test_the_docs_exist():
    assert INTERNALS.exists()
    assert (ROOT / "docs" / "decisions" / "README.md").exists()


@pytest.mark.parametrize("doc,line,name", sorted(set(_refs(_DOTTED))))
def test_dotted_gpbo_names_exist(doc, line, name):
    name = name.rstrip(".")
    try:
        _resolve(name)
    except (ImportError, AttributeError) as err:
        pytest.fail(f"{doc}:{line} quotes {name!r}, which does not resolve: {err}")


@pytest.mark.parametrize("doc,line,path", sorted(set(_refs(_PATH, 1))))
def test_quoted_python_files_exist(doc, line, path):
    candidates = [ROOT / path, (ROOT / doc).parent / path]
    if not any(p.exists() for p in candidates):
        pytest.fail(f"{doc}:{line} quotes {path!r}, which is not a file of the repository")


@pytest.mark.parametrize("doc,line,target", sorted(set(_refs(_LINK, 1))))
def test_relative_links_resolve(doc, line, target):
    if not ((ROOT / doc).parent / target).exists():
        pytest.fail(f"{doc}:{line} links to {target!r}, which does not exist")


# name as written in internals.md -> the object it documents
_SIGNATURE_TARGETS = {
    "minimize_lbfgsb": "gpbo.optim.lbfgsb.minimize_lbfgsb",
    "ExactGP.fit": "gpbo.models.exact.ExactGP.fit",
    "maximize_acquisition": "gpbo.search.multistart.maximize_acquisition",
    "suggest": "gpbo.engine.suggest",
    "warp_outcomes": "gpbo.models.warping.warp_outcomes",
    "SurrogateFactory.fit": "gpbo.models.protocol.SurrogateFactory.fit",
}


def _split_args(text: str) -> list[str]:
    """Top-level comma split (brackets, parentheses and quotes respected)."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _quoted_params(args: str) -> list[str]:
    names = []
    for a in _split_args(args):
        if a in ("*", "/"):
            continue
        m = re.match(r"\*{0,2}([A-Za-z_]\w*)", a)
        if m:
            names.append(m.group(1))
    return names


def _signatures() -> list[tuple[int, str, str]]:
    """(line, name, args) of each ``name(args)`` code span or fenced ``def`` in internals.md."""
    found = []
    text = INTERNALS.read_text()
    for lineno, line in enumerate(text.splitlines(), 1):
        for span in _CODE.findall(line):
            m = _CALL.match(span)
            if m and m.group(1) in _SIGNATURE_TARGETS:
                args = m.group(2)
                # the span may continue with " -> result"; cut at the matching paren
                depth = 0
                for i, ch in enumerate("(" + args + ")"):
                    depth += ch == "("
                    depth -= ch == ")"
                    if depth == 0:
                        args = ("(" + args + ")")[1:i]
                        break
                found.append((lineno, m.group(1), args))
    for m in re.finditer(r"^def (\w+)\((.*?)\)\s*->", text, re.M | re.S):
        if m.group(1) in _SIGNATURE_TARGETS:
            found.append((text[: m.start()].count("\n") + 1, m.group(1), m.group(2)))
    return found


def test_internals_quotes_the_functions_it_checks():
    quoted = {name for _, name, _ in _signatures()}
    assert {"maximize_acquisition", "suggest", "minimize_lbfgsb", "ExactGP.fit"} <= quoted, quoted


@pytest.mark.parametrize("line,name,args", _signatures())
def test_internals_signatures_match_the_code(line, name, args):
    target = _SIGNATURE_TARGETS[name]
    params = [
        p.name for p in inspect.signature(_resolve(target)).parameters.values()
        if p.name not in ("self", "cls")
    ]
    quoted = _quoted_params(args)
    if quoted != params:
        missing = [p for p in params if p not in quoted]
        extra = [p for p in quoted if p not in params]
        pytest.fail(
            f"docs/internals.md:{line} quotes {name}({', '.join(quoted)}) but {target} takes "
            f"({', '.join(params)}); missing from the doc: {missing}; not in the code: {extra}"
        )
