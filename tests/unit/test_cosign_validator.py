"""CosignValidator with fakes: keys generated per session, real cosign layouts in memory.

Covers every user-visible failure with its own category (unsigned, another key, another digest,
threshold, required, credentials refused, registry down), D2 claims and D3 distinct signers,
all supported key types, Rekor bundles and the online Rekor fallback, keyless timing/SCT, and
key references.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from connaisseur.application.cosign import K8S_KEY_TTL_SECONDS, CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.domain.cosign_layout import BUNDLE_ANNOTATION, signature_tag
from connaisseur.domain.errors import (
    Category,
    ConfigError,
    ConnaisseurError,
    TrustRootError,
    VerificationError,
)
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import (
    FakeRekor,
    Signer,
    sha256,
    sign_layout,
)
from tests.support.cosign_validator import (
    IMAGE,
    NO_TLOG,
    REPOSITORY,
    denied,
    push_image,
    push_signatures,
    run,
    signed,
    signed_image,
    validator,
)
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fakes import FakeClock, FakeKubernetesApi, FakeTransparencyLog
from tests.support.settings import validator_settings

DATA = Path(__file__).parents[1] / "conformance" / "data"


@pytest.fixture(scope="session")
def signers() -> dict[str, Signer]:
    """One key of each supported kind, generated once per session."""
    return {
        "p256": Signer(ec.generate_private_key(ec.SECP256R1())),
        "p384": Signer(ec.generate_private_key(ec.SECP384R1())),
        "rsa": Signer(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "rsa-pss": Signer(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), rsa_pss=True
        ),
        "ed25519": Signer(ed25519.Ed25519PrivateKey.generate()),
        "other": Signer(ec.generate_private_key(ec.SECP256R1())),
    }


def cosign_secret(namespace: str, name: str, pem: str) -> dict[str, Any]:
    """A Kubernetes Secret holding ``cosign.pub`` as ``k8s://<namespace>/<name>`` reads it."""
    data = {"cosign.pub": base64.b64encode(pem.encode()).decode()}
    metadata = {"namespace": namespace, "name": name}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": data}


# ------------------------------------------------------------------ keys and basic outcomes


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa", "rsa-pss", "ed25519"])
async def test_each_key_type_verifies_and_pins_the_resolved_digest(
    kind: str, signers: dict[str, Signer]
) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([signed(signers[kind], digest)]))
    v = validator([{"name": "default", "key": signers[kind].public_pem}], reg)
    result = await run(v)
    assert result.digest == digest
    assert result.signers == ("default",)


async def test_unsigned_image_is_no_trust_data_naming_image_and_roots(
    signers: dict[str, Signer],
) -> None:
    reg = FakeRegistry()
    push_image(reg, "1.0")
    v = validator([{"name": "default", "key": signers["p256"].public_pem}], reg)
    err = await denied(v)
    assert err.category is Category.NO_TRUST_DATA
    assert IMAGE.name in err.message
    assert "trust roots: default" in err.message


async def test_signed_by_another_key_is_signature_invalid(signers: dict[str, Signer]) -> None:
    reg, _ = signed_image(signers["other"])
    v = validator([{"name": "default", "key": signers["p256"].public_pem}], reg)
    assert (await denied(v)).category is Category.SIGNATURE_INVALID


async def test_d2_signature_over_another_digest_is_digest_mismatch(
    signers: dict[str, Signer],
) -> None:
    # D2: upstream would pin the other (signed) digest; we deny.
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    other = push_image(reg, "old", seed="b")
    push_signatures(reg, digest, sign_layout([signed(signers["p256"], other)]))
    v = validator([{"name": "default", "key": signers["p256"].public_pem}], reg)
    err = await denied(v)
    assert err.category is Category.DIGEST_MISMATCH
    assert other in err.message


async def test_d2_reference_of_another_repository_denied_unless_ignore_reference(
    signers: dict[str, Signer],
) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    layout = sign_layout([signed(signers["p256"], digest, "mirror.example/team/app")])
    push_signatures(reg, digest, layout)
    v = validator([{"name": "default", "key": signers["p256"].public_pem}], reg)
    assert (await denied(v)).category is Category.REFERENCE_NOT_FOUND
    result = await run(v, dataclasses.replace(NO_TLOG, ignore_reference=True))
    assert result.digest == digest


