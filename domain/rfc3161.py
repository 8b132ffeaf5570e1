"""RFC 3161 timestamp tokens: a minimal DER reader and the countersignature check Notation needs.

A Notary Project signature may carry a TimeStampToken (a CMS ``SignedData`` over a ``TSTInfo``)
whose message imprint is the hash of the envelope's signature bytes. This module verifies such a
token against trusted TSA certificates and returns the authenticated time range.

Why hand-written DER and not a library (see the Notation section of the README): the
maintained choices either reject tokens real TSAs emit (``rfc3161-client`` and
``cryptography.hazmat.asn1`` parse strict DER and refuse the unsorted certificate ``SET`` that
``openssl ts -reply -chain`` produces; ``rfc3161-client`` also takes only whole responses and
needs a self-signed anchor) or lose the raw bytes a CMS signature is computed over (``pyasn1``),
and ``asn1crypto`` has had no release since 2022. The subset read here is small, every length is
bounded by its parent, and all cryptography is done by ``cryptography`` — including the TSA's
certificate path, which its RFC 5280 verifier builds and checks (never a hand-written walk).
Tests compare the verdicts with ``rfc3161-client`` on tokens made by ``openssl``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as ChainVerificationError

from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.trust import UNUSABLE, certificate_key

MAX_TOKEN_BYTES = 64 * 1024
MAX_CHAIN_LENGTH = 6

_SEQUENCE, _SET, _INTEGER, _OCTET_STRING, _OID, _GENERALIZED_TIME = (
    0x30,
    0x31,
    0x02,
    0x04,
    0x06,
    0x18,
)
_CONTEXT_0, _CONTEXT_0_PRIMITIVE, _CONTEXT_1_PRIMITIVE = 0xA0, 0x80, 0x81

_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
_OID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
_RSA_PKCS1 = {
    "1.2.840.113549.1.1.1",  # rsaEncryption: the hash is the SignerInfo's digestAlgorithm
    "1.2.840.113549.1.1.11",
    "1.2.840.113549.1.1.12",
    "1.2.840.113549.1.1.13",
}
_ECDSA = {"1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"}


class TimestampError(VerificationError):
    """A timestamp countersignature is malformed, does not verify, or is not trusted."""

    category = Category.SIGNATURE_INVALID


@dataclass(frozen=True, slots=True)
class Der:
    """One DER element: identifier octet, its content, and its full encoding."""

    tag: int
    content: bytes
    raw: bytes

    def children(self) -> list[Der]:
        """The elements inside a constructed element."""
        if not self.tag & 0x20:
            raise TimestampError("timestamp token: expected a constructed ASN.1 element")
        return _read_all(self.content)

    def expect(self, tag: int, what: str) -> Der:
        if self.tag != tag:
            raise TimestampError(f"timestamp token: {what} has an unexpected ASN.1 type")
        return self


def parse_der(data: bytes) -> Der:
    """Exactly one DER element filling ``data``.

    Raises:
        TimestampError: truncated, indefinite-length, multi-byte tags or trailing bytes.
    """
    elements = _read_all(data)
    if len(elements) != 1:
        raise TimestampError("timestamp token: expected exactly one ASN.1 element")
    return elements[0]


def _read_all(data: bytes) -> list[Der]:
    out, pos = [], 0
    while pos < len(data):
        element, pos = _read_one(data, pos)
        out.append(element)
    return out


def _read_one(data: bytes, pos: int) -> tuple[Der, int]:
    start = pos
    if pos + 2 > len(data):
        raise TimestampError("timestamp token: truncated ASN.1 element")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise TimestampError("timestamp token: high-number ASN.1 tags are not supported")
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise TimestampError("timestamp token: invalid ASN.1 length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise TimestampError("timestamp token: truncated ASN.1 element")
    return Der(tag, data[pos:end], data[start:end]), end


def _oid(element: Der) -> str:
    body = element.expect(_OID, "an object identifier").content
    if not body or body[-1] & 0x80:
        raise TimestampError("timestamp token: invalid object identifier")
    arcs, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _integer(element: Der) -> int:
    return int.from_bytes(element.expect(_INTEGER, "an integer").content, "big", signed=True)


def _hash_for(oid: str) -> hashes.HashAlgorithm:
    algorithm = _HASHES.get(oid)
    if algorithm is None:
        raise TimestampError(f"timestamp token: unsupported hash algorithm {oid}")
    return algorithm()


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    return hashlib.new(algorithm.name, data).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class TimestampInfo:
    """What a verified token proves: the signature existed within ``[earliest, latest]``."""

    gen_time: datetime
    accuracy: timedelta
    tsa_subject: str

    @property
    def earliest(self) -> datetime:
        return self.gen_time - self.accuracy

    @property
    def latest(self) -> datetime:
        return self.gen_time + self.accuracy


@dataclass(frozen=True, slots=True)
class _SignerInfo:
    sid: Der
    digest_algorithm: hashes.HashAlgorithm
    signed_attrs: Der
    signature_algorithm: str
    signature: bytes


def verify_timestamp_token(
    token: bytes, signature: bytes, trusted: Sequence[x509.Certificate]
) -> TimestampInfo:
    """Verify an RFC 3161 TimeStampToken countersigning ``signature``.

    Steps (Notary Project trust-store-trust-policy.md, "Validate Trusted Timestamp"):
    1. parse ContentInfo → SignedData with a TSTInfo (RFC 5652 §5, RFC 3161 §2.4.2);
    2. the message imprint is the hash of ``signature``;
    3. exactly one SignerInfo; its signed attributes hold the TSTInfo content type and digest,
       and any ESS signing-certificate attribute names the signer certificate;
    4. the SignerInfo signature verifies with the signer certificate;
    5. the signer certificate has the critical timeStamping EKU alone and a valid RFC 5280 path
       at ``genTime`` to one of ``trusted`` (CA constraints, keyCertSign, path lengths).

    Raises:
        TimestampError: any step fails (``signature_invalid``).
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise TimestampError("timestamp token is larger than 64 KiB")
    try:
        return _verify(token, signature, trusted)
    except (IndexError, ValueError) as e:  # a structure shorter than its ASN.1 type demands
        raise TimestampError("timestamp token: malformed ASN.1 structure") from e


