"""Regression tests for what the fuzzers found, one per finding, each named after it.

Every input here made a parser raise something outside the product's error family (or allocate
without bound) before its fix; each now gets the parser's own categorised error.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from connaisseur.adapters.notary import NotaryV1HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.config.loader import load_settings
from connaisseur.domain import jsondoc
from connaisseur.domain.cosign import check_signature
from connaisseur.domain.cosign_layout import SimpleSigningPayload, signature_layers
from connaisseur.domain.cosign_signed import ClassicSignature
from connaisseur.domain.errors import (
    Category,
    ConfigError,
    ConnaisseurError,
    Rejection,
    TrustRootError,
    VerificationError,
)
from connaisseur.domain.notation_envelope import (
    MEDIA_TYPE_COSE,
    MEDIA_TYPE_JWS,
    THUMBPRINT_ANNOTATION,
    envelope_layer,
    parse_envelope,
    thumbprints,
)
from connaisseur.domain.policy import Rule as PolicyRule
from connaisseur.domain.rekor import RekorEntry
from connaisseur.domain.rfc3161 import TimestampError, verify_timestamp_token
from connaisseur.domain.trust import load_certificates
from connaisseur.domain.tuf import Metadata, TufKey, canonical_json
from tests.fuzz import corpus, targets
from tests.fuzz.corpus import SEEDS
from tests.fuzz.engine import HANG_SECONDS, bounded
from tests.support.fakes import ScriptedHttp

DEEP = b"[" * 5000 + b"]" * 5000


def test_jsondoc_accepts_the_limit_and_refuses_one_level_more() -> None:
    assert jsondoc.loads(b"[" * 100 + b"]" * 100) is not None
    with pytest.raises(ValueError, match="nested deeper than 100"):
        jsondoc.loads(b"[" * 101 + b"]" * 101)
    with pytest.raises(ValueError, match="nested deeper"):
        jsondoc.loads(DEEP)  # past the interpreter's recursion limit: RecursionError before


@pytest.mark.parametrize(
    "parse",
    [
        pytest.param(lambda raw: Metadata.parse("root", raw, "Root"), id="tuf-role"),
        pytest.param(SimpleSigningPayload.parse, id="cosign-payload"),
        pytest.param(lambda raw: RekorEntry.from_bundle(raw.decode()), id="rekor-bundle"),
        pytest.param(lambda raw: parse_envelope(MEDIA_TYPE_JWS, raw), id="notation-jws"),
        pytest.param(signature_layers, id="cosign-signature-manifest"),
        pytest.param(lambda raw: envelope_layer(raw, "sha256:00"), id="notation-manifest"),
    ],
)
def test_fuzz_finding_json_nested_past_the_recursion_limit_is_malformed(parse: object) -> None:
    """Found in every trust-data parser: ``RecursionError`` escaped ``json.loads``."""
    with pytest.raises(VerificationError) as info:
        parse(DEEP)  # type: ignore[operator]
    assert info.value.category is Category.MALFORMED_TRUST_DATA


def test_fuzz_finding_registry_answers_nested_past_the_recursion_limit() -> None:
    """Referrers index and token answer: the registry adapter's JSON bodies."""
    http = ScriptedHttp([(200, {}, DEEP)])
    client = AiohttpRegistryClient(http, targets.CLOCK)  # type: ignore[arg-type]
    with pytest.raises(VerificationError) as info:
        targets.run_sync(
            client.referrers(
                targets.IMAGE.with_digest("sha256:" + "1" * 64),
                "",
                targets.ENDPOINT,
                targets.deadline(),
            )
        )
    assert info.value.category is Category.MALFORMED_TRUST_DATA


def test_fuzz_finding_non_ascii_base64_in_a_tuf_signature_is_malformed() -> None:
    """``base64.b64decode`` raises a plain ``ValueError`` (not ``binascii.Error``) for text
    that is not ASCII."""
    raw = json.dumps(
        {
            "signed": {"_type": "Root", "version": 1},
            "signatures": [{"keyid": "k", "method": "ecdsa", "sig": "é"}],
        }
    ).encode()
    with pytest.raises(VerificationError) as info:
        Metadata.parse("root", raw, "Root")
    assert info.value.category is Category.MALFORMED_TRUST_DATA


def test_fuzz_finding_cose_integer_member_is_refused_not_allocated() -> None:
    """``bytes(2**40)`` allocated a terabyte of zeros for a signature written as an integer."""
    protected = cbor2.dumps({1: -7})
    for members in (
        [protected, {}, b"payload", 2**40],
        [protected, {}, 2**40, b"signature"],
        [2**40, {}, b"payload", b"signature"],
        [protected, {33: [2**40]}, b"payload", b"signature"],
    ):
        blob = cbor2.dumps(cbor2.CBORTag(18, members))
        with bounded(5.0), pytest.raises(VerificationError) as info:
            parse_envelope(MEDIA_TYPE_COSE, blob)
        assert info.value.category is Category.MALFORMED_TRUST_DATA


def test_fuzz_finding_notation_certificate_with_an_unloadable_key_is_denied() -> None:
    """``cert.public_key()`` raised ``ValueError`` for an EC point cryptography refuses."""
    envelope = json.loads((SEEDS / "notation.jws.json").read_bytes())
    leaf = base64.b64decode(envelope["header"]["x5c"][0])
    point = leaf.index(bytes.fromhex("034200")) + 3
    assert leaf[point] == 0x04  # an uncompressed point: make it an invalid encoding
    envelope["header"]["x5c"][0] = base64.b64encode(
        leaf[:point] + b"\x05" + leaf[point + 1 :]
    ).decode()
    with pytest.raises(VerificationError) as info:
        targets.notation_envelope(b"\0" + json.dumps(envelope).encode())
    assert info.value.category is Category.SIGNATURE_INVALID


@pytest.mark.parametrize("annotation", ["3", '{"a": 1}', "null", '"ab"'])
def test_fuzz_finding_thumbprint_annotation_that_is_not_a_list(annotation: str) -> None:
    """``frozenset(v.lower() for v in 3)``: a TypeError for an unsigned annotation."""
    assert thumbprints({THUMBPRINT_ANNOTATION: annotation}) == frozenset()


def test_fuzz_finding_configuration_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"validators: []\npolicy: [\xf9]\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_settings(path, secrets_dir=None, env={})


def test_fuzz_finding_configuration_nested_past_the_recursion_limit(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"[" * 5000 + b"]" * 5000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_settings(path, secrets_dir=None, env={})


@pytest.mark.parametrize(
    "challenge",
    [
        'Bearer realm="https://au[th.example/token",service="registry"',  # urlsplit refuses
        'Bearer realm="https://auth.example/token",service="reg\udcc8istry"',  # cannot encode
    ],
    ids=["bracketed-host", "undecodable-byte"],
)
def test_fuzz_finding_token_realm_no_url_can_carry(challenge: str) -> None:
    """Registry and Notary token flows: ``ValueError``/``UnicodeEncodeError`` escaped."""
    script = [(401, {"WWW-Authenticate": challenge}, b""), (200, {}, b'{"token":"t"}')]
    registry = AiohttpRegistryClient(ScriptedHttp(script), targets.CLOCK)  # type: ignore[arg-type]
    with pytest.raises(VerificationError) as info:
        targets.run_sync(
            registry.manifest(targets.IMAGE, "1", targets.ENDPOINT, targets.deadline())
        )
    assert info.value.category is Category.FETCH_FAILED
    notary = NotaryV1HttpClient(ScriptedHttp(script))  # type: ignore[arg-type]
    with pytest.raises(ConnaisseurError) as failed:
        targets.run_sync(
            notary.fetch_roles(
                "https://notary.test", "app", ["root"], targets.ENDPOINT, targets.deadline()
            )
        )
    assert failed.value.category is Category.FETCH_FAILED


@pytest.mark.parametrize(
    "answer",
    [b'{"token":"t","expires_in":1' + b"0" * 400 + b"}", b'{"token":"t","expires_in":Infinity}'],
    ids=["integer-past-a-float", "infinity"],
)
def test_fuzz_finding_token_lifetime_past_a_floats_range(answer: bytes) -> None:
    """``float(expires_in)`` raised ``OverflowError``; such a token is used for the longest
    lifetime kept, and the request goes on (here to a 404 of the image)."""
    challenge = 'Bearer realm="https://auth.example/token",service="registry"'
    script = [(401, {"WWW-Authenticate": challenge}, b""), (200, {}, answer), (404, {}, b"")]
    registry = AiohttpRegistryClient(ScriptedHttp(script), targets.CLOCK)  # type: ignore[arg-type]
    with pytest.raises(VerificationError) as info:
        targets.run_sync(
            registry.manifest(targets.IMAGE, "1", targets.ENDPOINT, targets.deadline())
        )
    assert info.value.category is Category.IMAGE_NOT_FOUND


@pytest.mark.parametrize(
    "document",
    [
        "validators:\n  - name: [a, b]\n    type: static\n"
        "policy:\n  - pattern: '*'\n    with: {}\n",
        "validators:\n  - name: default\n    type: static\n"
        "policy:\n  - pattern: '*'\n    validator: [a]\n    with: {}\n",
    ],
    ids=["validator-name-a-list", "rule-validator-a-list"],
)
def test_fuzz_finding_a_name_that_is_a_list_is_a_configuration_error(
    tmp_path: Path, document: str
) -> None:
    """A validator name (or a rule's validator) written as a list raised ``TypeError``
    (unhashable) where rule options are matched to their validator's type."""
    config = tmp_path / "config.yaml"
    config.write_text(document)
    with pytest.raises(ConfigError):
        load_settings(config, secrets_dir=None, env={})


def test_fuzz_finding_tuf_lone_surrogate_fails_the_signature_not_the_encoder() -> None:
    """Canonical JSON of ``"\\udded"`` raised ``UnicodeEncodeError``; no signer can have
    signed such bytes, so they are encoded as they are and the signature check fails."""
    assert canonical_json({"a": "\udded"}) == b'{"a":"\xed\xb7\xad"}'
    files = dict(targets.NOTARY_FILES)
    targets_doc = json.loads(files["targets"])
    targets_doc["signed"]["custom"] = "\udded"
    files["targets"] = json.dumps(targets_doc).encode()
    with pytest.raises(VerificationError):
        targets.notary_tuf(b"\3" + files["targets"])


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("docker.io/" + "a/" * 495 + "b", False),  # the input found: 1,000 characters
        ("docker.io/" + "a/" * 495 + "x", True),
        ("docker.io/" + "a/" * 40 + "x", False),  # too few '/' for 50 stars
        ("doc" + "/" * 997, False),
    ],
)
def test_fuzz_finding_policy_pattern_with_many_stars_backtracks(name: str, matches: bool) -> None:
    """``doc*/*/…/x`` with 50 stars against a long name took seconds (``re`` backtracks: time
    grows as the name's length to the power of the stars; a 71-character name took 40 s).
    Matching now runs an automaton whose work is bounded per character of the name
    (docs/decisions/0021-linear-time-policy-matching.md); work is counted in NFA instructions
    visited, not measured in seconds."""
    rule = PolicyRule(pattern="doc" + "*/" * 50 + "x")
    before = rule.glob.work
    assert rule.matches(name) is matches
    assert rule.glob.work - before <= rule.glob.work_per_character * len(name)
    with bounded(HANG_SECONDS):  # and through the fuzz target, as it was found
        targets.check(targets.TARGETS["policy_pattern"], f"{rule.pattern}\0{name}".encode())