async def test_a_bad_signature_does_not_hide_a_good_one(signers: dict[str, Signer]) -> None:
    reg, digest = signed_image(signers["other"], signers["p256"])
    v = validator([{"name": "default", "key": signers["p256"].public_pem}], reg)
    assert (await run(v)).digest == digest


async def test_tampered_payload_fails_verification(signers: dict[str, Signer]) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    body, sig, _ = signed(signers["p256"], digest)
    tampered = body.replace(b"cosign container", b"cosign  container")
    push_signatures(reg, digest, sign_layout([(tampered, sig, {})]))
    v = validator([{"name": "default", "key": signers["p256"].public_pem}], reg)
    assert (await denied(v)).category is Category.SIGNATURE_INVALID


# ------------------------------------------------------------------ thresholds (D3)


def three_roots(signers: dict[str, Signer]) -> list[dict[str, str]]:
    return [
        {"name": "alice", "key": signers["p256"].public_pem},
        {"name": "bob", "key": signers["p384"].public_pem},
        {"name": "charlie", "key": signers["ed25519"].public_pem},
    ]


async def test_threshold_counts_distinct_signers_not_layers(signers: dict[str, Signer]) -> None:
    # D3: alice signing three times is one signer; upstream counted 3 layers.
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([signed(signers["p256"], digest)] * 3))
    v = validator(three_roots(signers), reg)
    err = await denied(v, dataclasses.replace(NO_TLOG, trust_root="*", threshold=2))
    assert err.category is Category.THRESHOLD_NOT_MET
    assert "(1/2)" in err.message


async def test_d3_two_trust_roots_with_the_same_key_count_once(signers: dict[str, Signer]) -> None:
    reg, _ = signed_image(signers["p256"])
    same = signers["p256"].public_pem
    v = validator([{"name": "a", "key": same}, {"name": "b", "key": same}], reg)
    err = await denied(v, dataclasses.replace(NO_TLOG, trust_root="*", threshold=2))
    assert err.category is Category.THRESHOLD_NOT_MET


async def test_threshold_met_by_two_of_three(signers: dict[str, Signer]) -> None:
    reg, _ = signed_image(signers["p256"], signers["ed25519"])
    v = validator(three_roots(signers), reg)
    result = await run(v, dataclasses.replace(NO_TLOG, trust_root="*", threshold=2))
    assert result.signers == ("alice", "charlie")
    err = await denied(v, dataclasses.replace(NO_TLOG, trust_root="*"))
    assert err.category is Category.THRESHOLD_NOT_MET  # default threshold: all three


async def test_required_signer_missing(signers: dict[str, Signer]) -> None:
    reg, _ = signed_image(signers["p256"])
    v = validator(three_roots(signers), reg)
    err = await denied(v, dataclasses.replace(NO_TLOG, trust_root="*", required=("bob",)))
    assert err.category is Category.REQUIRED_SIGNER_MISSING
    assert "bob" in err.message


async def test_unknown_trust_root_fails_before_any_network(signers: dict[str, Signer]) -> None:
    reg = FakeRegistry()
    v = validator(three_roots(signers), reg)
    err = await denied(v, dataclasses.replace(NO_TLOG, trust_root="dave"))
    assert err.category is Category.TRUST_ROOT_NOT_FOUND
    assert reg.requests == []


# ------------------------------------------------------------------ registry errors (D9)


@pytest.mark.parametrize(
    "category",
    [Category.UNAUTHORIZED, Category.UNAVAILABLE, Category.TIMEOUT, Category.IMAGE_NOT_FOUND],
)
async def test_registry_errors_keep_their_category_and_name_the_image(
    category: Category, signers: dict[str, Signer]
) -> None:
    reg = FakeRegistry()
    # the first request, resolving the tag, fails
    reg.fail[f"{REPOSITORY}/manifests/{IMAGE.tag}"] = VerificationError(
        "registry says no", category=category
    )
    v = validator([{"name": "default", "key": signers["p256"].public_pem}], reg)
    err = await denied(v)
    assert err.category is category
    assert IMAGE.name in err.message
    assert "default" in err.message