def timestamp_token(response: bytes) -> bytes:
    """The TimeStampToken of a granted ``TimeStampResp`` (RFC 3161 §2.4.2), as a Sigstore
    bundle carries it: ``SEQUENCE { PKIStatusInfo, TimeStampToken }`` with status 0
    (granted) or 1 (granted with modifications).

    Raises:
        TimestampError: malformed, over ``MAX_TOKEN_BYTES``, not granted, or without a token.
    """
    if len(response) > MAX_TOKEN_BYTES:
        raise TimestampError("timestamp response is larger than 64 KiB")
    try:
        parts = parse_der(response).expect(_SEQUENCE, "TimeStampResp").children()
        status = parts[0].expect(_SEQUENCE, "PKIStatusInfo").children()
        granted = _integer(status[0]) in (0, 1)
    except IndexError as e:
        raise TimestampError("timestamp response: malformed ASN.1 structure") from e
    if not granted:
        raise TimestampError("timestamp response does not grant a timestamp")
    if len(parts) != 2:
        raise TimestampError("timestamp response without a timestamp token")
    return parts[1].expect(_SEQUENCE, "TimeStampToken").raw


def _verify(token: bytes, signature: bytes, trusted: Sequence[x509.Certificate]) -> TimestampInfo:
    signed_data = _signed_data(parse_der(token))
    parts = signed_data.children()
    encap, certs, signer = _split_signed_data(parts)
    tst_der = _encapsulated_tst_info(encap)
    info = _tst_info(parse_der(tst_der))
    # Step 2 — the token stamps exactly these signature bytes.
    if _digest(info.imprint_algorithm, signature) != info.imprint:
        raise TimestampError("timestamp token does not countersign this signature")
    # Step 3 and 4 — the TSA signed this TSTInfo.
    cert = _signer_certificate(signer.sid, certs, trusted)
    _check_signed_attributes(signer, tst_der, cert)
    _verify_signer_signature(signer, cert)
    # Step 5 — the TSA is trusted at the time it stamped.
    check_tsa_path(cert, certs, trusted, info.gen_time)
    return TimestampInfo(
        gen_time=info.gen_time, accuracy=info.accuracy, tsa_subject=cert.subject.rfc4514_string()
    )


