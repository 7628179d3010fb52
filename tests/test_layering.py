"""The layering of docs/architecture.md, checked on the source: every ``import`` statement of every module in
``omnibench/``, ``metrics/`` and ``reference_model/`` (at module level and inside functions alike; relative
imports and ``from package import module`` resolved to the module they load) is an edge of the import graph.

* no import cycles among our modules;
* nothing outside ``omnibench/cli/`` imports ``omnibench.cli`` (``omnibench/__main__.py``, the
  ``python -m omnibench`` entry point, is the one exception);
* ``metrics`` and ``reference_model`` never import each other;
* the omnibench core (``omnibench/``, its CLI included) never imports ``metrics`` or ``reference_model``: they
  plug in through entry points.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("omnibench", "metrics", "reference_model")
CLI_ENTRY_POINTS = {"omnibench.__main__"}


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is package)}`` of every .py file in :data:`PACKAGES`."""
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def _import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}``, restricted to our modules."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                # ``from pkg import name``: the submodule pkg.name when there is one, else pkg itself
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src for a in node.names]
            for t in targets:
                while t and t not in mods:  # a name inside a module, or a third-party module: its known prefix
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    edges[mod].add(t)
    return edges


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _import_graph()


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_graph_sees_known_edges(graph):
    """Guards the walk itself: a module-level, a function-level and a relative-free ``from pkg import mod``."""
    assert len(graph) > 100
    assert "omnibench.errors" in graph["omnibench.cli"]  # module level
    assert "omnibench.generators.resolve" in graph["omnibench.cli.render"]  # inside run()
    assert "metrics.inception" in graph["metrics.fid"]  # from metrics import inception


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles(graph):
    assert _cycles(graph) == []


def test_only_the_cli_imports_the_cli(graph):
    bad = [(a, b) for a, bs in graph.items() for b in bs
           if (b == "omnibench.cli" or b.startswith("omnibench.cli."))
           and not (a == "omnibench.cli" or a.startswith("omnibench.cli.")) and a not in CLI_ENTRY_POINTS]
    assert bad == []


def test_metrics_and_reference_model_never_import_each_other(graph):
    top = {m: m.split(".")[0] for m in graph}
    bad = [(a, b) for a, bs in graph.items() for b in bs if {top[a], top[b]} == {"metrics", "reference_model"}]
    assert bad == []


def test_core_never_imports_metrics_or_reference_model(graph):
    bad = [(a, b) for a, bs in graph.items() if a.split(".")[0] == "omnibench"
           for b in bs if b.split(".")[0] in ("metrics", "reference_model")]
    assert bad == []