async def test_a_configuration_error_keeps_its_class_when_image_and_roots_are_added(
    signers: dict[str, Signer],
) -> None:
    """Regression: the context was added by rebuilding the error as
    ``type(e)(message, category=...)``, a ``TypeError`` for a ``ConfigError``, whose
    constructor takes no category: the denial became an internal error."""
    reg = FakeRegistry()
    reg.fail[f"{REPOSITORY}/manifests/{IMAGE.tag}"] = ConfigError(
        "the registry CA cannot be read", ("validators[0].cert: unreadable",)
    )
    v = validator([{"name": "default", "key": signers["p256"].public_pem}], reg)
    err = await denied(v)
    assert type(err) is ConfigError
    assert err.category is Category.CONFIG_INVALID
    assert err.message == (
        f"cosign: image {IMAGE.name} (trust roots: default): the registry CA cannot be read"
    )
    assert err.problems == ("validators[0].cert: unreadable",)


# ------------------------------------------------------------------ transparency log


def bundled(signers: dict[str, Signer], rekor: FakeRekor, digest: str, **tweak: Any):  # type: ignore[no-untyped-def]
    body, sig, _ = signed(signers["p256"], digest)
    entry = rekor.entry(
        tweak.get("logged_payload", body), sig, signers["p256"].public_pem, 1_700_000_000
    )
    return body, sig, {BUNDLE_ANNOTATION: FakeRekor.bundle(entry)}


def tlog_validator(
    signers: dict[str, Signer],
    reg: FakeRegistry,
    rekor: FakeRekor,
    log: FakeTransparencyLog | None = None,
) -> CosignValidator:
    return validator(
        [{"name": "default", "key": signers["p256"].public_pem}],
        reg,
        log,
        {"rekor": "https://rekor.test", "rekorPubkey": rekor.public_pem},
    )


async def test_bundle_verifies_offline(signers: dict[str, Signer]) -> None:
    reg, rekor, log = FakeRegistry(), FakeRekor(), FakeTransparencyLog()
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([bundled(signers, rekor, digest)]))
    result = await run(tlog_validator(signers, reg, rekor, log), RuleOptions())
    assert result.digest == digest
    assert log.queries == []


async def test_bundle_signed_by_an_untrusted_log_is_rejected(signers: dict[str, Signer]) -> None:
    reg, rekor = FakeRegistry(), FakeRekor()
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([bundled(signers, FakeRekor(), digest)]))
    err = await denied(tlog_validator(signers, reg, rekor), RuleOptions())
    assert err.category is Category.SIGNATURE_INVALID
    assert "not trusted" in err.message


async def test_bundle_recording_another_payload_is_rejected(signers: dict[str, Signer]) -> None:
    reg, rekor = FakeRegistry(), FakeRekor()
    digest = push_image(reg, "1.0")
    layer = bundled(signers, rekor, digest, logged_payload=b"something else")
    push_signatures(reg, digest, sign_layout([layer]))
    err = await denied(tlog_validator(signers, reg, rekor), RuleOptions())
    assert "another payload" in err.message


async def test_without_bundle_rekor_is_queried_and_its_entry_verified(
    signers: dict[str, Signer],
) -> None:
    reg, rekor = FakeRegistry(), FakeRekor()
    digest = push_image(reg, "1.0")
    body, sig, _ = signed(signers["p256"], digest)
    push_signatures(reg, digest, sign_layout([(body, sig, {})]))
    entry = rekor.entry(body, sig, signers["p256"].public_pem, 1_700_000_000)
    log = FakeTransparencyLog({sha256(body): [entry]})
    result = await run(tlog_validator(signers, reg, rekor, log), RuleOptions())
    assert result.digest == digest
    assert log.queries == [("https://rekor.test", sha256(body))]


async def test_without_bundle_and_without_entry_the_signature_does_not_count(
    signers: dict[str, Signer],
) -> None:
    reg, rekor = FakeRegistry(), FakeRekor()
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([signed(signers["p256"], digest)]))
    err = await denied(tlog_validator(signers, reg, rekor, FakeTransparencyLog()), RuleOptions())
    assert err.category is Category.SIGNATURE_INVALID
    assert "transparency log" in err.message


async def test_rekor_down_is_transient_not_a_bad_signature(signers: dict[str, Signer]) -> None:
    reg, rekor, log = FakeRegistry(), FakeRekor(), FakeTransparencyLog()
    log.fail = VerificationError(
        "Rekor: server unavailable (HTTP 503)", category=Category.UNAVAILABLE
    )
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([signed(signers["p256"], digest)]))
    err = await denied(tlog_validator(signers, reg, rekor, log), RuleOptions())
    assert err.category is Category.UNAVAILABLE
    assert err.transient


