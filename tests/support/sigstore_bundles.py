"""Sigstore bundles made by the tests, for the cases the real cosign will not write: tampered
subjects, wrong keys and identities, broken inclusion proofs, expired certificates, timestamps.

* :class:`MerkleRekor` — a transparency log with a real RFC 6962 tree: entries get an inclusion
  promise (SET), an audit path and a checkpoint signed as a transparency-dev note, as Rekor
  serves them (the tree math here is the RFC's recursive definition, independent of the
  iterative check in ``domain/rekor.py``);
* :func:`statement` / :func:`dsse_bundle` / :func:`message_bundle` — bundle JSON as cosign v3
  writes it (media type v0.3 unless told otherwise);
* :func:`push_bundle` / :func:`push_bundle_to` — the bundle as an OCI 1.1 referrer of an image in
  a :class:`FakeRegistry` or a real registry (the ``sha256-<hex>`` referrers tag schema, as a
  registry without the API has it).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.domain.dsse import COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE
from connaisseur.domain.sigstore import log_id
from connaisseur.domain.sigstore_bundle import BUNDLE_V03
from tests.support.cosign import Signer, public_pem, sha256
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.oci_push import Pusher

EMPTY = b"{}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _leaf(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_hash(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def audit_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*audit_path(index, leaves[:k]), tree_hash(leaves[k:])]
    return [*audit_path(index - k, leaves[k:]), tree_hash(leaves[:k])]


@dataclass
class MerkleRekor:
    """A log with a key, a tree of entries (a few unrelated ones first) and signed notes."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    origin: str = "rekor.test - 1"
    bodies: list[bytes] = field(default_factory=lambda: [b"a", b"b", b"c", b"d", b"e"])

    @property
    def log_id(self) -> str:
        return log_id(self.key.public_key())

    @property
    def public_pem(self) -> str:
        return public_pem(self.key)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def checkpoint(self, size: int, root: bytes, *, signer: MerkleRekor | None = None) -> str:
        note = f"{self.origin}\n{size}\n{b64(root)}\n"
        by = signer or self
        hint = bytes.fromhex(by.log_id)[:4]
        name = self.origin.split(" ")[0]  # the signature line names the log's host only
        return f"{note}\n\u2014 {name} {b64(hint + by.sign(note.encode()))}\n"

    def entry(
        self,
        body: dict[str, Any],
        integrated: int,
        *,
        promise: bool = True,
        proof: bool = True,
        later: int = 2,
    ) -> dict[str, Any]:
        """Append ``body`` (then ``later`` unrelated entries) and return the bundle's
        ``tlogEntries`` item for it."""
        raw = json.dumps(body, separators=(",", ":")).encode()
        index = len(self.bodies)
        self.bodies += [raw, *(f"later {i}".encode() for i in range(later))]
        leaves = [_leaf(b) for b in self.bodies]
        root = tree_hash(leaves)
        entry: dict[str, Any] = {
            "logIndex": str(index),
            "logId": {"keyId": b64(bytes.fromhex(self.log_id))},
            "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
            "integratedTime": str(integrated),
            "canonicalizedBody": b64(raw),
        }
        if promise:
            payload = {
                "body": b64(raw),
                "integratedTime": integrated,
                "logID": self.log_id,
                "logIndex": index,
            }
            canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
            entry["inclusionPromise"] = {"signedEntryTimestamp": b64(self.sign(canonical))}
        if proof:
            entry["inclusionProof"] = {
                "logIndex": str(index),
                "rootHash": b64(root),
                "treeSize": str(len(leaves)),
                "hashes": [b64(h) for h in audit_path(index, leaves)],
                "checkpoint": {"envelope": self.checkpoint(len(leaves), root)},
            }
        return entry


def statement(digest: str, predicate_type: str = COSIGN_SIGN_PREDICATE, **extra: Any) -> bytes:
    """An in-toto v1 statement about ``digest`` (cosign v3's image signature by default)."""
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": extra.pop("predicate", {}),
        **extra,
    }
    return json.dumps(doc).encode()


@dataclass
class Signing:
    """Who signs a bundle: a key (``hint`` material) or a key with its Fulcio certificate."""

    signer: Signer
    cert_pem: str | None = None

    @property
    def verifier_pem(self) -> str:
        return self.cert_pem or self.signer.public_pem

    def material(self) -> dict[str, Any]:
        if self.cert_pem is None:
            return {"publicKey": {"hint": "a hint, never trusted"}}
        der = x509.load_pem_x509_certificate(self.cert_pem.encode()).public_bytes(
            serialization.Encoding.DER
        )
        return {"certificate": {"rawBytes": b64(der)}}


def dsse_bundle(
    signing: Signing,
    payload: bytes,
    *,
    rekor: MerkleRekor | None = None,
    integrated: int = 0,
    timestamps: Sequence[bytes] = (),
    media_type: str = BUNDLE_V03,
    tamper: dict[str, Any] | None = None,
    promise: bool = True,
    proof: bool = True,
) -> bytes:
    """A bundle with a DSSE envelope over ``payload``; ``rekor`` logs it as a ``dsse`` entry;
    ``tamper`` overrides parts of the log entry's body (an entry recording something else)."""
    signature = signing.signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    material = signing.material()
    material["tlogEntries"] = []
    if rekor is not None:
        spec = {
            "envelopeHash": {"algorithm": "sha256", "value": "00" * 32},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [
                {"signature": b64(signature), "verifier": b64(signing.verifier_pem.encode())}
            ],
        }
        spec.update(tamper or {})
        body = {"apiVersion": "0.0.1", "kind": "dsse", "spec": spec}
        material["tlogEntries"] = [rekor.entry(body, integrated, promise=promise, proof=proof)]
    if timestamps:
        material["timestampVerificationData"] = {
            "rfc3161Timestamps": [{"signedTimestamp": b64(t)} for t in timestamps]
        }
    doc = {
        "mediaType": media_type,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": b64(payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": b64(signature)}],
        },
    }
    return json.dumps(doc).encode()


