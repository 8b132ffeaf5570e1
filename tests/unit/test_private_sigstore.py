"""A private Sigstore's ``trusted_root.json`` per cosign validator
(docs/decisions/0052-private-sigstore-trusted-root.md): keyless signatures of that deployment
verify against it and only it, its ``validFor`` windows are honoured as the public-good root's
are, and a broken document stops start-up naming the field."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.config.container import sigstore_material
from connaisseur.domain.errors import ConfigError, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import sign_layout
from tests.support.cosign_validator import push_image, push_signatures
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fakes import DEFAULT_NOW, FakeClock, FakeTransparencyLog
from tests.support.private_sigstore import REKOR_URL, PrivateSigstore
from tests.support.settings import validator_settings

IMAGE = ImageReference.parse("registry.example/team/app:1.0")
CLOCK = FakeClock(DEFAULT_NOW)
EMAIL = "release@internal"
#: No SCTs from the test Fulcio; the CT key's parsing is checked separately.
OPTIONS = RuleOptions(trust_root="release", verify_sct=False)


def entry(root: Any, **host: Any) -> dict[str, Any]:
    keyless = {"issuer": "https://dex.internal", "subject": EMAIL}
    return {
        "name": "private",
        "type": "cosign",
        "host": {"trustedRoot": root, **host},
        "trustRoots": [{"name": "release", "keyless": keyless}],
    }


def signed_registry(sigstore: PrivateSigstore) -> FakeRegistry:
    registry = FakeRegistry()
    digest = push_image(registry, IMAGE.tag)
    push_signatures(registry, digest, sign_layout([sigstore.sign(digest, IMAGE.context, EMAIL)]))
    return registry


async def verify(settings_entry: dict[str, Any], registry: FakeRegistry) -> str:
    """The verdict of the validator as the container builds it (its own material)."""
    settings = validator_settings(settings_entry)
    material = sigstore_material(settings)
    validator = CosignValidator(
        settings, registry, FakeTransparencyLog(), CLOCK, public_good=material
    )
    try:
        result = await validator.validate(IMAGE, OPTIONS, Deadline.after(CLOCK, 5))
    except ConnaisseurError as e:
        return f"{e.category.value}: {e.message}"
    return f"verified {result.digest}"


@pytest.fixture(scope="module")
def sigstore() -> PrivateSigstore:
    return PrivateSigstore(DEFAULT_NOW)


async def test_a_keyless_signature_of_the_private_sigstore_verifies(
    sigstore: PrivateSigstore,
) -> None:
    registry = signed_registry(sigstore)
    assert (await verify(entry(json.dumps(sigstore.trusted_root())), registry)).startswith(
        "verified sha256:"
    )


async def test_the_document_may_be_written_as_yaml(sigstore: PrivateSigstore) -> None:
    registry = signed_registry(sigstore)
    assert (await verify(entry(sigstore.trusted_root()), registry)).startswith("verified")


async def test_the_public_good_root_does_not_vouch_for_it(sigstore: PrivateSigstore) -> None:
    registry = signed_registry(sigstore)
    keyless = entry(None)
    del keyless["host"]
    assert (await verify(keyless, registry)).startswith("signature_invalid: ")


async def test_another_private_sigstore_does_not_vouch_for_it(sigstore: PrivateSigstore) -> None:
    registry = signed_registry(sigstore)
    stranger = PrivateSigstore(DEFAULT_NOW).trusted_root()
    assert (await verify(entry(stranger), registry)).startswith("signature_invalid: ")


async def test_a_retired_fulcio_ca_vouches_no_longer(sigstore: PrivateSigstore) -> None:
    registry = signed_registry(sigstore)
    retired = sigstore.trusted_root(fulcio_end=DEFAULT_NOW - timedelta(hours=1))
    outcome = await verify(entry(retired), registry)
    assert "no Fulcio certificate authority of the trusted root was in service" in outcome


async def test_a_retired_rekor_key_vouches_no_longer(sigstore: PrivateSigstore) -> None:
    registry = signed_registry(sigstore)
    retired = sigstore.trusted_root(rekor_end=DEFAULT_NOW - timedelta(hours=1))
    assert (await verify(entry(retired), registry)).startswith("signature_invalid: ")
    assert (await verify(entry(sigstore.trusted_root()), registry)).startswith("verified")


def test_rekor_defaults_to_the_log_of_the_trusted_root(sigstore: PrivateSigstore) -> None:
    settings = validator_settings(entry(sigstore.trusted_root()))
    assert settings.transparency.rekor == REKOR_URL
    explicit = validator_settings(entry(sigstore.trusted_root(), rekor="https://rekor.other"))
    assert explicit.transparency.rekor == "https://rekor.other"


def test_the_material_keeps_every_key_and_window(sigstore: PrivateSigstore) -> None:
    material = validator_settings(entry(sigstore.trusted_root())).transparency.trusted_root
    assert material is not None
    assert [a.roots for a in material.fulcio] == [(sigstore.fulcio.ca,)]
    assert [ident for ident, _ in material.rekor_keys] == [sigstore.rekor.log_id]
    assert len(material.ct_keys) == 1
    assert all(w.start is not None for w in material.rekor_validity.values())


def test_cache_keys_see_the_document(sigstore: PrivateSigstore) -> None:
    one = validator_settings(entry(sigstore.trusted_root()))
    again = validator_settings(entry(json.dumps(sigstore.trusted_root(), indent=2)))
    other = validator_settings(entry(PrivateSigstore(DEFAULT_NOW).trusted_root()))
    assert one.fingerprint() == again.fingerprint() != other.fingerprint()


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda d: "{not json", "validators[0].host.trustedRoot: Invalid JSON"),
        (lambda d: {**d, "mediaType": "x"}, "validators[0].host.trustedRoot.mediaType: "),
        (
            lambda d: {**d, "tlogs": [{**d["tlogs"][0], "baseUrl": 3}]},
            "validators[0].host.trustedRoot.tlogs[0].baseUrl: ",
        ),
        (
            lambda d: {**d, "certificateAuthorities": []},
            "validators[0].host.trustedRoot: lists no certificate authority",
        ),
        (
            lambda d: {
                **d,
                "ctlogs": [
                    {
                        **d["ctlogs"][0],
                        "publicKey": {**d["ctlogs"][0]["publicKey"], "rawBytes": "AAAA"},
                    }
                ],
            },
            "validators[0].host.trustedRoot: unusable key or certificate",
        ),
        (lambda d: 5, "validators[0].host.trustedRoot: must be the JSON document"),
    ],
)
def test_a_broken_trusted_root_stops_start_up_naming_the_field(
    sigstore: PrivateSigstore, edit: Any, problem: str
) -> None:
    with pytest.raises(ConfigError) as err:
        validator_settings(entry(edit(sigstore.trusted_root())))
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems
