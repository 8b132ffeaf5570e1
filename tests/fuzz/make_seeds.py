"""Write the generated seeds of ``tests/fuzz/seeds/`` (run once; the output is committed).

The conformance data has no COSE envelope and no RFC 3161 token, so this makes them the way a
signer does: a Notation JWS and COSE envelope, each countersigned by an ``openssl ts`` TSA (an
independent implementation), the token alone, and the CA and TSA roots they verify against.

``keyless`` makes what an attacker brings to a keyless cosign signature: certificates for
their own key (a Fulcio-shaped one from a seed Fulcio CA, one carrying the real Sigstore
certificate's SCT extension, and ones with RSA, Ed25519, P-384 and DSA keys) and a signature
by that key over a simple-signing payload.

    .venv/bin/python -m tests.fuzz.make_seeds [notation|keyless]
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.cosign import payload
from tests.support.notation_signing import (
    issue,
    make_ca,
    openssl_stamper,
    sign_cose,
    sign_jws,
    target,
)

SEEDS = Path(__file__).resolve().parent / "seeds"
#: The digest and size every generated envelope signs (the image manifest served by targets).
IMAGE_MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'


#: What the keyless seeds claim: the image, its digest, the OIDC identity, and "now" inside the
#: leaves' validity (the fuzz targets' NOW).
KEYLESS_IMAGE = "registry.test/app"
KEYLESS_DIGEST = "sha256:" + hashlib.sha256(IMAGE_MANIFEST).hexdigest()
KEYLESS_ISSUER = "https://issuer.fuzz.test"
KEYLESS_SUBJECT = "signer@fuzz.test"
KEYLESS_NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
_OIDC_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_REAL_KEYLESS_SIG = (
    Path(__file__).resolve().parents[1]
    / "conformance/data/cosign/securesystemsengineering/testimage/manifests"
    / "sha256-31dc72a13a0c34b40eb95419d2b2fd67320c856baf3b72da518023ee8d370aee.sig.json"
)


def real_keyless_certificate() -> x509.Certificate:
    """The Fulcio certificate of a real keyless signature in the conformance data."""
    layer = json.loads(_REAL_KEYLESS_SIG.read_text())["layers"][0]
    pem = layer["annotations"]["dev.sigstore.cosign/certificate"]
    return x509.load_pem_x509_certificate(pem.encode())


def keyless() -> None:
    ca_key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz seed Fulcio")])
    ca = (
        _builder(name, name, ca_key.public_key(), days=36500)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA384())
    )
    signer = ec.generate_private_key(ec.SECP256R1())
    real_sct = real_keyless_certificate().extensions.get_extension_for_oid(_SCT_LIST)
    sct = x509.UnrecognizedExtension(_SCT_LIST, real_sct.value.public_bytes())
    others: dict[
        str,
        dsa.DSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | rsa.RSAPrivateKey,
    ] = {
        "rsa": rsa.generate_private_key(65537, 2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "dsa": dsa.generate_private_key(2048),
    }
    leaves = {
        "leaf": _leaf(ca, ca_key, signer.public_key()),
        "leaf-sct": _leaf(ca, ca_key, signer.public_key(), sct),
        **{kind: _leaf(ca, ca_key, key.public_key()) for kind, key in others.items()},
    }
    (SEEDS / "keyless-fulcio.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for kind, cert in leaves.items():
        (SEEDS / f"keyless-{kind}.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    body = payload(KEYLESS_DIGEST, KEYLESS_IMAGE)
    signature = signer.sign(body, ec.ECDSA(hashes.SHA256()))
    signed = {"payload": body.decode(), "signature": base64.b64encode(signature).decode()}
    (SEEDS / "keyless-signature.json").write_text(json.dumps(signed, indent=1) + "\n")


def _builder(
    subject: x509.Name, issuer: x509.Name, public: object, *, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(KEYLESS_NOW - dt.timedelta(days=1))
        .not_valid_after(KEYLESS_NOW + dt.timedelta(days=days))
    )


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    public: object,
    *extra: x509.UnrecognizedExtension,
) -> x509.Certificate:
    builder = (
        _builder(x509.Name([]), ca.subject, public, days=36000)
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(KEYLESS_SUBJECT)]), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
        .add_extension(_usage(sign=True), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.UnrecognizedExtension(_OIDC_ISSUER_V1, KEYLESS_ISSUER.encode()), False)
    )
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(ca_key, hashes.SHA384())


def _usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not sign,
        crl_sign=not sign,
        encipher_only=False,
        decipher_only=False,
    )


def main(argv: list[str]) -> None:
    SEEDS.mkdir(exist_ok=True)
    if "keyless" in argv or not argv:
        keyless()
    if "notation" in argv or not argv:
        notation()


def notation() -> None:
    ca, tsa_ca = make_ca("fuzz seed CA", days=36500), make_ca("fuzz seed TSA CA", days=36500)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(days=36000)
    signer = issue(ca, "fuzz seed signer", end=end)
    tsa = issue(tsa_ca, "fuzz seed TSA", end=end, eku=ExtendedKeyUsageOID.TIME_STAMPING)
    stamp = openssl_stamper(tsa)
    payload = target("sha256:" + hashlib.sha256(IMAGE_MANIFEST).hexdigest(), len(IMAGE_MANIFEST))
    (SEEDS / "notation.jws.json").write_bytes(sign_jws(signer, payload, stamp=stamp))
    (SEEDS / "notation.cose").write_bytes(sign_cose(signer, payload, stamp=stamp))
    (SEEDS / "rfc3161.token.der").write_bytes(stamp(b"fuzz seed signature"))
    (SEEDS / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    (SEEDS / "tsa-ca.pem").write_bytes(tsa_ca.cert.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main(sys.argv[1:])