# ------------------------------------------------------------------ keyless (conformance data)


def keyless_registry() -> FakeRegistry:
    base = DATA / "cosign" / "securesystemsengineering" / "testimage"
    reg = FakeRegistry()
    image = (base / "manifests" / "keyless.json").read_bytes()
    sig = (
        base
        / "manifests"
        / "sha256-31dc72a13a0c34b40eb95419d2b2fd67320c856baf3b72da518023ee8d370aee.sig.json"
    ).read_bytes()
    digest = reg.put_manifest(REPOSITORY, image, "keyless")
    reg.put_manifest(REPOSITORY, sig, signature_tag(digest))
    for blob in (base / "blobs").glob("*.json"):
        reg.put_blob(REPOSITORY, blob.read_bytes())
    return reg


def keyless_validator(
    host_overrides: Mapping[str, str] | None = None, **identity: str
) -> CosignValidator:
    doc = yaml.safe_load((DATA / "cosign" / "11_keyless.yaml").read_text())
    host = {**doc["host"], **(host_overrides or {})}
    keyless = identity or {"issuerRegex": "github", "subjectRegex": "philipp"}
    overrides = {k: host[k] for k in ("rekorPubkey", "fulcioCert", "ctLogPubkey")}
    return validator([{"name": "default", "keyless": keyless}], keyless_registry(), host=overrides)


KEYLESS = ImageReference.parse("registry.example/team/app:keyless")
KEYLESS_OPTIONS = RuleOptions(ignore_reference=True)


async def test_keyless_verifies_at_the_integrated_time() -> None:
    result = await run(keyless_validator(), KEYLESS_OPTIONS, KEYLESS)
    assert (
        result.digest == "sha256:31dc72a13a0c34b40eb95419d2b2fd67320c856baf3b72da518023ee8d370aee"
    )


async def test_keyless_without_tlog_is_judged_now_and_the_certificate_has_expired() -> None:
    options = dataclasses.replace(KEYLESS_OPTIONS, verify_in_transparency_log=False)
    with pytest.raises(ConnaisseurError) as err:
        await run(keyless_validator(), options, KEYLESS)
    assert "Fulcio roots at signing time" in err.value.message


async def test_keyless_sct_from_an_unknown_ct_log_fails_unless_verify_sct_is_off(
    signers: dict[str, Signer],
) -> None:
    v = keyless_validator({"ctLogPubkey": signers["other"].public_pem})
    with pytest.raises(ConnaisseurError) as err:
        await run(v, KEYLESS_OPTIONS, KEYLESS)
    assert "SCT" in err.value.message
    result = await run(v, dataclasses.replace(KEYLESS_OPTIONS, verify_sct=False), KEYLESS)
    assert result.digest is not None


async def test_keyless_regexes_are_searched_not_anchored() -> None:
    # issuer is https://github.com/login/oauth; "github" matches anywhere (as in Connaisseur v3).
    v = keyless_validator(issuerRegex="github", subject="philipp.belitz@securesystems.de")
    assert (await run(v, KEYLESS_OPTIONS, KEYLESS)).digest is not None
    v = keyless_validator(issuer="github", subjectRegex="philipp")
    with pytest.raises(ConnaisseurError) as err:
        await run(v, KEYLESS_OPTIONS, KEYLESS)
    assert err.value.category is Category.IDENTITY_MISMATCH


async def test_keyless_with_untrusted_fulcio_root_fails(tmp_path: Path) -> None:
    from tests.support.tls import make_tls

    other_ca = make_tls(tmp_path).ca_pem
    with pytest.raises(ConnaisseurError) as err:
        await run(keyless_validator({"fulcioCert": other_ca}), KEYLESS_OPTIONS, KEYLESS)
    assert err.value.category is Category.SIGNATURE_INVALID


# ------------------------------------------------------------------ key references and config


async def test_k8s_key_reference_reads_cosign_pub_through_the_api(
    signers: dict[str, Signer],
) -> None:
    reg, digest = signed_image(signers["p256"])
    kube = FakeKubernetesApi([cosign_secret("keys", "signing", signers["p256"].public_pem)])
    v = validator([{"name": "default", "key": "k8s://keys/signing"}], reg, kubernetes=kube)
    assert (await run(v)).digest == digest


