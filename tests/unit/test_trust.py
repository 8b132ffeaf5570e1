"""Domain: trust roots — PEM parsing, extraneous characters, key types, selection."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from connaisseur.domain.errors import Category, TrustRootError
from connaisseur.domain.trust import (
    TrustRoot,
    load_certificates,
    load_public_key,
    pem_blocks,
    select_trust_roots,
)
from tests.support.tls import certificate, certificate_pem


def _spki(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def ec_pem() -> str:
    return _spki(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def cert_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = certificate(
        "test", key, not_before=start, not_after=start + dt.timedelta(days=1), serial=1
    )
    return certificate_pem(cert).decode()


def test_supported_key_types_load(ec_pem: str) -> None:
    assert isinstance(load_public_key(ec_pem), ec.EllipticCurvePublicKey)
    rsa_pem = _spki(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert isinstance(load_public_key(rsa_pem), rsa.RSAPublicKey)
    ed_pem = _spki(ed25519.Ed25519PrivateKey.generate())
    assert isinstance(load_public_key(ed_pem), ed25519.Ed25519PublicKey)


def test_surrounding_whitespace_and_indentation_are_fine(ec_pem: str) -> None:
    indented = "\n".join("   " + line for line in ec_pem.splitlines())
    assert load_public_key(f"\n\n{ec_pem}\n  \n")
    assert load_public_key(indented)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda pem: "x" + pem,
        lambda pem: pem + "trailing",
        lambda pem: pem + "-----BEGIN PUBLIC KEY-----\n",
        lambda pem: pem.replace("-----END PUBLIC KEY-----", ""),
        lambda pem: pem.replace("\n", "\n!", 2),
        lambda pem: "not a key at all",
        lambda pem: "",
    ],
    ids=["leading", "trailing", "dangling-begin", "no-end", "bad-base64", "garbage", "empty"],
)
def test_extraneous_or_broken_material_is_an_invalid_key(ec_pem: str, mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrustRootError) as info:
        load_public_key(mangle(ec_pem))
    assert info.value.category is Category.INVALID_KEY


def test_exactly_one_public_key_is_required(ec_pem: str, cert_pem: str) -> None:
    for text in (ec_pem + ec_pem, cert_pem):
        with pytest.raises(TrustRootError) as info:
            load_public_key(text)
        assert info.value.category is Category.INVALID_KEY


def test_a_public_key_block_with_junk_der_is_refused() -> None:
    junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(TrustRootError) as info:
        load_public_key(junk)
    assert info.value.category is Category.INVALID_KEY


def test_certificates_load_and_other_labels_are_refused(cert_pem: str, ec_pem: str) -> None:
    assert len(load_certificates(cert_pem + cert_pem)) == 2
    with pytest.raises(TrustRootError):
        load_certificates(ec_pem)
    with pytest.raises(TrustRootError):
        load_certificates(cert_pem + "junk")


def test_pem_blocks_returns_labels_and_der(ec_pem: str, cert_pem: str) -> None:
    blocks = pem_blocks(ec_pem + cert_pem)
    assert [label for label, _ in blocks] == ["PUBLIC KEY", "CERTIFICATE"]
    assert all(der for _, der in blocks)


ROOTS = (TrustRoot(name="default"), TrustRoot(name="alice"))


def test_trust_root_selection() -> None:
    assert select_trust_roots(ROOTS, [None]) == (ROOTS[0],)
    assert select_trust_roots(ROOTS, [""]) == (ROOTS[0],)
    assert select_trust_roots(ROOTS, ["alice"]) == (ROOTS[1],)
    assert select_trust_roots(ROOTS, ["*"]) == ROOTS
    for roots, ref in ((ROOTS, "bob"), (ROOTS[1:], None), ((), "*")):
        with pytest.raises(TrustRootError) as info:
            select_trust_roots(roots, [ref])
        assert info.value.category is Category.TRUST_ROOT_NOT_FOUND
