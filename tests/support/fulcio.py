"""A test Fulcio: a CA that issues short-lived code-signing certificates for an OIDC identity,
shaped like Sigstore's (issuer extension, e-mail SAN, code-signing EKU)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connaisseur.domain.sigstore import FulcioAuthority, TransparencyMaterial

_OIDC_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


@dataclass
class Issued:
    """A leaf certificate (PEM) and the ephemeral key it certifies."""

    key: ec.EllipticCurvePrivateKey
    cert_pem: str


class FakeFulcio:
    """Issues certificates valid around ``now``; ``material`` trusts this CA only."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-fulcio")])
        public = self._key.public_key()
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.material = TransparencyMaterial(fulcio=(FulcioAuthority(roots=(self.ca,)),))

    def issue(self, issuer: str, email: str) -> Issued:
        """A fresh key certified for ``email`` as authenticated by the OIDC ``issuer``."""
        key = ec.generate_private_key(ec.SECP256R1())
        ca_public = self._key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(minutes=1))
            .not_valid_after(self.now + timedelta(minutes=9))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(_leaf_usage(), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
            )
            .add_extension(x509.UnrecognizedExtension(_OIDC_ISSUER_V1, issuer.encode()), False)
            .sign(self._key, hashes.SHA256())
        )
        return Issued(key, cert.public_bytes(serialization.Encoding.PEM).decode())


def _ca_usage() -> x509.KeyUsage:
    return _key_usage(ca=True)


def _leaf_usage() -> x509.KeyUsage:
    return _key_usage(ca=False)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates (and CRLs); a leaf signs only data."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
