"""The layout promises of docs/design.md: imports run one way, no cycles, small modules and folders.

Read with :mod:`ast` (lazy imports inside functions count), so nothing is imported here.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "extract", "classify")
#: classify's floors: a module may import its own sub-package and any lower floor only.
FLOORS = {"classify.report": 4, "classify.bundle": 4, "classify.analysis": 3, "classify.run": 2,
          "classify.config": 1, "classify.models": 0, "classify.results": 0}
#: same-floor imports that are allowed (the cell's estimator reads the cell's spec).
SAME_FLOOR_OK = {("classify.models", "classify.results")}
CLI_LAYER = ("pipeline.cli", "pipeline.commands", "pipeline.api", "pipeline.__main__")
MAX_LINES = 500
MAX_MODULES_PER_FOLDER = 12  # not counting __init__.py


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = p
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> project modules it imports (``from a.b import c`` counts a.b.c when c is a module)."""
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in mods else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        edges[name] = {d for d in deps if d in mods and d != name}
    return edges


def _floor(name: str) -> tuple[str | None, int | None]:
    for pkg, level in FLOORS.items():
        if name == pkg or name.startswith(pkg + "."):
            return pkg, level
    return None, None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _imports(_modules())


def test_no_import_cycle(graph):
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_classify_imports_run_top_down(graph):
    bad = []
    for mod, deps in graph.items():
        pkg, level = _floor(mod)
        if pkg is None:
            continue
        for dep in deps:
            dpkg, dlevel = _floor(dep)
            if dpkg is None or dpkg == pkg or (pkg, dpkg) in SAME_FLOOR_OK:
                continue
            if dlevel >= level:
                bad.append(f"{mod} -> {dep}")
    assert bad == [], "imports against report/bundle -> analysis -> run -> config -> models/results"


def test_stages_never_import_each_other(graph):
    bad = [f"{m} -> {d}" for m, deps in graph.items() for d in deps
           if (m.startswith("classify") and d.startswith("extract"))
           or (m.startswith("extract") and d.startswith("classify"))
           or (m.startswith("pipeline") and not m.startswith(CLI_LAYER)
               and d.startswith(("classify", "extract")))]
    assert bad == []


def test_modules_and_folders_stay_small():
    mods = _modules()
    long = {str(p.relative_to(ROOT)): n for p in mods.values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    per_folder = Counter(str(p.parent.relative_to(ROOT)) for p in mods.values()
                         if p.name != "__init__.py")
    crowded = {k: v for k, v in per_folder.items() if v > MAX_MODULES_PER_FOLDER}
    assert long == {}, f"modules over {MAX_LINES} lines"
    assert crowded == {}, f"folders over {MAX_MODULES_PER_FOLDER} modules"
