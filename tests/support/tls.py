"""Throw-away PKI for tests: one certificate builder, and a CA with server certificates for
127.0.0.1 / localhost."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a CA and a server certificate signed by it."""

    ca_pem: str
    cert_file: Path
    key_file: Path
    ca_file: Path


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(
    cn: str,
    key: PrivateKey,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: tuple[x509.Certificate, PrivateKey] | None = None,
    serial: int | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """A certificate for ``key`` named ``cn``: self-signed, or issued by ``ca`` (cert, key).

    ``extensions`` are (extension, critical) pairs; ``serial`` defaults to a random one.
    """
    issuer, signing_key = (ca[0].subject, ca[1]) if ca else (name(cn), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    # Ed25519 signs without a separate hash.
    digest = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, digest)


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_tls(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """Create ``ca.pem``, ``server.pem`` and ``server-key.pem`` in ``directory``."""
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_extension = (x509.BasicConstraints(ca=True, path_length=None), True)
    ca = certificate("test-ca", ca_key, not_before=start, not_after=end, extensions=[ca_extension])
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    san_extension = (x509.SubjectAlternativeName(sans), False)
    cert = certificate(
        hosts[0], key, not_before=start, not_after=end, ca=(ca, ca_key), extensions=[san_extension]
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_pem = certificate_pem(ca).decode()
    (directory / "ca.pem").write_text(ca_pem)
    (directory / "server.pem").write_bytes(certificate_pem(cert))
    (directory / "server-key.pem").write_bytes(private_key_pem(key))
    return TlsFiles(
        ca_pem, directory / "server.pem", directory / "server-key.pem", directory / "ca.pem"
    )


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS server context for a test server presenting ``cert_file``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def self_signed(cn: str) -> tuple[str, str]:
    """A throw-away self-signed certificate and key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    san = (x509.SubjectAlternativeName([x509.DNSName(cn)]), False)
    cert = certificate(
        cn, key, not_before=now, not_after=now + 30 * dt.timedelta(days=1), extensions=[san]
    )
    return certificate_pem(cert).decode(), private_key_pem(key).decode()
