"""The real ``notation`` CLI (v1.3) signing images in a local registry, found on ``PATH`` or in
``.tools/bin`` (tests/support/tools.py), so a test skips with one line when it is absent.

Everything stays in a sandbox: ``HOME`` and the XDG directories point into ``work``, where
``notation cert generate-test`` writes its keys, certificates and trust store. The registry is
plain HTTP on 127.0.0.1, hence ``--insecure-registry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.tools import find_tool, run_tool


@dataclass(frozen=True)
class Notation:
    """The notation binary and the sandbox its configuration lives in."""

    binary: Path
    work: Path

    def run(self, *args: str) -> str:
        env = {
            "HOME": str(self.work / "home"),
            "XDG_CONFIG_HOME": str(self.work / "config"),
            "XDG_CACHE_HOME": str(self.work / "cache"),
        }
        return run_tool(self.binary, args, self.work, env)

    @property
    def version(self) -> str:
        """``v1.3.2``: the ``Version:`` line of ``notation version``."""
        for line in self.run("version").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
        raise AssertionError("notation version printed no Version line")

    def generate_test_key(self, name: str, *, default: bool = False) -> str:
        """A self-signed test key and certificate named ``name``; its certificate (PEM)."""
        self.run("cert", "generate-test", *(["--default"] if default else []), name)
        return (self.work / "config" / "notation" / "localkeys" / f"{name}.crt").read_text()

    def sign(self, image: str, *options: str) -> None:
        """Sign ``image`` (``host/repo@sha256:…``) with ``options`` (``--key``, ``--expiry``,
        ``--signature-format``) into the registry's referrers tag schema (notation's default)."""
        self.run("sign", "--insecure-registry", *options, image)


def real_notation(work: Path) -> Notation:
    """The notation binary with a sandboxed configuration in ``work``; skips when missing."""
    binary = find_tool("notation")
    if binary is None:
        pytest.skip("real notation binary not found (PATH or .tools/bin)")
    (work / "home").mkdir(parents=True, exist_ok=True)
    return Notation(binary=binary, work=work)
