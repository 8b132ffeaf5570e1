"""RFC 3161 timestamp tokens: the TSA's certificate path, differentially against rfc3161-client.

Every token is made by ``openssl`` (see ``tests/support/tsa.py``). Each case has the outcome the
RFCs demand, and our verifier and ``rfc3161-client`` (sigstore's maintained verifier, built on
OpenSSL's PKCS#7 path validation) must both reach it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from rfc3161_client import VerifierBuilder, decode_timestamp_response
from rfc3161_client.errors import VerificationError as ClientVerificationError

from connaisseur.domain.errors import Category
from connaisseur.domain.rfc3161 import TimestampError, check_tsa_path, verify_timestamp_token
from tests.support.notation_signing import DAY, REAL_NOW, Signer, openssl_available
from tests.support.tsa import (
    as_response,
    authority,
    stamping_leaf,
    token_by_openssl_cms,
    token_by_openssl_ts,
    token_of,
)

pytestmark = pytest.mark.skipif(not openssl_available(), reason="openssl CLI not installed")

SIGNATURE = b"the envelope's signature bytes"
EKU = ExtendedKeyUsageOID


@dataclass(frozen=True)
class Stamp:
    """One token and the roots it is judged against."""

    response: bytes
    roots: tuple[x509.Certificate, ...]
    message: bytes = SIGNATURE


def ours(stamp: Stamp) -> str:
    try:
        verify_timestamp_token(token_of(stamp.response), stamp.message, stamp.roots)
    except TimestampError as e:
        return "reject" if e.category is Category.SIGNATURE_INVALID else f"wrong category {e}"
    return "accept"


def theirs(stamp: Stamp) -> str:
    builder = VerifierBuilder()
    for root in stamp.roots:
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify_message(decode_timestamp_response(stamp.response), SIGNATURE)
    except (ClientVerificationError, ValueError):
        return "reject"
    return "accept"


def by_ts(tsa: Signer, root: Signer, message: bytes = SIGNATURE) -> Stamp:
    return Stamp(as_response(token_by_openssl_ts(tsa, message)), (root.cert,))


def by_cms(signer: Signer, root: Signer) -> Stamp:
    helper = stamping_leaf(authority(None, "helper root"), "helper")
    return Stamp(as_response(token_by_openssl_cms(signer, SIGNATURE, helper)), (root.cert,))


# --- the cases ---------------------------------------------------------------------------------


def leaf_under_root() -> Stamp:
    root = authority(None, "tsa root")
    return by_ts(stamping_leaf(root), root)


def leaf_under_intermediate() -> Stamp:
    root = authority(None, "tsa root")
    return by_ts(stamping_leaf(authority(root, "tsa ca")), root)


def intermediate_without_basic_constraints() -> Stamp:
    root = authority(None, "tsa root")
    return by_ts(stamping_leaf(authority(root, "no constraints", is_ca=None)), root)


def intermediate_that_is_not_a_ca() -> Stamp:
    root = authority(None, "tsa root")
    return by_ts(stamping_leaf(authority(root, "end entity", is_ca=False)), root)


def intermediate_without_key_cert_sign() -> Stamp:
    root = authority(None, "tsa root")
    return by_ts(stamping_leaf(authority(root, "no keyCertSign", key_cert_sign=False)), root)


def intermediate_below_a_root_with_path_length_zero() -> Stamp:
    root = authority(None, "tsa root", path_length=0)
    return by_ts(stamping_leaf(authority(root, "one too deep")), root)


def intermediate_expired_before_the_stamp() -> Stamp:
    root = authority(None, "tsa root")
    old = authority(root, "old ca", start=REAL_NOW - 30 * DAY, end=REAL_NOW - DAY)
    return by_ts(stamping_leaf(old, start=REAL_NOW - 20 * DAY, end=REAL_NOW + DAY), root)


def leaf_not_yet_valid_at_the_stamp() -> Stamp:
    root = authority(None, "tsa root")
    return by_ts(stamping_leaf(root, start=REAL_NOW + DAY, end=REAL_NOW + 9 * DAY), root)


def leaf_signed_through_openssl_cms() -> Stamp:
    # The control for the cms-made cases below: the same route with a proper TSA leaf.
    root = authority(None, "tsa root")
    return by_cms(stamping_leaf(root), root)


def leaf_for_code_signing() -> Stamp:
    root = authority(None, "tsa root")
    return by_cms(stamping_leaf(root, ekus=(EKU.CODE_SIGNING,)), root)


def leaf_without_extended_key_usage() -> Stamp:
    root = authority(None, "tsa root")
    return by_cms(stamping_leaf(root, ekus=()), root)


def leaf_with_a_second_extended_key_usage() -> Stamp:
    # RFC 3161 §2.3: the TSA certificate's extended key usage is timeStamping alone.
    root = authority(None, "tsa root")
    return by_cms(stamping_leaf(root, ekus=(EKU.TIME_STAMPING, EKU.CODE_SIGNING)), root)


def leaf_with_non_critical_timestamping_usage() -> Stamp:
    root = authority(None, "tsa root")
    return by_cms(stamping_leaf(root, eku_critical=False), root)


def chain_to_another_root() -> Stamp:
    root, rogue = authority(None, "tsa root"), authority(None, "tsa root")
    return by_ts(stamping_leaf(rogue), root)


def token_over_another_message() -> Stamp:
    root = authority(None, "tsa root")
    return by_ts(stamping_leaf(root), root, message=SIGNATURE + b"!")


BOTH_ACCEPT = [leaf_under_root, leaf_under_intermediate, leaf_signed_through_openssl_cms]
BOTH_REJECT = [
    intermediate_without_basic_constraints,
    intermediate_that_is_not_a_ca,
    intermediate_without_key_cert_sign,
    intermediate_below_a_root_with_path_length_zero,
    intermediate_expired_before_the_stamp,
    leaf_not_yet_valid_at_the_stamp,
    leaf_for_code_signing,
    leaf_without_extended_key_usage,
    leaf_with_a_second_extended_key_usage,
    leaf_with_non_critical_timestamping_usage,
    chain_to_another_root,
    token_over_another_message,
]


@pytest.mark.parametrize("case", BOTH_ACCEPT, ids=lambda c: c.__name__)
def test_rfc3161_tokens_both_verifiers_accept(case: Callable[[], Stamp]) -> None:
    stamp = case()
    assert (ours(stamp), theirs(stamp)) == ("accept", "accept")


@pytest.mark.parametrize("case", BOTH_REJECT, ids=lambda c: c.__name__)
def test_rfc3161_tokens_both_verifiers_reject(case: Callable[[], Stamp]) -> None:
    stamp = case()
    assert (ours(stamp), theirs(stamp)) == ("reject", "reject")


# --- the audit's finding, by name ----------------------------------------------------------------


def test_rfc3161_chain_intermediate_from_the_token_must_be_a_ca() -> None:
    # Before: any certificate in the token whose signature checked out was followed as an
    # issuer, so a TSA's end-entity certificate could mint "TSA" certificates of its own.
    root = authority(None, "tsa root")
    minted = stamping_leaf(authority(root, "leaf posing as issuer", is_ca=False))
    token = token_by_openssl_ts(minted, SIGNATURE)
    with pytest.raises(TimestampError, match=r"basicConstraints\.cA must be asserted"):
        verify_timestamp_token(token, SIGNATURE, [root.cert])


def test_rfc3161_chain_path_length_and_key_usage_are_enforced() -> None:
    for stamp in (
        intermediate_below_a_root_with_path_length_zero(),
        intermediate_without_key_cert_sign(),
    ):
        with pytest.raises(TimestampError, match="trusted timestamp authority"):
            verify_timestamp_token(token_of(stamp.response), SIGNATURE, stamp.roots)


def test_rfc3161_chain_error_names_the_reason_without_certificate_dumps() -> None:
    stamp = intermediate_that_is_not_a_ca()
    with pytest.raises(TimestampError) as info:
        verify_timestamp_token(token_of(stamp.response), SIGNATURE, stamp.roots)
    assert "basicConstraints" in info.value.message
    assert "<Certificate" not in info.value.message
    assert "\n" not in info.value.message


def test_rfc3161_a_real_tsa_chain_passes_the_path_rules() -> None:
    # The Sigstore TSA (leaf + root shipped in the sigstore package): a production chain,
    # judged by the same path rules at a moment inside its validity.
    leaf, root = _sigstore_tsa_chain()
    moment = leaf.not_valid_before_utc + dt.timedelta(days=30)
    check_tsa_path(leaf, [leaf], [root], moment)
    with pytest.raises(TimestampError, match="not valid"):
        check_tsa_path(leaf, [leaf], [root], leaf.not_valid_after_utc + DAY)


def _sigstore_tsa_chain() -> tuple[x509.Certificate, x509.Certificate]:
    store = resources.files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    doc = json.loads((store / "trusted_root.json").read_bytes())
    raw = doc["timestampAuthorities"][0]["certChain"]["certificates"]
    leaf, root = (x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"])) for c in raw)
    return leaf, root
