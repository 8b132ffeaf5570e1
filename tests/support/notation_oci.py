"""Notary Project signature artefacts in OCI form, pushed to a real registry.

A signature is an OCI image manifest whose ``subject`` is the signed image and whose single
layer is the envelope (JWS or COSE). Two manifest styles exist in the wild and both are built
here: OCI 1.1 (``artifactType`` set, empty ``application/vnd.oci.empty.v1+json`` config) and the
notation 1.0 style without ``artifactType`` (``config.mediaType`` is the signature type).
Registries without the referrers API (distribution 2.8) find them through the referrers tag
schema: an OCI index tagged ``sha256-<hex>`` of the subject, listing one descriptor per
referrer (with ``artifactType`` and the manifest's annotations).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.cosign import sha256
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.oci_push import Pusher

ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
JWS = "application/jose+json"
COSE = "application/cose"
THUMBPRINT = "io.cncf.notary.x509chain.thumbprint#S256"


@dataclass(frozen=True)
class Subject:
    """The descriptor of the signed image manifest."""

    digest: str
    size: int
    media_type: str

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class SignatureArtifact:
    """A signature manifest, the blobs it references, and its referrers-index descriptor."""

    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def index_descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": OCI_MANIFEST,
            "digest": self.digest,
            "size": len(self.manifest),
            "artifactType": ARTIFACT_TYPE,
            "annotations": self.annotations,
        }


def thumbprints(chain: Sequence[x509.Certificate]) -> str:
    """The ``io.cncf.notary.x509chain.thumbprint#S256`` annotation value of a chain."""
    return json.dumps(
        [hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest() for c in chain]
    )


def signature_artifact(
    subject: Subject,
    envelope: bytes,
    envelope_type: str,
    chain: Sequence[x509.Certificate],
    *,
    oci11: bool = True,
) -> SignatureArtifact:
    """The signature manifest for ``envelope`` (OCI 1.1 style, or notation 1.0 style)."""
    config = b"{}"
    annotations = {THUMBPRINT: thumbprints(chain)}
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if oci11:
        manifest["artifactType"] = ARTIFACT_TYPE
    manifest["config"] = {
        "mediaType": OCI_EMPTY if oci11 else ARTIFACT_TYPE,
        "digest": sha256(config),
        "size": len(config),
    }
    manifest["layers"] = [
        {"mediaType": envelope_type, "digest": sha256(envelope), "size": len(envelope)}
    ]
    manifest["subject"] = subject.descriptor()
    manifest["annotations"] = annotations
    return SignatureArtifact(
        manifest=json.dumps(manifest).encode(),
        blobs={sha256(config): config, sha256(envelope): envelope},
        annotations=annotations,
    )


def referrers_index(artifacts: Sequence[SignatureArtifact]) -> bytes:
    """The OCI index stored under the referrers tag ``sha256-<hex>``."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [a.index_descriptor() for a in artifacts],
    }
    return json.dumps(index).encode()


def referrers_tag(digest: str) -> str:
    return digest.replace(":", "-", 1)


async def push_signatures(
    pusher: Pusher, repo: str, subject: Subject, artifacts: Sequence[SignatureArtifact]
) -> None:
    """Push signature manifests and their blobs, then (re)write the referrers tag index."""
    for artifact in artifacts:
        for blob in artifact.blobs.values():
            await pusher.blob(repo, blob)
        await pusher.manifest(repo, artifact.digest, artifact.manifest, OCI_MANIFEST)
    await pusher.manifest(
        repo, referrers_tag(subject.digest), referrers_index(artifacts), OCI_INDEX
    )


def put_signatures(
    registry: FakeRegistry, repo: str, subject: Subject, artifacts: Sequence[SignatureArtifact]
) -> None:
    """:func:`push_signatures` into a :class:`FakeRegistry` (the referrers tag schema)."""
    for artifact in artifacts:
        for blob in artifact.blobs.values():
            registry.put_blob(repo, blob)
        registry.put_manifest(repo, artifact.manifest)
    registry.put_manifest(repo, referrers_index(artifacts), referrers_tag(subject.digest))