def message_bundle(signing: Signing, digest: str) -> bytes:
    """A bundle with a message signature over the SHA-256 digest ``digest`` (no log entry)."""
    raw = bytes.fromhex(digest.removeprefix("sha256:"))
    key = signing.signer.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    signature = key.sign(raw, ec.ECDSA(Prehashed(hashes.SHA256())))
    material = {**signing.material(), "tlogEntries": []}
    doc = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(raw)},
            "signature": b64(signature),
        },
    }
    return json.dumps(doc).encode()


def bundle_referrer(
    digest: str, layer: str, size: int, config: str, predicate_type: str | None
) -> bytes:
    """The referrer manifest cosign v3 writes for a bundle (blob ``layer`` of ``size`` bytes)
    signing the image ``digest``."""
    annotations = {"dev.sigstore.bundle.content": "dsse-envelope"}
    if predicate_type is not None:
        annotations["dev.sigstore.bundle.predicateType"] = predicate_type
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_V03,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": config},
        "layers": [{"mediaType": BUNDLE_V03, "size": size, "digest": layer}],
        "annotations": annotations,
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest},
    }
    return json.dumps(manifest).encode()


def referrers_index(entries: Sequence[tuple[str, int, str]] = ()) -> dict[str, Any]:
    """A referrers index listing ``(digest, size, artifactType)`` manifests."""
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": n, "artifactType": t}
            for d, n, t in entries
        ],
    }


def push_bundle(
    reg: FakeRegistry,
    repository: str,
    digest: str,
    bundle: bytes,
    *,
    predicate_type: str | None = COSIGN_SIGN_PREDICATE,
    listed_type: str = BUNDLE_V03,
) -> str:
    """``bundle`` as a referrer of ``digest`` (manifest, blobs, and an entry in the referrers
    tag's index, written as cosign v3 does); returns the referrer manifest's digest."""
    layer = reg.put_blob(repository, bundle)
    config = reg.put_blob(repository, EMPTY)
    manifest = bundle_referrer(digest, layer, len(bundle), config, predicate_type)
    referrer = reg.put_manifest(repository, manifest)
    _list_referrer(reg, repository, digest, referrer, listed_type)
    return referrer


def _list_referrer(
    reg: FakeRegistry, repository: str, digest: str, referrer: str, artifact_type: str
) -> None:
    tag = digest.replace(":", "-")
    path = f"{repository}/manifests/{tag}"
    index = json.loads(reg.files[path]) if path in reg.files else referrers_index()
    size = len(reg.files[f"{repository}/manifests/{referrer}"])
    index["manifests"] += referrers_index([(referrer, size, artifact_type)])["manifests"]
    reg.put_manifest(repository, json.dumps(index).encode(), tag)


async def push_bundle_to(pusher: Pusher, repository: str, digest: str, bundle: bytes) -> str:
    """:func:`push_bundle` on a real registry without the referrers API (through ``pusher``):
    the referrer manifest and the referrers tag listing only it; returns the manifest's
    digest."""
    layer, config = await pusher.blob(repository, bundle), await pusher.blob(repository, EMPTY)
    body = bundle_referrer(digest, layer, len(bundle), config, COSIGN_SIGN_PREDICATE)
    referrer = await pusher.manifest(repository, sha256(body), body, OCI_MANIFEST)
    index = json.dumps(referrers_index([(referrer, len(body), BUNDLE_V03)])).encode()
    await pusher.manifest(repository, digest.replace(":", "-"), index, OCI_INDEX)
    return referrer


def dsse_envelope(signer: Signer, payload: bytes) -> bytes:
    """A DSSE envelope as cosign's classic ``.att`` layer stores it."""
    signature = signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    doc = {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": b64(payload),
        "signatures": [{"keyid": "", "sig": b64(signature)}],
    }
    return json.dumps(doc).encode()


def push_attestations(
    reg: FakeRegistry, repository: str, digest: str, envelopes: Sequence[tuple[str, bytes]]
) -> None:
    """The ``sha256-<hex>.att`` manifest of (predicate type, envelope) layers, as cosign v2
    writes it (the signature annotation empty: the signature is inside the envelope)."""
    config = reg.put_blob(repository, EMPTY)
    layers = [
        {
            "mediaType": "application/vnd.dsse.envelope.v1+json",
            "size": len(envelope),
            "digest": reg.put_blob(repository, envelope),
            "annotations": {"dev.cosignproject.cosign/signature": "", "predicateType": kind},
        }
        for kind, envelope in envelopes
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": 2,
            "digest": config,
        },
        "layers": layers,
    }
    reg.put_manifest(repository, json.dumps(manifest).encode(), digest.replace(":", "-") + ".att")
