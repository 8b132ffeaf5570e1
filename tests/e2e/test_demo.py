"""``make demo`` and ``make demo-containers`` (scripts/demo.py) run as a user runs them: the
signed tag is admitted and pinned to the digest the demo pushed, the unsigned tag is denied with
its reason, and the demo exits 0 — or non-zero when an answer is not the promised one. The
containers variant runs the registry, Notary and the product image (as the chart runs it) in
containers and needs a Docker engine."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support import containers, images
from tests.support.webhook_process import ROOT

DEMO = ROOT / "scripts" / "demo.py"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Run:
    """What the demo printed, without colours, and how it exited."""

    returncode: int
    out: str
    err: str

    def line(self, prefix: str) -> str:
        (found,) = [line for line in self.out.splitlines() if line.startswith(prefix)]
        return found

    def answers(self) -> list[list[str]]:
        """The lines printed for each AdmissionReview, in order."""
        blocks = self.out.split("== AdmissionReview for ")[1:]
        return [block.split("\n== ")[0].splitlines() for block in blocks]


def run_demo(*args: str, env: dict[str, str] | None = None) -> Run:
    done = subprocess.run(
        [sys.executable, str(DEMO), *args],
        cwd=ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return Run(done.returncode, ANSI.sub("", done.stdout), done.stderr)


def assert_the_promised_outcomes(run: Run) -> None:
    assert run.returncode == 0, f"{run.out[-3000:]}\n{run.err[-3000:]}"
    image, _, digest = run.line("127.0.0.1:").partition(" -> ")
    signed, unsigned = run.answers()
    assert signed[0] == image
    assert "allowed: True" in signed
    patch = json.loads(next(x for x in signed if x.startswith("patch:")).removeprefix("patch:"))
    assert patch == [
        {"op": "replace", "path": "/spec/containers/0/image", "value": f"{image}@{digest}"}
    ]
    assert unsigned[0] == image.replace(":v1", ":unsigned")
    assert "allowed: False" in unsigned
    reason = next(x for x in unsigned if x.startswith("reason:"))
    assert "hello:unsigned" in reason
    assert "[reference_not_found]" in reason
    assert "UNEXPECTED" not in run.out
    assert run.out.rstrip().endswith("demo: every answer as expected")


@pytest.mark.integration
def test_make_demo_admits_and_pins_the_signed_tag_and_denies_the_unsigned_one() -> None:
    run = run_demo()
    assert_the_promised_outcomes(run)


@pytest.mark.integration
@pytest.mark.helm
def test_make_demo_containers_does_the_same_with_everything_in_containers(
    helm_bin: Path,
) -> None:
    containers.require_engine()
    servers = (images.REGISTRY, images.NOTARY_SERVER, images.NOTARY_SIGNER)
    names = {setting.variable: images.build_server(setting) for setting in servers}
    names[images.PRODUCT.variable] = images.build_product()
    path = f"{helm_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # required: a missing image must fail here, not quietly run the Debian binaries instead
    run = run_demo("--containers", env={**names, "PATH": path, containers.REQUIRE_VARIABLE: "1"})
    assert_the_promised_outcomes(run)
    assert run.line("registry: ").endswith(f"(container {names[images.REGISTRY.variable]})")
    assert "container" in run.line("notary: ")
    assert "debian" not in run.line("notary: ")
    assert f"{names[images.PRODUCT.variable]} serve" in run.out  # the docker run line


# --- the demo's own check: what makes it exit non-zero ----------------------------------------


def demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("connaisseur_demo", DEMO)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DIGEST = "sha256:" + "ab" * 32


def admitted(value: str) -> dict[str, Any]:
    patch = [{"op": "replace", "path": "/spec/containers/0/image", "value": value}]
    return {"allowed": True, "patch": base64.b64encode(json.dumps(patch).encode()).decode()}


DENIED = {"allowed": False, "status": {"message": "denied [reference_not_found]: ..."}}


@pytest.mark.parametrize(
    ("response", "digest", "expected"),
    [
        (admitted(f"r/demo/hello:v1@{DIGEST}"), DIGEST, True),
        (admitted("r/demo/hello:v1@sha256:" + "cd" * 32), DIGEST, False),
        ({"allowed": True}, DIGEST, False),
        (DENIED, DIGEST, False),
        (DENIED, None, True),
        ({"allowed": False}, None, False),
        (admitted(f"r/demo/hello:unsigned@{DIGEST}"), None, False),
    ],
    ids=[
        "pinned to the digest",
        "pinned to another digest",
        "admitted unpinned",
        "denied instead of admitted",
        "denied with a reason",
        "denied without a reason",
        "admitted instead of denied",
    ],
)
def test_the_demo_accepts_only_the_promised_answer(
    response: dict[str, Any], digest: str | None, expected: bool
) -> None:
    assert demo_module().as_expected(response, digest) is expected
