"""What cosign stores as OCI 1.1 referrers of an image, told apart from the rest.

cosign v3 (and v2 with ``--new-bundle-format``) stores a Sigstore bundle per signature or
attestation: a manifest whose artifact type is a bundle media type, with the bundle as its one
layer and the statement's predicate type in an annotation. cosign v2 with
``--registry-referrers-mode=oci-1-1`` stores the classic signature manifest as a referrer
(artifact type ``application/vnd.dev.cosign.artifact.sig.v1+json``). Where a registry has no
referrers API, cosign v2 writes the empty config type into the ``sha256-<hex>`` index
instead of the artifact type, so such entries are read before they are classified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connaisseur.domain import jsondoc
from connaisseur.domain.cosign_layout import SIGNATURE_ARTIFACT_TYPE, LayerDescriptor
from connaisseur.domain.dsse import COSIGN_SIGN_PREDICATE
from connaisseur.domain.errors import malformed_trust_data
from connaisseur.domain.oci import Descriptor
from connaisseur.domain.sigstore_bundle import BUNDLE_MEDIA_TYPES

EMPTY_ARTIFACT_TYPE = "application/vnd.oci.empty.v1+json"
BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"


def maybe_cosign(descriptor: Descriptor) -> bool:
    """A referrer that may be cosign's: a bundle, a classic signature manifest, or one whose
    index entry names no telling type (only its manifest says what it is)."""
    kind = descriptor.artifact_type
    return kind in BUNDLE_MEDIA_TYPES or kind in (
        SIGNATURE_ARTIFACT_TYPE,
        EMPTY_ARTIFACT_TYPE,
        None,
        "",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferrerManifest:
    """A referrer's manifest as far as cosign's verification reads it."""

    artifact_type: str
    #: the predicate type a bundle's annotation declares (unsigned: a hint for what to fetch)
    predicate_type: str | None = None
    bundle_layer: LayerDescriptor | None = None
    body: bytes = field(default=b"", repr=False)

    @classmethod
    def read(cls, body: bytes, listed: Descriptor) -> ReferrerManifest:
        """Read a referrer manifest (its served bytes, verified against the listed digest).

        The artifact type is the manifest's ``artifactType``, else its config media type
        (the OCI image-spec rule), else what the listing said.

        Raises:
            VerificationError: ``malformed_trust_data``: not a JSON object.
        """
        try:
            manifest = jsondoc.loads(body)
        except ValueError as e:
            raise malformed_trust_data("a referrer manifest is not JSON") from e
        if not isinstance(manifest, dict):
            raise malformed_trust_data("a referrer manifest is not a JSON object")
        annotations = _mapping(manifest.get("annotations"))
        predicate = annotations.get(BUNDLE_PREDICATE_ANNOTATION)
        return cls(
            artifact_type=_artifact_type(manifest, listed),
            predicate_type=predicate if isinstance(predicate, str) and predicate else None,
            bundle_layer=_bundle_layer(manifest),
            body=body,
        )

    @property
    def classic(self) -> bool:
        return self.artifact_type == SIGNATURE_ARTIFACT_TYPE

    @property
    def bundle(self) -> bool:
        return self.artifact_type in BUNDLE_MEDIA_TYPES

    @property
    def attestation(self) -> bool:
        """The bundle says it holds an attestation (a predicate other than cosign's
        signature); an unannotated bundle is read as a signature until it is parsed."""
        return self.predicate_type not in (None, COSIGN_SIGN_PREDICATE)


def _artifact_type(manifest: Mapping[str, Any], listed: Descriptor) -> str:
    declared = manifest.get("artifactType")
    if isinstance(declared, str) and declared:
        return declared
    media = _mapping(manifest.get("config")).get("mediaType")
    if isinstance(media, str) and media and media != EMPTY_ARTIFACT_TYPE:
        return media
    return listed.artifact_type or ""


def _bundle_layer(manifest: Mapping[str, Any]) -> LayerDescriptor | None:
    layers = manifest.get("layers")
    for raw in layers if isinstance(layers, list) else ():
        layer = Descriptor.read(raw) if isinstance(raw, Mapping) else None
        if layer is not None and layer.media_type in BUNDLE_MEDIA_TYPES and layer.digest:
            return LayerDescriptor(digest=layer.digest, annotations={}, size=layer.size)
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
