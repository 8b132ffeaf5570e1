"""Timestamp authorities for tests: CA chains with chosen flaws, tokens from ``openssl``.

Tokens are made by independent code: ``openssl ts -reply`` for well-formed TSAs, and
``openssl cms -sign`` over a TSTInfo that ``openssl ts`` produced for signers that ``openssl ts``
itself refuses (a leaf without the timeStamping EKU). ``as_response`` wraps a token in a granted
TimeStampResp with its certificate SET in DER order, the only form ``rfc3161-client`` parses.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from connaisseur.domain.rfc3161 import parse_der
from tests.support.notation_signing import DAY, REAL_NOW, Signer, new_key, openssl_stamper
from tests.support.tls import certificate, private_key_pem

_OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_SIGNING_ONLY = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
_CERT_SIGNING = x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def authority(
    parent: Signer | None,
    cn: str,
    *,
    is_ca: bool | None = True,
    key_cert_sign: bool = True,
    path_length: int | None = None,
    start: dt.datetime = REAL_NOW - 30 * DAY,
    end: dt.datetime = REAL_NOW + 300 * DAY,
) -> Signer:
    """A certificate authority (self-signed when ``parent`` is None); ``is_ca=None`` leaves
    basicConstraints out, ``key_cert_sign=False`` leaves keyCertSign out of keyUsage."""
    key = new_key()
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (_CERT_SIGNING if key_cert_sign else _SIGNING_ONLY, True)
    ]
    if is_ca is not None:
        constraints = x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None)
        extensions.append((constraints, True))
    issuer = (parent.cert, parent.key) if parent else None
    cert = certificate(cn, key, not_before=start, not_after=end, ca=issuer, extensions=extensions)
    return Signer(key, [cert, *(parent.chain if parent else [])])


def stamping_leaf(
    parent: Signer,
    cn: str = "tsa",
    *,
    ekus: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.TIME_STAMPING,),
    eku_critical: bool = True,
    start: dt.datetime = REAL_NOW - DAY,
    end: dt.datetime = REAL_NOW + 300 * DAY,
) -> Signer:
    """A TSA signing certificate issued by ``parent``; ``ekus=()`` leaves the EKU out."""
    key = new_key()
    extensions: list[tuple[x509.ExtensionType, bool]] = [(_SIGNING_ONLY, True)]
    if ekus:
        extensions.append((x509.ExtendedKeyUsage(list(ekus)), eku_critical))
    cert = certificate(
        cn,
        key,
        not_before=start,
        not_after=end,
        ca=(parent.cert, parent.key),
        extensions=extensions,
    )
    return Signer(key, [cert, *parent.chain])


def token_by_openssl_ts(tsa: Signer, data: bytes) -> bytes:
    """A TimeStampToken over ``data`` from ``openssl ts -reply`` (chain included)."""
    return openssl_stamper(tsa)(data)


def token_by_openssl_cms(signer: Signer, data: bytes, helper: Signer) -> bytes:
    """A TimeStampToken over ``data`` signed by ``signer`` whatever its EKU: ``helper`` (a
    valid TSA) makes the TSTInfo with ``openssl ts``, ``openssl cms`` signs it as ``signer``."""
    tst_info = _tst_info(token_by_openssl_ts(helper, data))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "tst.der").write_bytes(tst_info)
        (d / "signer.pem").write_bytes(signer.cert.public_bytes(serialization.Encoding.PEM))
        (d / "signer.key").write_bytes(private_key_pem(signer.key))
        (d / "chain.pem").write_text("".join(signer.pem(i) for i in range(1, len(signer.chain))))
        command = ["openssl", "cms", "-sign", "-binary", "-nodetach", "-nosmimecap"]
        command += ["-in", str(d / "tst.der"), "-econtent_type", _OID_TST_INFO, "-md", "sha256"]
        command += ["-signer", str(d / "signer.pem"), "-inkey", str(d / "signer.key")]
        if len(signer.chain) > 1:
            command += ["-certfile", str(d / "chain.pem")]
        command += ["-outform", "DER", "-out", str(d / "token.der")]
        subprocess.run(command, check=True, capture_output=True)
        return (d / "token.der").read_bytes()


def _tst_info(token: bytes) -> bytes:
    signed_data = parse_der(token).children()[1].children()[0]
    return signed_data.children()[2].children()[1].children()[0].content


def as_response(token: bytes) -> bytes:
    """``token`` in a granted TimeStampResp, its certificate SET sorted (DER SET OF order)."""
    content_type, wrapped = parse_der(token).children()
    parts = wrapped.children()[0].children()
    rebuilt = [
        _tlv(0xA0, b"".join(sorted(c.raw for c in part.children())))
        if index > 2 and part.tag == 0xA0
        else part.raw
        for index, part in enumerate(parts)
    ]
    signed_data = _tlv(0x30, b"".join(rebuilt))
    sorted_token = _tlv(0x30, content_type.raw + _tlv(0xA0, signed_data))
    granted = _tlv(0x30, _tlv(0x02, b"\x00"))
    return _tlv(0x30, granted + sorted_token)


def token_of(response: bytes) -> bytes:
    """The TimeStampToken inside a TimeStampResp."""
    return parse_der(response).children()[1].raw


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + content
