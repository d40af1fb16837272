"""The packages' layering, read from their imports (``ast``, nothing is imported).

Dependencies run one way (docs/architecture.md): ``couchlite`` (the store) and
``encryption_plugin`` import nothing of the gateway or the client; ``couchgate_sync`` imports
the store and the plugin, never ``gateway``; and no module of the client or the store imports,
directly or around a circle, a module that imports it back. An import under ``TYPE_CHECKING``
counts: a circle a type checker needs is still one a reader has to hold in mind.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("couchlite", "encryption_plugin", "couchgate_sync")
NO_CIRCLES = ("couchlite", "couchgate_sync")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; ``from . import x`` as ``pkg.x``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for pkg in CHECKED for p in sorted((ROOT / pkg).rglob("*.py"))}
    return {name: _imports(path) for name, path in modules.items()}


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_store_and_the_client_never_import_the_gateway() -> None:
    bad = sorted(
        f"{mod} imports {imp}"
        for mod, imps in _graph().items()
        if _top(mod) in ("couchlite", "couchgate_sync")
        for imp in imps
        if _top(imp) == "gateway"
    )
    assert bad == []


def test_the_store_and_the_plugin_never_import_the_client() -> None:
    bad = sorted(
        f"{mod} imports {imp}"
        for mod, imps in _graph().items()
        if _top(mod) in ("couchlite", "encryption_plugin")
        for imp in imps
        if _top(imp) == "couchgate_sync"
    )
    assert bad == []


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_circles_in_the_client_or_the_store() -> None:
    full = _graph()
    within = {m for m in full if _top(m) in NO_CIRCLES}
    # A package's __init__ re-exporting its modules is not a circle of the modules themselves.
    graph = {
        m: {i for i in full[m] if i in within and i != m and not _is_parent(i, m)} for m in within
    }
    assert _circles(graph) == []


def _is_parent(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def test_the_circle_finder_finds_a_circle() -> None:
    """The finder itself can fail: a TYPE_CHECKING-style back edge is a circle."""
    graph = {"a.sync": {"a.renames"}, "a.renames": {"a.sync"}, "a.leaf": set()}
    assert _circles(graph) == [["a.renames", "a.sync"]]
