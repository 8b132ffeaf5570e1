"""``docs/threat-model.md`` cites tests by path and name; every one it cites must exist, so the
document cannot keep pointing at a test that was renamed or deleted.

Self-tests run the reference finder on synthetic text, so this test can fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THREAT_MODEL = ROOT / "docs" / "threat-model.md"
#: ``tests/x/test_y.py`` optionally followed by ``::name``; a bare ``::name`` continues the
#: last cited module.
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def references(text: str) -> list[tuple[str, str | None]]:
    """(test module, test name or ``None``) for every test the text cites, in order."""
    found: list[tuple[str, str | None]] = []
    module: str | None = None
    for match in REFERENCE.finditer(text):
        path, name = match.groups()
        if path is None and name is None:
            continue
        module = path or module
        if module is not None:
            found.append((module, name))
    return found


def test_the_finder_reads_modules_names_and_continuations() -> None:
    text = "`tests/a/test_b.py::test_c`, `::test_d`; `tests/e.py` and `other`"
    assert references(text) == [
        ("tests/a/test_b.py", "test_c"),
        ("tests/a/test_b.py", "test_d"),
        ("tests/e.py", None),
    ]


def test_every_test_the_threat_model_cites_exists() -> None:
    cited = references(THREAT_MODEL.read_text())
    assert cited, "the threat model cites no tests"
    missing = []
    for module, name in cited:
        path = ROOT / module
        if not path.is_file():
            missing.append(module)
            continue
        if name is not None and name not in _test_names(path):
            missing.append(f"{module}::{name}")
    assert not missing, f"cited in docs/threat-model.md but not found: {missing}"


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
