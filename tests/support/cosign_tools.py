"""The real cosign (v3 ``cosign``, v2 ``cosign2``) signing and attesting images in a local
registry, in each of the modes a user has today; found on ``PATH`` or in ``.tools/bin``
(tests/support/tools.py), so a test skips with one line when they are absent.

Everything is local: no transparency log (cosign v2 ``--tlog-upload=false``; cosign v3 an empty
signing config), no TUF (a throw-away ``$HOME`` whose look-up of the public-good root fails
and is only warned about), keys made by ``cosign generate-key-pair``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pytest

from tests.support.tools import find_tool, run_tool

PASSWORD = "connaisseur-test"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
#: A SLSA v1 provenance predicate as a GitHub-hosted build would write it.
PROVENANCE = {
    "buildDefinition": {
        "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
        "externalParameters": {
            "workflow": {
                "ref": "refs/heads/main",
                "repository": "https://github.com/acme/app",
                "path": ".github/workflows/build.yml",
            }
        },
    },
    "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
}


class Mode(StrEnum):
    """How cosign stores the signature."""

    V2_CLASSIC = "cosign2 (classic .sig tag)"
    V2_BUNDLE = "cosign2 --new-bundle-format"
    V2_REFERRERS = "cosign2 --registry-referrers-mode=oci-1-1"
    V3_DEFAULT = "cosign v3 default (bundle referrer)"
    V3_CLASSIC = "cosign v3 --new-bundle-format=false"


#: The format each mode's signature has (docs/decisions/0040-cosign-signature-formats.md).
FORMAT = {
    Mode.V2_CLASSIC: "classic",
    Mode.V2_BUNDLE: "bundle",
    Mode.V2_REFERRERS: "classic",
    Mode.V3_DEFAULT: "bundle",
    Mode.V3_CLASSIC: "classic",
}


@dataclass(frozen=True)
class Cosign:
    """Both cosign binaries, a key pair and a sandbox to run them in."""

    v3: Path
    v2: Path
    work: Path

    @property
    def key(self) -> Path:
        return self.work / "cosign.key"

    @property
    def public_pem(self) -> str:
        return (self.work / "cosign.pub").read_text()

    def _run(self, binary: Path, *args: str) -> str:
        env = {
            "HOME": str(self.work / "home"),
            "TUF_ROOT": str(self.work / "home" / "tuf"),
            "COSIGN_PASSWORD": PASSWORD,
            "COSIGN_EXPERIMENTAL": "1",
            "COSIGN_YES": "true",
        }
        return run_tool(binary, args, self.work, env)

    def sign(self, mode: Mode, image: str) -> None:
        """Sign ``image`` (``host/repo@sha256:…``) in ``mode``."""
        common = ["--key", str(self.key), "--yes", "--allow-insecure-registry"]
        if mode is Mode.V2_CLASSIC:
            self._run(self.v2, "sign", *common, "--tlog-upload=false", image)
        elif mode is Mode.V2_BUNDLE:
            self._run(self.v2, "sign", *common, "--tlog-upload=false", "--new-bundle-format", image)
        elif mode is Mode.V2_REFERRERS:
            self._run(
                self.v2,
                "sign",
                *common,
                "--tlog-upload=false",
                "--registry-referrers-mode=oci-1-1",
                image,
            )
        elif mode is Mode.V3_DEFAULT:
            self._run(self.v3, "sign", *common, "--signing-config", str(self.signing_config), image)
        else:
            self._run(
                self.v3,
                "sign",
                *common,
                "--use-signing-config=false",
                "--tlog-upload=false",
                "--new-bundle-format=false",
                image,
            )

    def attest(
        self, image: str, *, bundle: bool, predicate: dict[str, object] | None = None
    ) -> None:
        """Attest ``image`` with a SLSA v1 provenance: a classic ``.att`` layer (cosign v2) or a
        Sigstore bundle referrer (cosign v3's default)."""
        path = self.work / "predicate.json"
        path.write_text(json.dumps(predicate or PROVENANCE))
        common = [
            "--key",
            str(self.key),
            "--yes",
            "--allow-insecure-registry",
            "--type",
            "slsaprovenance1",
            "--predicate",
            str(path),
        ]
        if bundle:
            self._run(
                self.v3, "attest", *common, "--signing-config", str(self.signing_config), image
            )
        else:
            self._run(self.v2, "attest", *common, "--tlog-upload=false", image)

    @property
    def signing_config(self) -> Path:
        """cosign v3's signing config without a transparency log or timestamp authority."""
        path = self.work / "signing-config.json"
        if not path.exists():
            self._run(self.v3, "signing-config", "create", "--out", str(path))
        return path


def real_cosign(work: Path) -> Cosign:
    """Both cosign binaries with a fresh key pair in ``work``; skips when either is missing."""
    v3, v2 = find_tool("cosign"), find_tool("cosign2")
    if v3 is None or v2 is None:
        pytest.skip("real cosign v3 and v2 binaries not found (PATH or .tools/bin)")
    (work / "home").mkdir(parents=True, exist_ok=True)
    tools = Cosign(v3=v3, v2=v2, work=work)
    tools._run(v3, "generate-key-pair")
    return tools
