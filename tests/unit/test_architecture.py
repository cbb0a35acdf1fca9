"""The shape of the package, checked from its source: imports flow one way (no cycle, not
even through imports inside functions), modules stay readable, packages keep their code in
named modules, and metric metadata lives only in the catalogue."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchkeeper.catalogue import CATALOGUE

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "watchkeeper"
MAX_LINES = 610  # "about 600": a module a person reads in one sitting


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import, at the top or inside functions, except under ``if TYPE_CHECKING``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                stack += child.orelse  # type: ignore[arg-type]
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child
            stack.append(child)


def _resolve(name: str, module: str, node: ast.ImportFrom) -> str:
    """The absolute name of a relative import's base."""
    if not node.level:
        return name
    base = module.split(".")
    package = base if MODULES[module].name == "__init__.py" else base[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, *([name] if name else [])])


def edges() -> dict[str, set[str]]:
    """module → the watchkeeper modules it imports (a name imported from a package is the
    submodule when there is one of that name, else the package)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(node.module or "", module, node)
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                    for a in node.names
                ]
            for target in targets:
                while target and target not in MODULES:
                    target = target.rpartition(".")[0]
                if target and target != module and target != "watchkeeper":
                    graph[module].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if colour.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in colour and (found := visit(nxt)):
                return found
        path.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if node not in colour and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    found = _cycle(edges())
    assert found is None, "import cycle: " + " -> ".join(found or [])


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_store_is_the_only_package_that_opens_an_engine() -> None:
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            graph[module] |= {n for n in names if n.split(".")[0] in ("duckdb", "pyspark")}
    outside = {
        m: sorted(v) for m, v in graph.items() if v and not m.startswith("watchkeeper.store")
    }
    assert outside == {}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_reads_in_one_sitting(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


@pytest.mark.parametrize(
    "package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py")
)
def test_a_package_init_only_re_exports(package: str) -> None:
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    for node in tree.body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        all_ = isinstance(node, ast.Assign) and [
            t.id for t in node.targets if isinstance(t, ast.Name)
        ] == ["__all__"]
        version = isinstance(node, ast.Assign) and [
            t.id for t in node.targets if isinstance(t, ast.Name)
        ] == ["__version__"]
        assert docstring or all_ or version or isinstance(node, ast.Import | ast.ImportFrom), (
            f"{package}/__init__.py holds code at line {node.lineno}"
        )


def _metadata_tables(tree: ast.AST) -> Iterator[tuple[int, list[str]]]:
    """Set literals, and dicts whose values are all constants, keyed by metric keys: the
    shape of hand-copied metadata (``LOWER_IS_BETTER = {...}``, ``{"missing_rate": "missing"}``)."""
    for node in ast.walk(tree):
        keys: list[str] = []
        if isinstance(node, ast.Set):
            keys = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        elif isinstance(node, ast.Dict) and all(isinstance(v, ast.Constant) for v in node.values):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
        known = [k for k in keys if isinstance(k, str) and k in CATALOGUE]
        if len(known) >= 2:
            yield node.lineno, known


def test_no_metric_metadata_outside_the_catalogue() -> None:
    found = {}
    for module, path in MODULES.items():
        if module == "watchkeeper.catalogue":
            continue
        for line, keys in _metadata_tables(ast.parse(path.read_text(encoding="utf-8"))):
            found[f"{module}:{line}"] = keys
    assert found == {}


def test_the_metadata_finder_finds_a_copied_table() -> None:
    copied = ast.parse(
        'LOWER = {"mae", "rmse"}\nQUALITY = {"missing_rate": "missing", "unseen_rate": "u"}'
    )
    assert [keys for _, keys in _metadata_tables(copied)] == [
        ["mae", "rmse"],
        ["missing_rate", "unseen_rate"],
    ]


def test_no_package_hides_a_module_behind_a_name_it_exports() -> None:
    """``watchkeeper.monitor.run`` was the function, not the module: a package that
    re-exports a name equal to one of its modules makes the module unreachable by
    attribute (monkeypatching, debugging)."""
    import importlib
    import pkgutil

    shadowed = []
    for module, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        package = importlib.import_module(module)
        for sub in pkgutil.iter_modules(package.__path__):
            found = getattr(package, sub.name, None)
            if found is not None and not isinstance(found, type(package)):
                shadowed.append(f"{module}.{sub.name}")
    assert shadowed == []
