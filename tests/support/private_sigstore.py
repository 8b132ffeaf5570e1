"""A private Sigstore for tests: a Fulcio CA, a Rekor log key and a CT log key, published as a
``trusted_root.json`` (the format sigstore-python and sigstore-go read), and keyless cosign
signatures made under it with their Rekor bundle — what an air-gapped Sigstore deployment
serves (docs/decisions/0052-private-sigstore-trusted-root.md)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.domain.cosign_layout import BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION
from tests.support.cosign import FakeRekor, payload
from tests.support.fulcio import FakeFulcio

MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
REKOR_URL = "https://rekor.sigstore.internal"
ISSUER = "https://dex.internal"
Signed = tuple[bytes, bytes, dict[str, str]]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(start: datetime, end: datetime | None) -> dict[str, str]:
    window = {"start": _stamp(start)}
    if end is not None:
        window["end"] = _stamp(end)
    return window


def _log(url: str, key: ec.EllipticCurvePrivateKey, start: datetime, end: datetime | None) -> Any:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": base64.b64encode(der).decode(),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": _window(start, end),
        },
        "logId": {"keyId": base64.b64encode(hashlib.sha256(der).digest()).decode()},
    }


class PrivateSigstore:
    """Issues keyless signatures valid at ``now`` and describes itself as a trusted root."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.fulcio = FakeFulcio(now)
        self.rekor = FakeRekor()
        self.ct_key = ec.generate_private_key(ec.SECP256R1())

    def trusted_root(
        self,
        *,
        fulcio_end: datetime | None = None,
        rekor_end: datetime | None = None,
        rekor_url: str = REKOR_URL,
    ) -> dict[str, Any]:
        """The document; ``*_end`` closes a window (the authority retired then)."""
        since = self.now - timedelta(days=30)
        ca_der = self.fulcio.ca.public_bytes(serialization.Encoding.DER)
        return {
            "mediaType": MEDIA_TYPE,
            "tlogs": [_log(rekor_url, self.rekor.key, since, rekor_end)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "internal", "commonName": "fulcio"},
                    "uri": "https://fulcio.internal",
                    "certChain": {
                        "certificates": [{"rawBytes": base64.b64encode(ca_der).decode()}]
                    },
                    "validFor": _window(since, fulcio_end),
                }
            ],
            "ctlogs": [_log("https://ct.internal", self.ct_key, since, None)],
            "timestampAuthorities": [],
        }

    def sign(self, digest: str, reference: str, email: str) -> Signed:
        """A keyless signature of ``digest`` as ``reference`` by ``email``: payload, signature,
        and the certificate and Rekor bundle annotations, logged at ``now``."""
        issued = self.fulcio.issue(ISSUER, email)
        body = payload(digest, reference)
        signature = issued.key.sign(body, ec.ECDSA(hashes.SHA256()))
        entry = self.rekor.entry(body, signature, issued.cert_pem, int(self.now.timestamp()))
        annotations = {
            CERTIFICATE_ANNOTATION: issued.cert_pem,
            BUNDLE_ANNOTATION: FakeRekor.bundle(entry),
        }
        return body, signature, annotations
