"""How the tests are laid out: shared code lives in ``tests/support``, tests look at behaviour.

* No module imports a test module (``test_*.py``) or a ``conftest.py``: what several tests
  share is a module of ``tests/support`` (conftest files hold fixtures only).
* Test doubles live only in ``tests/support``: a class named ``Fake*``, ``Mock*``, ``Stub*``,
  ``Recording*``, ``Counting*`` or ``Scripted*``, or one that names a port of
  ``application/ports.py`` (or ``Validator``) as its base, is defined nowhere else.
* No test reads a private attribute (``obj._name``) of what it tests.

Every module is parsed with ``ast`` (nothing is imported). Self-tests run each check on a
synthetic module, so this test can fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SUPPORT = TESTS / "support"
SCANNED = (TESTS, ROOT / "bench", ROOT / "scripts")
DOUBLE_PREFIXES = ("Fake", "Mock", "Stub", "Recording", "Counting", "Scripted")
#: Underscore names that are public API (named tuples).
PUBLIC_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_make"})


def port_names() -> frozenset[str]:
    """The Protocols of ``application/ports.py``, and ``Validator``."""
    tree = ast.parse((ROOT / "application" / "ports.py").read_text())
    protocols = {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(base).endswith("Protocol") for base in node.bases)
    }
    return frozenset(protocols | {"Validator"})


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for folder in SCANNED:
        for path in sorted(folder.rglob("*.py")):
            if ".venv" not in path.parts:
                yield path, ast.parse(path.read_text(), filename=str(path))


def imported_modules(tree: ast.Module) -> Iterator[str]:
    """Every module an import names (``from a.b import c`` names ``a.b`` and ``a.b.c``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def forbidden_imports(tree: ast.Module) -> list[str]:
    """Test modules and conftest modules imported by ``tree``."""
    found = []
    for name in imported_modules(tree):
        last = name.rsplit(".", 1)[-1]
        if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
            found.append(name)
    return sorted(set(found))


def doubles(tree: ast.Module, ports: frozenset[str]) -> list[str]:
    """Classes of ``tree`` that are test doubles by name or by the port they implement."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
        if node.name.lstrip("_").startswith(DOUBLE_PREFIXES) or bases & ports:
            found.append(node.name)
    return found


def private_reads(tree: ast.Module) -> list[str]:
    """``obj._name`` reads where ``obj`` is not the class itself (``self``/``cls``/``super()``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name in PUBLIC_UNDERSCORE:
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and ast.unparse(owner.func) == "super":
            continue
        found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


def is_test_module(path: Path) -> bool:
    return path.name.startswith("test_") or path.name == "conftest.py"


# --- self-tests -------------------------------------------------------------------------------


def test_the_checks_find_what_they_forbid() -> None:
    bad = ast.parse(
        "from tests.unit.test_cosign_validator import validator\n"
        "import tests.e2e.conftest\n"
        "from tests.helm import conftest\n"
        "class FakeClock: ...\n"
        "class Sink(AlertSink): ...\n"
        "def test_x(verify):\n"
        "    assert len(verify._memo) < 3\n"
    )
    assert forbidden_imports(bad) == [
        "tests.e2e.conftest",
        "tests.helm.conftest",
        "tests.unit.test_cosign_validator",
    ]
    assert doubles(bad, port_names()) == ["FakeClock", "Sink"]
    assert private_reads(bad) == ["verify._memo (line 7)"]


def test_the_checks_let_support_code_and_public_names_pass() -> None:
    good = ast.parse(
        "from tests.support.fakes import FakeClock\n"
        "from tests.fuzz.engine import bounded\n"
        "class Webhook:\n"
        "    def get(self):\n"
        "        return self._port, super()._make_runner(), point._replace(x=1)\n"
    )
    assert forbidden_imports(good) == []
    assert doubles(good, port_names()) == []
    assert private_reads(good) == []


# --- the repository ---------------------------------------------------------------------------


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path, tree in modules()
        if (found := forbidden_imports(tree))
    }
    assert offenders == {}


def test_test_doubles_live_only_in_tests_support() -> None:
    ports = port_names()
    offenders = {
        str(path.relative_to(ROOT)): found
        for path, tree in modules()
        if SUPPORT not in path.parents and (found := doubles(tree, ports))
    }
    assert offenders == {}


FOLDERS = sorted(p.name for p in TESTS.iterdir() if p.is_dir() and p.name[0] not in "._")


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_test_reads_a_private_attribute(folder: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path, tree in modules()
        if TESTS / folder in path.parents and is_test_module(path)
        if (found := private_reads(tree))
    }
    assert offenders == {}