def _signed_data(content_info: Der) -> Der:
    items = content_info.expect(_SEQUENCE, "ContentInfo").children()
    if len(items) != 2 or _oid(items[0]) != _OID_SIGNED_DATA:
        raise TimestampError("timestamp token is not a CMS SignedData")
    wrapped = items[1].expect(_CONTEXT_0, "ContentInfo content").children()
    if len(wrapped) != 1:
        raise TimestampError("timestamp token: malformed ContentInfo")
    return wrapped[0].expect(_SEQUENCE, "SignedData")


class _SignedParts(NamedTuple):
    """The parts of a SignedData a timestamp is checked with."""

    encapsulated: Der
    certificates: list[x509.Certificate]
    signer: _SignerInfo


def _split_signed_data(parts: list[Der]) -> _SignedParts:
    if len(parts) < 4:
        raise TimestampError("timestamp token: malformed SignedData")
    encap, signer_infos = parts[2].expect(_SEQUENCE, "EncapsulatedContentInfo"), parts[-1]
    certs: list[x509.Certificate] = []
    for optional in parts[3:-1]:
        if optional.tag == _CONTEXT_0:  # [0] IMPLICIT CertificateSet: order is not trusted
            certs.extend(
                _load_certificate(c.raw) for c in optional.children() if c.tag == _SEQUENCE
            )
    infos = signer_infos.expect(_SET, "SignerInfos").children()
    if len(infos) != 1:
        raise TimestampError("timestamp token must have exactly one SignerInfo")
    return _SignedParts(encap, certs, _signer_info(infos[0]))


def _load_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except UNUSABLE as e:
        raise TimestampError("timestamp token holds an unparsable certificate") from e


def _encapsulated_tst_info(encap: Der) -> bytes:
    items = encap.children()
    if len(items) != 2 or _oid(items[0]) != _OID_TST_INFO:
        raise TimestampError("timestamp token does not encapsulate a TSTInfo")
    inner = items[1].expect(_CONTEXT_0, "eContent").children()
    if len(inner) != 1:
        raise TimestampError("timestamp token: malformed eContent")
    return inner[0].expect(_OCTET_STRING, "eContent").content


class _TstInfo(NamedTuple):
    """What a TSTInfo says: the imprint (its hash algorithm and value) and when, how exactly."""

    imprint_algorithm: hashes.HashAlgorithm
    imprint: bytes
    gen_time: datetime
    accuracy: timedelta


def _tst_info(tst: Der) -> _TstInfo:
    items = tst.expect(_SEQUENCE, "TSTInfo").children()
    if len(items) < 5:
        raise TimestampError("timestamp token: malformed TSTInfo")
    imprint = items[2].expect(_SEQUENCE, "MessageImprint").children()
    if len(imprint) != 2:
        raise TimestampError("timestamp token: malformed MessageImprint")
    algorithm = _hash_for(_oid(imprint[0].expect(_SEQUENCE, "AlgorithmIdentifier").children()[0]))
    hashed = imprint[1].expect(_OCTET_STRING, "hashedMessage").content
    gen_time = _generalized_time(items[4].expect(_GENERALIZED_TIME, "genTime").content)
    accuracy = timedelta(0)
    if len(items) > 5 and items[5].tag == _SEQUENCE:
        accuracy = _accuracy(items[5])
    return _TstInfo(algorithm, hashed, gen_time, accuracy)


def _generalized_time(body: bytes) -> datetime:
    text = body.decode("ascii", "replace")
    if not text.endswith("Z") or len(text) < 15:
        raise TimestampError("timestamp token: genTime must be UTC (YYYYMMDDHHMMSS[.f]Z)")
    whole, _, fraction = text[:-1].partition(".")
    try:
        moment = datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError as e:
        raise TimestampError("timestamp token: invalid genTime") from e
    if fraction:
        if not fraction.isdigit():
            raise TimestampError("timestamp token: invalid genTime fraction")
        moment += timedelta(microseconds=int((fraction + "000000")[:6]))
    return moment