def _leaf_der() -> bytes:
    return (SEEDS / "keyless-leaf.der").read_bytes()


def _unknown_version(der: bytes) -> bytes:
    """The certificate with X.509 version 4 (``[0] INTEGER 3``)."""
    at = der.index(bytes.fromhex("a003020102"))
    return der[: at + 4] + b"\x03" + der[at + 5 :]


def _spki_changed(der: bytes, old: bytes, new: bytes) -> bytes:
    at = der.index(old)
    return der[:at] + new + der[at + len(old) :]


def _point_off_the_curve(der: bytes) -> bytes:
    cert = x509.load_der_x509_certificate(der)
    point = cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return _spki_changed(der, point, point[:-1] + bytes([point[-1] ^ 0x5A]))


P256 = bytes.fromhex("2a8648ce3d030107")


@pytest.mark.parametrize(
    "certificate",
    [
        pytest.param(_point_off_the_curve, id="point-off-the-curve"),  # ValueError
        pytest.param(lambda d: _spki_changed(d, P256, P256[:-1] + b"\x09"), id="unknown-curve"),
        pytest.param(_unknown_version, id="x509-version-4"),  # InvalidVersion
    ],
)
def test_fuzz_finding_keyless_certificate_cryptography_cannot_use_is_rejected(
    certificate: Any,
) -> None:
    """Found by the keyless target: ``cert.public_key()`` in ``_signer_key`` raised
    ``ValueError`` (a point off its curve) and ``UnsupportedAlgorithm`` (a curve cryptography
    does not implement), and ``load_certificates`` let ``InvalidVersion`` (not a ValueError)
    through; each crashed the cosign validator. Now the signature is rejected."""
    data = b"\0" + certificate(_leaf_der())
    targets.check(targets.TARGETS["cosign_keyless"], data)  # no Finding
    layer = dataclasses.replace(
        targets.KEYLESS_LAYER, certificate=corpus.pem_certificate(data[1:]).decode()
    )
    with pytest.raises(Rejection) as rejected:
        check_signature(
            ClassicSignature(layer),
            targets.KEYLESS_VERIFIER,
            None,
            targets.KEYLESS_MATERIAL,
            targets.KEYLESS_CHECKS[0],
            log_entries=(),
            now=targets.NOW,
        )
    assert rejected.value.category in (Category.SIGNATURE_INVALID, Category.MALFORMED_TRUST_DATA)


def test_fuzz_finding_x509_version_4_is_unusable_everywhere_a_certificate_is_read() -> None:
    """``InvalidVersion`` escaped every reader that caught ``ValueError`` only: trust roots,
    the Notation x5c chain, a TUF x509 key, a timestamp token's certificates."""
    bad = _unknown_version(_leaf_der())
    with pytest.raises(TrustRootError):
        load_certificates(corpus.pem_certificate(bad).decode())
    with pytest.raises(VerificationError) as envelope:
        parse_envelope(MEDIA_TYPE_JWS, _jws_with_x5c(bad))
    assert envelope.value.category is Category.MALFORMED_TRUST_DATA
    tuf_key = TufKey(
        keytype="ecdsa-x509", public=base64.b64encode(corpus.pem_certificate(bad)).decode()
    )
    assert tuf_key.load() is None
    token = (SEEDS / "rfc3161.token.der").read_bytes()
    with pytest.raises(TimestampError):
        verify_timestamp_token(_unknown_version(token), b"fuzz seed signature", targets.TSA_ROOTS)


def _jws_with_x5c(der: bytes) -> bytes:
    envelope = json.loads((SEEDS / "notation.jws.json").read_bytes())
    envelope["header"]["x5c"][0] = base64.b64encode(der).decode()
    return json.dumps(envelope).encode()