async def test_k8s_key_rotation_takes_effect_after_the_key_ttl(
    signers: dict[str, Signer],
) -> None:
    # Before: a k8s:// key was read once and kept for the life of the process, so a rotated
    # (or revoked) key kept verifying until a restart.
    reg = FakeRegistry()
    old_digest, new_digest = push_image(reg, "old", seed="o"), push_image(reg, "new", seed="n")
    push_signatures(reg, old_digest, sign_layout([signed(signers["p256"], old_digest)]))
    push_signatures(reg, new_digest, sign_layout([signed(signers["other"], new_digest)]))

    def secret(signer: Signer) -> dict[str, Any]:
        return cosign_secret("keys", "signing", signer.public_pem)

    kube = FakeKubernetesApi([secret(signers["p256"])])
    clock = FakeClock(frozen=True)
    roots = [{"name": "default", "key": "k8s://keys/signing"}]
    settings = validator_settings({"name": "cosign", "type": "cosign", "trustRoots": roots})
    v = CosignValidator(settings, reg, FakeTransparencyLog(), clock, kubernetes=kube)

    async def verifies(tag: str) -> bool:
        image = dataclasses.replace(IMAGE, tag=tag)
        try:
            await v.validate(image, NO_TLOG, Deadline.after(clock, 5))
        except ConnaisseurError:
            return False
        return True

    assert await verifies("old")
    kube.add(secret(signers["other"]))  # the key is rotated
    clock.advance(K8S_KEY_TTL_SECONDS - 1)
    assert await verifies("old")  # still within the key's time to live
    clock.advance(2)
    assert not await verifies("old")
    assert await verifies("new")
    kube.objects.clear()  # the Secret is deleted: nothing stale is trusted after the TTL
    clock.advance(K8S_KEY_TTL_SECONDS + 1)
    assert not await verifies("new")


async def test_k8s_key_reference_to_a_missing_secret_is_trust_root_not_found(
    signers: dict[str, Signer],
) -> None:
    reg, _ = signed_image(signers["p256"])
    v = validator(
        [{"name": "default", "key": "k8s://keys/gone"}], reg, kubernetes=FakeKubernetesApi()
    )
    with pytest.raises(TrustRootError):
        await run(v)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"cosign.pub": "not base64!"}, "has no cosign.pub"),
        ({"other": "AAAA"}, "has no cosign.pub"),
        ({"cosign.pub": base64.b64encode(b"\xff\xfe").decode()}, "is not PEM"),
    ],
)
async def test_k8s_key_secret_without_a_usable_cosign_pub_is_no_trust_root(
    signers: dict[str, Signer], data: dict[str, str], says: str
) -> None:
    reg, _ = signed_image(signers["p256"])
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "signing", "namespace": "keys"},
        "data": data,
    }
    kube = FakeKubernetesApi([secret])
    v = validator([{"name": "default", "key": "k8s://keys/signing"}], reg, kubernetes=kube)
    with pytest.raises(TrustRootError, match=says):
        await run(v)


@pytest.mark.parametrize(
    ("ref", "scheme"),
    [
        ("awskms://alias/x", "awskms://"),
        ("gcpkms://projects/p", "gcpkms://"),
        ("hashivault://k", "hashivault://"),
        ("pkcs11:token=x", "pkcs11:"),
    ],
)
def test_kms_key_references_fail_at_load_as_not_supported(ref: str, scheme: str) -> None:
    with pytest.raises(ConfigError) as err:
        validator([{"name": "default", "key": ref}], FakeRegistry())
    problem = f"validators[0].trustRoots[0].key: key reference {scheme} is not supported"
    assert err.value.problems == (problem,)


def test_malformed_signature_manifest_layers_are_bounded() -> None:
    from connaisseur.domain.cosign_layout import MAX_SIGNATURE_LAYERS, signature_layers

    layer = {"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": "sha256:x"}
    with pytest.raises(VerificationError) as err:
        signature_layers(json.dumps({"layers": [layer] * (MAX_SIGNATURE_LAYERS + 1)}).encode())
    assert err.value.category is Category.MALFORMED_TRUST_DATA
    assert err.value.message == f"signature manifest has more than {MAX_SIGNATURE_LAYERS} layers"