def _accuracy(element: Der) -> timedelta:
    seconds = millis = micros = 0
    for part in element.children():
        if part.tag == _INTEGER:
            seconds = _integer(part)
        elif part.tag == _CONTEXT_0_PRIMITIVE:
            millis = int.from_bytes(part.content, "big")
        elif part.tag == _CONTEXT_1_PRIMITIVE:
            micros = int.from_bytes(part.content, "big")
    if seconds < 0 or seconds > 86400 or millis > 999 or micros > 999:
        raise TimestampError("timestamp token: accuracy out of range")
    return timedelta(seconds=seconds, milliseconds=millis, microseconds=micros)


def _signer_info(element: Der) -> _SignerInfo:
    items = element.expect(_SEQUENCE, "SignerInfo").children()
    if len(items) < 6 or items[3].tag != _CONTEXT_0:
        raise TimestampError("timestamp token: SignerInfo without signed attributes")
    digest_alg = _hash_for(_oid(items[2].expect(_SEQUENCE, "digestAlgorithm").children()[0]))
    sig_alg = _oid(items[4].expect(_SEQUENCE, "signatureAlgorithm").children()[0])
    signature = items[5].expect(_OCTET_STRING, "signature").content
    return _SignerInfo(items[1], digest_alg, items[3], sig_alg, signature)


def _tbs_issuer_and_serial(cert: x509.Certificate) -> tuple[bytes, int]:
    tbs = parse_der(cert.tbs_certificate_bytes).children()
    offset = 1 if tbs[0].tag == _CONTEXT_0 else 0  # [0] EXPLICIT version is optional
    return tbs[offset + 2].raw, _integer(tbs[offset])


def _matches_sid(sid: Der, cert: x509.Certificate) -> bool:
    if sid.tag == _SEQUENCE:  # IssuerAndSerialNumber
        issuer, serial = sid.children()
        return _tbs_issuer_and_serial(cert) == (issuer.raw, _integer(serial))
    if sid.tag == _CONTEXT_0_PRIMITIVE:  # [0] SubjectKeyIdentifier
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            return False
        return ski.value.digest == sid.content
    return False


def _signer_certificate(
    sid: Der, certs: list[x509.Certificate], trusted: Sequence[x509.Certificate]
) -> x509.Certificate:
    for cert in [*certs, *trusted]:
        if _matches_sid(sid, cert):
            return cert
    raise TimestampError("timestamp token does not include the TSA's signing certificate")


def _attributes(signed_attrs: Der) -> dict[str, list[Der]]:
    attributes: dict[str, list[Der]] = {}
    for attribute in signed_attrs.children():
        items = attribute.expect(_SEQUENCE, "Attribute").children()
        if len(items) != 2:
            raise TimestampError("timestamp token: malformed signed attribute")
        oid = _oid(items[0])
        if oid in attributes:
            raise TimestampError("timestamp token: duplicate signed attribute")
        attributes[oid] = items[1].expect(_SET, "attribute values").children()
    return attributes


def _check_signed_attributes(signer: _SignerInfo, tst_der: bytes, cert: x509.Certificate) -> None:
    attrs = _attributes(signer.signed_attrs)
    content_type = attrs.get(_OID_CONTENT_TYPE, [])
    if len(content_type) != 1 or _oid(content_type[0]) != _OID_TST_INFO:
        raise TimestampError("timestamp token: signed content type is not TSTInfo")
    digest = attrs.get(_OID_MESSAGE_DIGEST, [])
    expected = _digest(signer.digest_algorithm, tst_der)
    if len(digest) != 1 or digest[0].expect(_OCTET_STRING, "messageDigest").content != expected:
        raise TimestampError("timestamp token: TSTInfo does not match its signed digest")
    _check_ess_certificate(attrs, cert)


