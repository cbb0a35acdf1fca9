"""The suite's layout: no test module imports another. Tests share code through
tests/helpers.py (plain names) and the conftest files (fixtures), so moving or deleting a
test module never breaks another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def is_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and parts[-1].startswith("test_")


def imported_modules(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module the source of module ``name`` imports (absolute, relative, and by
    ``importlib.import_module`` or ``__import__`` of a literal), with its line."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            found.append((node.lineno, origin))
            # ``from tests.unit import test_x``: the names may be modules themselves.
            found += [(node.lineno, f"{origin}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def imported_test_modules(source: str, name: str, is_package: bool = False) -> list[str]:
    """The test modules (other than itself) that module ``name`` imports."""
    return [
        f"line {line}: {module}"
        for line, module in imported_modules(source, name, is_package)
        if is_test_module(module) and module != name
    ]


def test_no_module_of_the_suite_imports_a_test_module() -> None:
    # Test modules above all; conftest files and helpers.py neither (a shared module that
    # imported a test would break every user when that test moved).
    files = sorted(TESTS.rglob("*.py"))
    assert any(f.name == "test_test_layout.py" for f in files)
    offences = {
        str(path.relative_to(ROOT)): found
        for path in files
        if (
            found := imported_test_modules(
                path.read_text(encoding="utf-8"),
                module_name(path.parent if path.name == "__init__.py" else path),
                is_package=path.name == "__init__.py",
            )
        )
    }
    assert offences == {}, (
        "test modules import each other; move what they share into tests/helpers.py "
        f"(plain names) or a conftest.py (fixtures): {offences}"
    )


@pytest.mark.parametrize(
    "source",
    [
        "import tests.integration.test_alerts",
        "import tests.integration.test_alerts as alerts",
        "from tests.integration.test_alerts import T0",
        "from tests.integration import test_alerts",
        "from . import test_alerts",
        "from .test_alerts import write_series",
        "from ..server.test_api import with_reference",
        "from .. import server as s, integration\nfrom ..integration import test_alerts",
        "def f():\n    from tests.integration.test_alerts import T0\n",
        "import importlib\nimportlib.import_module('tests.integration.test_alerts')",
        "__import__('tests.integration.test_alerts')",
    ],
)
def test_the_check_sees_every_way_of_importing_a_test_module(source: str) -> None:
    assert imported_test_modules(source, "tests.integration.test_cli")


@pytest.mark.parametrize(
    "source",
    [
        "from tests.helpers import MODEL_YAML, simulate",
        "from tests.conftest import need",
        "import tests.helpers",
        "from .. import helpers",
        "from . import conftest",
        "from watchkeeper import testing",
        "import pytest",
        "from __future__ import annotations",
    ],
)
def test_the_check_allows_helpers_conftest_and_everything_else(source: str) -> None:
    assert imported_test_modules(source, "tests.integration.test_cli") == []


def test_relative_imports_resolve_from_the_importing_package() -> None:
    assert imported_modules("from ..server.test_api import x", "tests.integration.test_cli") == [
        (1, "tests.server.test_api"),
        (1, "tests.server.test_api.x"),
    ]
    # In a module, ``.`` is its package; in a package's __init__.py, the package itself.
    assert (1, "tests.unit.test_x") in imported_modules("from . import test_x", "tests.unit.test_y")
    assert (1, "tests.unit.test_x") in imported_modules(
        "from . import test_x", "tests.unit", is_package=True
    )
