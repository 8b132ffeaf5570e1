"""Test-side Notary Project signing: per-session PKI, JWS/COSE envelopes, RFC 3161 tokens.

Timestamp tokens come from ``openssl ts -reply`` (an independent implementation), so the
verifier is not only checked against our own encoder. OpenSSL stamps with the real clock;
tests therefore place certificate validity around ``REAL_NOW`` and move the verifier's ``now``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.tls import certificate

REAL_NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def new_key(kind: str = "ec") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Signer:
    key: PrivateKey
    chain: list[x509.Certificate]

    @property
    def cert(self) -> x509.Certificate:
        return self.chain[0]

    def pem(self, index: int = -1) -> str:
        return self.chain[index].public_bytes(serialization.Encoding.PEM).decode()


def make_ca(cn: str, *, start: dt.datetime = REAL_NOW - 30 * DAY, days: int = 3650) -> Signer:
    key = new_key()
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    constraints = x509.BasicConstraints(ca=True, path_length=None)
    cert = certificate(
        cn,
        key,
        not_before=start,
        not_after=start + days * DAY,
        extensions=[(constraints, True), (usage, True)],
    )
    return Signer(key, [cert])


def issue(
    ca: Signer,
    cn: str,
    *,
    start: dt.datetime = REAL_NOW - DAY,
    end: dt.datetime = REAL_NOW + 30 * DAY,
    kind: str = "ec",
    eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CODE_SIGNING,
) -> Signer:
    key = new_key(kind)
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    cert = certificate(
        cn,
        key,
        not_before=start,
        not_after=end,
        ca=(ca.cert, ca.key),
        extensions=[(usage, True), (x509.ExtendedKeyUsage([eku]), True)],
    )
    return Signer(key, [cert, *ca.chain])


def target(
    digest: str, size: int, media_type: str = "application/vnd.oci.image.manifest.v1+json"
) -> dict[str, Any]:
    return {"targetArtifact": {"mediaType": media_type, "digest": digest, "size": size}}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _alg(key: PrivateKey) -> str:
    return "PS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


def raw_sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return key.sign(data, pss, hashes.SHA256())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


Stamper = Callable[[bytes], bytes]


def sign_jws(
    signer: Signer,
    payload: dict[str, Any],
    *,
    signing_time: dt.datetime = REAL_NOW,
    scheme: str = "notary.x509",
    expiry: dt.datetime | None = None,
    extra: dict[str, Any] | None = None,
    stamp: Stamper | None = None,
) -> bytes:
    time_key = "io.cncf.notary.signingTime"
    if scheme != "notary.x509":
        time_key = "io.cncf.notary.authenticSigningTime"
    crit = ["io.cncf.notary.signingScheme"]
    if scheme != "notary.x509":
        crit.append(time_key)
    headers: dict[str, Any] = {
        "alg": _alg(signer.key),
        "cty": PAYLOAD_TYPE,
        "io.cncf.notary.signingScheme": scheme,
        time_key: signing_time.isoformat().replace("+00:00", "Z"),
        "crit": crit,
    }
    if expiry is not None:
        headers["io.cncf.notary.expiry"] = expiry.isoformat().replace("+00:00", "Z")
        crit.append("io.cncf.notary.expiry")
    headers.update(extra or {})
    protected = _b64url(json.dumps(headers).encode())
    body = _b64url(json.dumps(payload).encode())
    signature = raw_sign(signer.key, f"{protected}.{body}".encode())
    unprotected: dict[str, Any] = {
        "x5c": [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
            for c in signer.chain
        ],
        "io.cncf.notary.signingAgent": "tests/1.0",
    }
    if stamp is not None:
        unprotected["io.cncf.notary.timestampSignature"] = base64.b64encode(
            stamp(signature)
        ).decode()
    envelope = {
        "payload": body,
        "protected": protected,
        "header": unprotected,
        "signature": _b64url(signature),
    }
    return json.dumps(envelope).encode()


def sign_cose(
    signer: Signer,
    payload: dict[str, Any],
    *,
    signing_time: dt.datetime = REAL_NOW,
    stamp: Stamper | None = None,
) -> bytes:
    headers = {
        1: -37 if isinstance(signer.key, rsa.RSAPrivateKey) else -7,
        2: ["io.cncf.notary.signingScheme"],
        3: PAYLOAD_TYPE,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": cbor2.CBORTag(1, int(signing_time.timestamp())),
    }
    protected = cbor2.dumps(headers)
    body = json.dumps(payload).encode()
    signature = raw_sign(signer.key, cbor2.dumps(["Signature1", protected, b"", body]))
    unprotected: dict[Any, Any] = {
        33: [c.public_bytes(serialization.Encoding.DER) for c in signer.chain]
    }
    if stamp is not None:
        unprotected["io.cncf.notary.timestampSignature"] = stamp(signature)
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, body, signature]))


_TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
serial = {serial}
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def openssl_stamper(tsa: Signer) -> Stamper:
    """A stamper that asks ``openssl ts -reply`` (TSA ``tsa``, chain included) for a token."""

    def stamp(data: bytes) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "serial").write_text("01\n")
            (d / "ts.cnf").write_text(_TSA_CONFIG.format(serial=d / "serial"))
            (d / "data").write_bytes(data)
            (d / "tsa.pem").write_bytes(tsa.cert.public_bytes(serialization.Encoding.PEM))
            (d / "chain.pem").write_text("".join(tsa.pem(i) for i in range(1, len(tsa.chain))))
            key = tsa.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            (d / "tsa.key").write_bytes(key)
            run = ["openssl", "ts"]
            subprocess.run(
                [*run, "-query", "-data", d / "data", "-sha256", "-cert", "-out", d / "q.tsq"],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    *run,
                    "-reply",
                    "-config",
                    d / "ts.cnf",
                    "-queryfile",
                    d / "q.tsq",
                    "-signer",
                    d / "tsa.pem",
                    "-inkey",
                    d / "tsa.key",
                    "-chain",
                    d / "chain.pem",
                    "-token_out",
                    "-out",
                    d / "token.der",
                ],
                check=True,
                capture_output=True,
            )
            return (d / "token.der").read_bytes()

    return stamp