def _check_ess_certificate(attrs: dict[str, list[Der]], cert: x509.Certificate) -> None:
    """RFC 2634 / RFC 5035: the first ESSCertID(v2) must hash to the signer certificate."""
    der = cert.public_bytes(Encoding.DER)
    for oid, default in (
        (_OID_SIGNING_CERTIFICATE_V2, "sha256"),
        (_OID_SIGNING_CERTIFICATE, "sha1"),
    ):
        values = attrs.get(oid)
        if not values:
            continue
        cert_ids = values[0].expect(_SEQUENCE, "SigningCertificate").children()[0].children()
        first = cert_ids[0].children()
        algorithm, cert_hash = default, first[0]
        if first[0].tag == _SEQUENCE:  # ESSCertIDv2 with an explicit hashAlgorithm
            algorithm = _hash_for(_oid(first[0].children()[0])).name
            cert_hash = first[1]
        if (
            hashlib.new(algorithm, der).digest()
            != cert_hash.expect(_OCTET_STRING, "certHash").content
        ):
            raise TimestampError(
                "timestamp token: signing-certificate attribute names another cert"
            )


def _verify_signer_signature(signer: _SignerInfo, cert: x509.Certificate) -> None:
    # RFC 5652 §5.4: the signature covers the DER SET OF attributes, not the [0] IMPLICIT tag.
    signed = bytes([_SET]) + signer.signed_attrs.raw[1:]
    key = certificate_key(cert)
    try:
        if signer.signature_algorithm in _RSA_PKCS1 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signer.signature, signed, padding.PKCS1v15(), signer.digest_algorithm)
        elif signer.signature_algorithm in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signer.signature, signed, ec.ECDSA(signer.digest_algorithm))
        else:
            raise TimestampError(
                f"timestamp token: unsupported signature algorithm {signer.signature_algorithm}"
            )
    except (InvalidSignature, UnsupportedAlgorithm, ValueError) as e:
        raise TimestampError("timestamp token signature does not verify") from e


def check_tsa_path(
    leaf: x509.Certificate,
    pool: list[x509.Certificate],
    trusted: Sequence[x509.Certificate],
    at: datetime,
) -> None:
    """RFC 5280 path validation at ``at`` from a TSA certificate through ``pool`` (the token's
    certificates) to ``trusted``, by ``cryptography``'s verifier: every issuer must be a CA
    (critical basicConstraints), may sign certificates (keyCertSign), respects path lengths and
    name constraints, and is valid at the stamped time; the leaf carries the critical
    timeStamping EKU alone (RFC 3161 §2.3).

    Raises:
        TimestampError: no such path.
    """
    if not trusted:
        raise TimestampError("timestamp token is not signed by a trusted timestamp authority")
    verifier = (
        PolicyBuilder()
        .store(Store(list(trusted)))
        .time(at)
        .max_chain_depth(MAX_CHAIN_LENGTH)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_TSA_LEAF_POLICY)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, [c for c in pool if c != leaf])
    except ChainVerificationError as e:
        raise TimestampError(
            "timestamp token is not signed by a trusted timestamp authority "
            f"(certificate path at {at:%Y-%m-%dT%H:%M:%SZ}: {_reason(e)})"
        ) from e


def _reason(error: ChainVerificationError) -> str:
    """The verifier's reason without its certificate dumps (bounded, one line)."""
    text = str(error).split(" (encountered processing", 1)[0]
    for noise in (
        "validation failed: ",
        "candidates exhausted: ",
        "Python extension validator failed: ValueError: ",
    ):
        text = text.replace(noise, "")
    return text[:200]


def _only_timestamping(policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
    if list(eku) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise ValueError("the TSA certificate's extended key usage must be timeStamping alone")


def _issuer_may_stamp(
    policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    # A CA's EKU, when present, constrains what it may issue for (common practice, as in
    # Go's crypto/x509); timeStamping or anyExtendedKeyUsage must be among them.
    if eku is not None and not {
        ExtendedKeyUsageOID.TIME_STAMPING,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    } & set(eku):
        raise ValueError("an issuing CA's extended key usage excludes timeStamping")


_TSA_LEAF_POLICY = ExtensionPolicy.permit_all().require_present(
    x509.ExtendedKeyUsage, Criticality.CRITICAL, _only_timestamping
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _issuer_may_stamp
)
