"""Fixtures: the cosign signing keys of the bundle and attestation tests (``key`` signs,
``other`` is a second signer the rule does not trust); a fresh pair per test module."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.cosign import Signer


@pytest.fixture(scope="module")
def key() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def other() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))
