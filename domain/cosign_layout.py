"""cosign's classic layout: the ``sha256-<hex>.sig`` manifest (or the same manifest as an OCI
1.1 referrer, cosign v2's ``--registry-referrers-mode=oci-1-1``), its simple-signing layers with
their annotations, the simple-signing payload, and the ``sha256-<hex>.att`` manifest of DSSE
attestation layers.

Pure parsing, bounded: at most ``MAX_SIGNATURE_LAYERS`` layers, payloads of at most
``MAX_PAYLOAD_BYTES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from connaisseur.domain import jsondoc
from connaisseur.domain.errors import (
    Category,
    VerificationError,
)

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
#: The artifact type of a classic signature manifest stored as an OCI 1.1 referrer.
SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
PREDICATE_TYPE_ANNOTATION = "predicateType"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
MAX_SIGNATURE_LAYERS = 64
MAX_PAYLOAD_BYTES = 64 * 1024


def signature_tag(digest: str) -> str:
    """The cosign tag holding the signatures of ``digest``: ``sha256-<hex>.sig``."""
    return digest.replace(":", "-", 1) + ".sig"


def attestation_tag(digest: str) -> str:
    """The cosign tag holding the attestations of ``digest``: ``sha256-<hex>.att``."""
    return digest.replace(":", "-", 1) + ".att"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureLayer:
    """One cosign signature: the simple-signing payload and the layer's annotations."""

    payload: bytes = field(repr=False)
    signature: str = field(repr=False)
    certificate: str | None = field(default=None, repr=False)
    chain: str | None = field(default=None, repr=False)
    bundle: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerDescriptor:
    """A signature layer as listed in the ``.sig`` manifest, before its blob is fetched."""

    digest: str
    annotations: Mapping[str, str]
    #: the size the manifest declares (``None`` when absent or not a number)
    size: int | None = None

    @property
    def oversized(self) -> bool:
        """Declared larger than any simple-signing payload may be: not worth fetching."""
        return self.size is not None and self.size > MAX_PAYLOAD_BYTES


def signature_layers(
    body: bytes, media_type: str = SIMPLE_SIGNING_MEDIA_TYPE
) -> list[LayerDescriptor]:
    """The simple-signing layers of a ``.sig`` manifest, from its served bytes (the DSSE layers
    of an ``.att`` manifest with ``media_type=DSSE_MEDIA_TYPE``).

    Raises:
        VerificationError: ``malformed_trust_data`` when the manifest is not JSON, not an image
            manifest, or has too many layers; ``no_trust_data`` when it has no signature layer.
    """
    try:
        manifest = jsondoc.loads(body)
    except ValueError as e:
        raise VerificationError(
            "signature manifest is not JSON", category=Category.MALFORMED_TRUST_DATA
        ) from e
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        raise VerificationError(
            "signature manifest has no layers", category=Category.MALFORMED_TRUST_DATA
        )
    if len(layers) > MAX_SIGNATURE_LAYERS:
        raise VerificationError(
            f"signature manifest has more than {MAX_SIGNATURE_LAYERS} layers",
            category=Category.MALFORMED_TRUST_DATA,
        )
    found = []
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") != media_type:
            continue
        annotations = layer.get("annotations") or {}
        digest = layer.get("digest")
        if not isinstance(digest, str) or not isinstance(annotations, dict):
            raise VerificationError(
                "malformed signature layer", category=Category.MALFORMED_TRUST_DATA
            )
        size = layer.get("size")
        found.append(
            LayerDescriptor(
                digest=digest,
                annotations={k: v for k, v in annotations.items() if isinstance(v, str)},
                size=size if type(size) is int else None,
            )
        )
    if not found:
        raise VerificationError("no signatures found", category=Category.NO_TRUST_DATA)
    return found


class _KeyMaterial(TypedDict):
    certificate: str | None
    chain: str | None
    bundle: str | None


def _key_material(annotations: Mapping[str, str]) -> _KeyMaterial:
    """What a signature or an attestation layer's annotations carry besides the signature:
    the certificate, its chain and the Rekor bundle (an empty annotation is none)."""
    return _KeyMaterial(
        certificate=annotations.get(CERTIFICATE_ANNOTATION) or None,
        chain=annotations.get(CHAIN_ANNOTATION) or None,
        bundle=annotations.get(BUNDLE_ANNOTATION) or None,
    )


def to_signature_layer(descriptor: LayerDescriptor, payload: bytes) -> SignatureLayer:
    """Combine a layer descriptor with its fetched payload blob."""
    a = descriptor.annotations
    return SignatureLayer(
        payload=payload, signature=a.get(SIGNATURE_ANNOTATION, ""), **_key_material(a)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationLayer:
    """One classic cosign attestation: the DSSE envelope as stored, and the layer's
    annotations (certificate, chain, Rekor bundle; the signature is inside the envelope)."""

    envelope: bytes = field(repr=False)
    predicate_type: str = ""
    certificate: str | None = field(default=None, repr=False)
    chain: str | None = field(default=None, repr=False)
    bundle: str | None = field(default=None, repr=False)


def to_attestation_layer(descriptor: LayerDescriptor, envelope: bytes) -> AttestationLayer:
    """Combine a DSSE layer descriptor of an ``.att`` manifest with its fetched envelope."""
    a = descriptor.annotations
    return AttestationLayer(
        envelope=envelope,
        predicate_type=a.get(PREDICATE_TYPE_ANNOTATION, ""),
        **_key_material(a),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleSigningPayload:
    """The claims of a cosign signature (``critical`` section of the payload)."""

    digest: str
    docker_reference: str

    @classmethod
    def parse(cls, raw: bytes) -> SimpleSigningPayload:
        """Parse the simple-signing JSON.

        Raises:
            VerificationError: ``malformed_trust_data`` for anything that is not a cosign payload.
        """
        try:
            if len(raw) > MAX_PAYLOAD_BYTES:
                raise ValueError("payload too large")
            doc = jsondoc.loads(raw)
            critical = doc["critical"]
            digest = critical["image"]["docker-manifest-digest"]
            reference = critical["identity"]["docker-reference"]
            kind = critical["type"]
        except (ValueError, KeyError, TypeError) as e:
            raise VerificationError(
                "signature payload is not a cosign simple-signing document",
                category=Category.MALFORMED_TRUST_DATA,
            ) from e
        if not (isinstance(digest, str) and isinstance(reference, str)) or (
            kind != "cosign container image signature"
        ):
            raise VerificationError(
                "signature payload is not a cosign container image signature",
                category=Category.MALFORMED_TRUST_DATA,
            )
        return cls(digest=digest, docker_reference=reference)
