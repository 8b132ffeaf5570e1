"""Seed corpora: the real artefacts of ``tests/conformance/data`` (and ``seeds/``) per target.

Each function returns the seeds of one target as bytes, in a stable order, so that a seeded run
is reproducible. Targets that take more than one value read them from one input (see
``targets.py`` for each layout).
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "conformance" / "data"
CASES = ROOT / "tests" / "conformance" / "cases.yaml"
SEEDS = Path(__file__).resolve().parent / "seeds"
COSIGN_IMAGE = DATA / "cosign" / "securesystemsengineering" / "testimage"
NOTATION_IMAGE = DATA / "notation" / "sse-secure-systems" / "testimage"
#: A GUN whose trust data (root → timestamp → snapshot → targets → three delegations) never
#: expires: the TUF target replaces one of its files at a time.
NOTARY_GUN = (
    DATA / "notaryv1/served/v2/docker.io/library/never-expire-with-delegations-image/_trust/tuf"
)
NOTARY_ROLES = (
    "root",
    "timestamp",
    "snapshot",
    "targets",
    "targets/releases",
    "targets/del1",
    "targets/del2",
)


def _files(folder: Path, pattern: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob(pattern)) if p.is_file()]


@functools.cache
def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load(CASES.read_text())["cases"]
    return cases


def _case_inputs(area: str, *keys: str) -> list[str]:
    found: list[str] = []
    for case in _cases():
        if case["area"] != area:
            continue
        found += [v for k in keys if isinstance(v := case["inputs"].get(k), str)]
    return list(dict.fromkeys(found))


def admission_reviews() -> list[bytes]:
    return _files(DATA / "admission_requests", "*.json")


def _images_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [i for k, v in value.items() for i in ([v] if k == "image" else _images_in(v))]
    if isinstance(value, list):
        return [i for v in value for i in _images_in(v)]
    return []


def image_references() -> list[bytes]:
    refs = _case_inputs("image_ref", "ref", "image")
    for raw in admission_reviews():
        try:
            refs += _images_in(json.loads(raw))
        except ValueError:
            continue
    return [r.encode() for r in dict.fromkeys(r for r in refs if isinstance(r, str))]


def policy_patterns() -> list[bytes]:
    """``pattern`` NUL ``image name`` pairs from the policy cases."""
    pairs = []
    for case in _cases():
        inputs = case["inputs"]
        if case["area"] == "policy_match" and isinstance(inputs.get("pattern"), str):
            pairs.append(f"{inputs['pattern']}\0{inputs.get('image', '')}")
    return [p.encode() for p in dict.fromkeys(pairs)]


def configurations() -> list[bytes]:
    seeds = [(ROOT / "config" / "default.yaml").read_bytes()]
    for folder in ("config", "validators", "cosign", "notaryv1", "notation", "alerts/alerting"):
        seeds += _files(DATA / folder, "*.yaml")
    seeds += _files(ROOT / "tests" / "helm", "*.yaml")
    return seeds


def notary_files() -> dict[str, bytes]:
    return {role: (NOTARY_GUN / f"{role}.json").read_bytes() for role in NOTARY_ROLES}


def notary_roles() -> list[bytes]:
    """One role byte (index into ``NOTARY_ROLES``) followed by that role's served bytes."""
    return [bytes([i]) + raw for i, raw in enumerate(notary_files().values())]


def cosign_payloads() -> list[bytes]:
    return _files(COSIGN_IMAGE / "blobs", "*.json")


def cosign_signature_manifests() -> list[bytes]:
    return _files(COSIGN_IMAGE / "manifests", "sha256-*.sig.json")


def rekor_bundles() -> list[bytes]:
    bundles = []
    for raw in cosign_signature_manifests():
        for layer in json.loads(raw).get("layers", []):
            bundle = layer.get("annotations", {}).get("dev.sigstore.cosign/bundle")
            if bundle:
                bundles.append(bundle.encode())
    return bundles


def notation_envelopes() -> list[bytes]:
    """A media-type byte (0 JWS, 1 COSE) followed by the envelope."""
    jws = [*_files(NOTATION_IMAGE / "blobs", "*.json"), (SEEDS / "notation.jws.json").read_bytes()]
    return [b"\0" + e for e in jws] + [b"\1" + (SEEDS / "notation.cose").read_bytes()]


def keyless_certificates() -> list[bytes]:
    """Format byte (even: DER, odd: the PEM text of the annotation) + certificate: the seed
    leaves for the attacker's key and other key types, and the real Sigstore leaf."""
    ders = [*_files(SEEDS, "keyless-*.der"), _real_keyless_certificate_der()]
    pem = (SEEDS / "keyless-leaf.der").read_bytes()
    return [b"\0" + der for der in ders] + [b"\1" + pem_certificate(pem)]


def _real_keyless_certificate_der() -> bytes:
    folder = COSIGN_IMAGE / "manifests"
    for path in sorted(folder.glob("*.sig.json")):
        for layer in json.loads(path.read_text()).get("layers", []):
            pem = layer.get("annotations", {}).get("dev.sigstore.cosign/certificate")
            if pem:
                return base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
    raise LookupError("no keyless signature in the conformance data")


def pem_certificate(der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(
        ["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----", ""]
    ).encode()


def timestamp_tokens() -> list[bytes]:
    return [(SEEDS / "rfc3161.token.der").read_bytes()]


def sigstore_bundles() -> list[bytes]:
    """Bundles as cosign v3 writes them (a real one, key-signed, no log) and as the tests make
    them (a DSSE bundle with an inclusion proof, checkpoint and promise; a message signature)."""
    return [
        (SEEDS / name).read_bytes()
        for name in (
            "sigstore-bundle-v03-dsse.json",
            "sigstore-bundle-logged.json",
            "sigstore-bundle-message.json",
        )
    ]


def referrer_manifests() -> list[bytes]:
    """cosign's referrer manifests: a bundle (v3) and a classic signature (v2 referrers mode)."""
    return [
        (SEEDS / "referrer-bundle.json").read_bytes(),
        (SEEDS / "referrer-classic.json").read_bytes(),
    ]


def registry_manifests() -> list[bytes]:
    return (
        _files(COSIGN_IMAGE / "manifests", "*.json")
        + _files(NOTATION_IMAGE / "manifests", "*.json")
        + [(SEEDS / "notation.jws.json").read_bytes()]
    )


def auth_challenges() -> list[bytes]:
    """A ``WWW-Authenticate`` value, a newline, then the token service's answer."""
    token = b'{"token":"t0k3n","access_token":"t0k3n","expires_in":300}'
    headers = [
        b'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        b'scope="repository:library/nginx:pull"',
        b'Bearer realm="https://127.0.0.1:5000/token",service="registry"',
        b'Basic realm="Registry Realm"',
        b'Basic realm="x", Bearer realm="https://notary.example/auth",service="notary-server"',
    ]
    return [h + b"\n" + token for h in headers]
