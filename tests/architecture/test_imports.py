"""Imports point inward: entrypoints → config → adapters → application → domain.

Every module of the five layers is parsed with ``ast`` (nothing is imported or executed) and each
import is checked against the layer's rules; ``domain`` and ``application`` must also not read
``os.environ`` or the wall clock (time is an argument; configuration is read once at start-up),
and know nothing of files or the network: they import no module that reaches either and never
call ``open`` — where trust data comes from (upstreams, a mirror, an offline bundle) is the
adapters' business, chosen by the composition root
(docs/decisions/0056-adapter-choice-is-configuration.md).
A self-test runs the checker on a synthetic bad module, so this test can fail.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "connaisseur"
LAYERS = ("domain", "application", "adapters", "config", "entrypoints")
COMPOSITION_ROOT = "config/container.py"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
#: What the domain may import besides itself: ``cryptography`` and parsers that do no I/O
#: (``sigstore_models``: sigstore's pydantic models of bundles and envelopes; not ``sigstore``,
#: whose modules import its network clients).
DOMAIN_LIBRARIES = frozenset({"cryptography", "cbor2", "sigstore_models"})
#: Third-party packages the application layer must not know (they belong to adapters/config).
APPLICATION_FORBIDDEN = frozenset(
    {
        "aiohttp",
        "yaml",
        "marshmallow",
        "jsonpatch",
        "dependency_injector",
        "redis",
        "prometheus_client",
    }
)


#: Standard modules that reach files, processes or the network: only adapters (and the layers
#: outside them) may use them.
FILES_AND_NETWORK = frozenset(
    {
        "os",
        "pathlib",
        "io",
        "shutil",
        "tempfile",
        "glob",
        "fnmatch",
        "mmap",
        "fcntl",
        "socket",
        "ssl",
        "select",
        "selectors",
        "subprocess",
        "urllib.request",
        "http.client",
        "http.server",
        "sqlite3",
        "zipfile",
        "tarfile",
    }
)
#: Words of how adapters reach upstreams, which ``domain`` and ``application`` must not know: the
#: swap to a mirror is configuration only (docs/decisions/0054-wiring-settings-stay-in-config.md).
WIRING_VOCABULARY = re.compile(r"mirror|hosts\.toml|fallback_?to_?source", re.IGNORECASE)
INNER_LAYERS = ("domain", "application")


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.what}"


def _imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _top(target: str) -> str:
    """The layer a ``connaisseur.<layer>...`` import names, else the imported distribution."""
    parts = target.split(".")
    if parts[0] == PACKAGE and len(parts) > 1:
        return parts[1]
    return parts[0]


def _import_problem(layer: str, module: str, target: str) -> str | None:
    top = _top(target)
    if target.split(".")[0] in LAYERS:
        return f"layers are imported as {PACKAGE}.{top}, never as a top-level package"
    if layer == "config" and top == "adapters" and module != COMPOSITION_ROOT:
        return f"only {COMPOSITION_ROOT} knows concrete adapters"
    if top == "entrypoints" and layer != "entrypoints":
        return "nothing imports entrypoints"
    if layer == "domain" and top not in STDLIB | DOMAIN_LIBRARIES | {"domain"}:
        return "domain imports only the standard library, cryptography, pure parsers and domain"
    if layer in {"domain", "application"} and _reaches_out(target):
        return f"{layer} knows nothing of files or the network"
    if layer == "application":
        if top in {"adapters", "config"}:
            return f"application must not import {top}"
        if top in APPLICATION_FORBIDDEN:
            return f"application must not import {top}"
    if layer == "adapters" and top == "config":
        return "adapters must not import config"
    return None


def _reaches_out(target: str) -> bool:
    """Whether importing ``target`` gives access to files or the network (``urllib.parse``
    is a parser; ``urllib.request`` is not)."""
    return any(target == m or target.startswith(m + ".") for m in FILES_AND_NETWORK)


def _impure_calls(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``os.environ``/``os.getenv``/``datetime.now()``/``time.time()`` style ambient reads."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain in {"os.environ", "os.getenv", "os.putenv"}:
                yield node.lineno, f"reads {chain}"
            if chain.endswith((".now", ".utcnow", ".today")) and chain.split(".")[0] in {
                "datetime",
                "dt",
                "date",
            }:
                yield node.lineno, f"calls {chain}() (time is an argument)"
            if chain in {"time.time", "time.time_ns"}:
                yield node.lineno, f"calls {chain}() (time is an argument)"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
        ):
            yield node.lineno, "opens a file (trust data comes through the ports)"
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in {"environ", "getenv"}:
                    yield node.lineno, f"imports os.{alias.name}"


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def check_source(layer: str, module: str, source: str) -> list[Violation]:
    """Every rule the module breaks."""
    tree = ast.parse(source)
    found = [
        Violation(module, line, f"imports {target}: {problem}")
        for line, target in _imports(tree)
        if (problem := _import_problem(layer, module, target)) is not None
    ]
    if layer in {"domain", "application"}:
        found += [Violation(module, line, what) for line, what in _impure_calls(tree)]
    return found


def layer_modules() -> list[tuple[str, Path]]:
    modules = [(layer, path) for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))]
    assert len(modules) > 20, "the layers were not found"
    return modules


@pytest.mark.parametrize(
    ("layer", "path"),
    [pytest.param(layer, path, id=str(path.relative_to(ROOT))) for layer, path in layer_modules()],
)
def test_imports_point_inward(layer: str, path: Path) -> None:
    module = str(path.relative_to(ROOT))
    violations = check_source(layer, module, path.read_text())
    assert not violations, "\n".join(map(str, violations))


BAD_MODULES = {
    "domain": (
        "import aiohttp\n"
        "import os\n"
        "from datetime import datetime\n"
        "from connaisseur.application.ports import Clock\n"
        "x = os.environ['A']\n"
        "t = datetime.now()\n",
        {1, 2, 4, 5, 6},
    ),
    "application": (
        "import yaml\n"
        "from connaisseur.adapters.http import HttpClient\n"
        "from connaisseur.config.loader import load_settings\n"
        "from dependency_injector import providers\n"
        "import prometheus_client\n"
        "from os import environ\n"
        "from pathlib import Path\n"
        "data = open('/bundle/oci/index.json').read()\n",
        {1, 2, 3, 4, 5, 6, 7, 8},
    ),
    "adapters": (
        "from connaisseur.config.container import Container\nimport connaisseur.entrypoints.cli\n",
        {1, 2},
    ),
    "config": (
        "from connaisseur.entrypoints.webhook import create_app\n"
        "from connaisseur.adapters.http import X\n",
        {1, 2},
    ),
}


@pytest.mark.parametrize("layer", sorted(BAD_MODULES))
def test_checker_catches_a_synthetic_bad_module(layer: str) -> None:
    source, bad_lines = BAD_MODULES[layer]
    found = {v.line for v in check_source(layer, f"{layer}/bad.py", source)}
    assert found == bad_lines


def test_checker_accepts_allowed_imports() -> None:
    good = (
        "from __future__ import annotations\n"
        "import re\n"
        "from cryptography import x509\n"
        "from connaisseur.domain.errors import Category\n"
        "def f(now):\n"
        "    return now\n"
    )
    assert check_source("domain", "domain/good.py", good) == []
    assert check_source("application", "application/good.py", good) == []
    assert (
        check_source("entrypoints", "entrypoints/good.py", "import connaisseur.entrypoints.cli\n")
        == []
    )
    assert (
        check_source(
            "config", COMPOSITION_ROOT, "from connaisseur.adapters.http import HttpClient\n"
        )
        == []
    )


def test_checker_refuses_a_layer_imported_as_a_top_level_package() -> None:
    found = check_source("adapters", "adapters/bad.py", "from domain.errors import Category\n")
    assert [v.line for v in found] == [1]


def wiring_words(module: str, source: str) -> list[Violation]:
    """Every line of an inner-layer module (code, comments, docstrings) that names the wiring."""
    return [
        Violation(module, number, f"names {match.group()!r}")
        for number, line in enumerate(source.splitlines(), start=1)
        if (match := WIRING_VOCABULARY.search(line))
    ]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(path, id=str(path.relative_to(ROOT)))
        for layer, path in layer_modules()
        if layer in INNER_LAYERS
    ],
)
def test_domain_and_application_know_nothing_of_mirrors(path: Path) -> None:
    violations = wiring_words(str(path.relative_to(ROOT)), path.read_text())
    assert not violations, "\n".join(map(str, violations))


def test_the_vocabulary_check_catches_a_mirror() -> None:
    source = '"""Fetch."""\nx = 1  # through the Mirror\nfallbackToSource = True\n'
    assert [v.line for v in wiring_words("application/bad.py", source)] == [2, 3]
