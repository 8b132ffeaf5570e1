"""Attacks on Notary v1 trust data, played by the simulator: each one is denied with its category.

Table-driven over real signatures (session keys). D4 rows assert our stricter behaviour.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.notaryv1 import pinned_keys, roles_to_fetch, verify_notary_image
from tests.support.notary_sim import NotaryV1Simulator, SimKey, SimRole, digest_of, sim_key
from tests.support.settings import trust_root

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
PAST = NOW - dt.timedelta(days=1)
A, B = digest_of("image-a"), digest_of("image-b")


@dataclass
class Scenario:
    """Files to serve, versions already seen, rule delegations, pinned keys, reference."""

    files: Mapping[str, bytes | None]
    pinned: list[str]
    known: dict[str, int] | None = None
    delegations: tuple[str, ...] = ()
    tag: str = "v1"
    digest: str = ""


def run(s: Scenario) -> str:
    roots = [trust_root("notaryv1", f"k{i}", key=pem) for i, pem in enumerate(s.pinned)]
    files = {r: s.files.get(r) for r in roles_to_fetch(s.delegations)}
    return verify_notary_image(
        files,
        pinned_keys(roots),
        NOW,
        tag=s.tag,
        digest=s.digest,
        delegations=s.delegations,
        known_versions=s.known,
    ).digest


def signed_sim() -> NotaryV1Simulator:
    sim = NotaryV1Simulator()
    sim.sign_tag("v1", A)
    return sim


def plain(sim: NotaryV1Simulator, **kw: object) -> Scenario:
    return Scenario(files=dict(sim.publish()), pinned=[sim.pinned_pem], **kw)  # type: ignore[arg-type]


# --- scenarios ----------------------------------------------------------------------------


def baseline() -> Scenario:
    return plain(signed_sim())


def rollback_of_versions() -> Scenario:
    sim = signed_sim()
    old = sim.publish()
    sim.bump("timestamp", "snapshot", "targets")
    newer = sim.publish()
    seen = {"root": 1, "timestamp": 2, "snapshot": 2, "targets": 2}
    assert json.loads(newer["targets"])["signed"]["version"] == seen["targets"]
    return Scenario(files=dict(old), pinned=[sim.pinned_pem], known=seen)


def expired(role: str) -> Scenario:
    """Trust data whose ``role`` metadata expired (served as if current: a freeze attack)."""
    sim = signed_sim()
    metadata: SimRole = getattr(sim, role)
    metadata.expires = PAST
    return plain(sim)


def freeze_expired_timestamp() -> Scenario:
    return expired("timestamp")


def freeze_expired_snapshot() -> Scenario:
    return expired("snapshot")


def expired_root() -> Scenario:
    return expired("root")


def mixed(*stale: str) -> Scenario:
    """A new publication (v1 re-signed) served with the ``stale`` roles of the old one."""
    sim = signed_sim()
    old = sim.publish()
    sim.sign_tag("v1", B)
    sim.bump("targets", "snapshot", "timestamp")
    files = dict(sim.publish())
    files.update({role: old[role] for role in stale})
    return Scenario(files=files, pinned=[sim.pinned_pem])


def mix_and_match_targets() -> Scenario:
    return mixed("targets")


def mix_and_match_snapshot() -> Scenario:
    return mixed("snapshot", "targets")


def arbitrary_key_signs_targets() -> Scenario:
    sim = signed_sim()
    sim.targets.signers = [sim_key("attacker")]
    return plain(sim)


def targets_below_threshold() -> Scenario:
    sim = signed_sim()
    sim.targets.keys = [sim_key("targets"), sim_key("targets-2")]
    sim.targets.threshold = 2
    sim.targets.signers = [sim_key("targets")]
    return plain(sim)


def root_below_own_threshold_d4() -> Scenario:
    sim = signed_sim()
    sim.root.keys = [sim_key("root", x509_cert=True), sim_key("root-2", x509_cert=True)]
    sim.root.threshold = 2
    sim.root.signers = [sim.root.keys[0]]
    return plain(sim)


def root_signed_by_unlisted_pinned_key_d4() -> Scenario:
    """The pinned key signs root, but root's own root role lists another key (D4)."""
    sim = signed_sim()
    sim.root.signers = [sim_key("root", x509_cert=True)]
    sim.root.keys = [sim_key("root-2", x509_cert=True)]
    return Scenario(files=dict(sim.publish()), pinned=[sim_key("root").public_pem])


def wrong_pinned_key() -> Scenario:
    return Scenario(files=dict(signed_sim().publish()), pinned=[sim_key("other").public_pem])


def tampered_targets() -> Scenario:
    files = dict(signed_sim().publish())
    doc = json.loads(files["targets"])
    doc["signed"]["targets"]["v1"]["hashes"]["sha256"] = base64.b64encode(b"\0" * 32).decode()
    files["targets"] = json.dumps(doc, separators=(",", ":")).encode()
    return Scenario(files=files, pinned=[sim_key("root").public_pem])


def delegation_outside_its_paths_d4() -> Scenario:
    sim = signed_sim()
    sim.delegate("targets/releases", sim_key("releases"), paths=["stable-"])
    sim.sign_tag("v1", B, role="targets/releases")
    return plain(sim)


def delegation_below_threshold_d4() -> Scenario:
    sim = signed_sim()
    d = sim.delegate("targets/releases", sim_key("releases"), sim_key("releases-2"))
    d.threshold, d.signers = 2, [sim_key("releases")]
    sim.sign_tag("v1", B, role="targets/releases")
    return plain(sim)


def delegation_signed_by_foreign_key() -> Scenario:
    sim = signed_sim()
    d = sim.delegate("targets/releases", sim_key("releases"))
    d.signers = [sim_key("attacker")]
    sim.sign_tag("v1", B, role="targets/releases")
    return plain(sim)


def required_delegation_declared_but_unpublished_d4() -> Scenario:
    sim = signed_sim()
    sim.delegate("targets/ci", sim_key("ci"))
    files = dict(sim.publish())
    sim.unlisted_in_snapshot.add("targets/ci")
    files = dict(sim.publish())
    del files["targets/ci"]
    return Scenario(files=files, pinned=[sim.pinned_pem], delegations=("ci",))


def required_delegation_not_declared() -> Scenario:
    sim = signed_sim()
    sim.delegate("targets/ci", sim_key("ci"))
    sim.sign_tag("v1", A, role="targets/ci")
    return plain(sim, delegations=("ci", "qa"))


def ci_and_qa_sign_v1(ci: str, qa: str) -> NotaryV1Simulator:
    """Trust data with delegations ``targets/ci`` and ``targets/qa``, signing v1 as given."""
    sim = signed_sim()
    sim.delegate("targets/ci", sim_key("ci"))
    sim.delegate("targets/qa", sim_key("qa"))
    sim.sign_tag("v1", ci, role="targets/ci")
    sim.sign_tag("v1", qa, role="targets/qa")
    return sim


def required_delegations_disagree() -> Scenario:
    return plain(ci_and_qa_sign_v1(A, B), delegations=("ci", "targets/qa"))


def delegations_required_but_none() -> Scenario:
    return plain(signed_sim(), delegations=("ci",))


def tag_not_signed() -> Scenario:
    return plain(signed_sim(), tag="v2")


def digest_not_signed() -> Scenario:
    return plain(signed_sim(), tag="", digest=B)


def tag_and_other_digest() -> Scenario:
    return plain(signed_sim(), digest=B)


def no_trust_data() -> Scenario:
    return Scenario(files={}, pinned=[sim_key("root").public_pem])


def snapshot_hash_of_root_mismatch() -> Scenario:
    sim = signed_sim()
    files = dict(sim.publish())
    sim.root.version = 2
    files["root"] = sim.publish()["root"]
    return Scenario(files=files, pinned=[sim.pinned_pem])


ATTACKS: list[tuple[Callable[[], Scenario], Category]] = [
    (rollback_of_versions, Category.ROLLBACK),
    (freeze_expired_timestamp, Category.EXPIRED),
    (freeze_expired_snapshot, Category.EXPIRED),
    (expired_root, Category.EXPIRED),
    (mix_and_match_targets, Category.CHECKSUM_MISMATCH),
    (mix_and_match_snapshot, Category.CHECKSUM_MISMATCH),
    (snapshot_hash_of_root_mismatch, Category.CHECKSUM_MISMATCH),
    (arbitrary_key_signs_targets, Category.SIGNATURE_INVALID),
    (targets_below_threshold, Category.SIGNATURE_INVALID),
    (root_below_own_threshold_d4, Category.SIGNATURE_INVALID),
    (root_signed_by_unlisted_pinned_key_d4, Category.SIGNATURE_INVALID),
    (wrong_pinned_key, Category.SIGNATURE_INVALID),
    (tampered_targets, Category.SIGNATURE_INVALID),
    (delegation_outside_its_paths_d4, Category.REFERENCE_NOT_FOUND),
    (delegation_below_threshold_d4, Category.SIGNATURE_INVALID),
    (delegation_signed_by_foreign_key, Category.SIGNATURE_INVALID),
    (required_delegation_declared_but_unpublished_d4, Category.DELEGATION_NOT_FOUND),
    (required_delegation_not_declared, Category.DELEGATION_NOT_FOUND),
    (required_delegations_disagree, Category.AMBIGUOUS_DIGEST),
    (delegations_required_but_none, Category.NO_DELEGATIONS),
    (tag_not_signed, Category.REFERENCE_NOT_FOUND),
    (digest_not_signed, Category.REFERENCE_NOT_FOUND),
    (tag_and_other_digest, Category.DIGEST_MISMATCH),
    (no_trust_data, Category.NO_TRUST_DATA),
]


@pytest.mark.parametrize(("scenario", "category"), ATTACKS, ids=[a[0].__name__ for a in ATTACKS])
def test_attack_is_denied_with_its_category(
    scenario: Callable[[], Scenario], category: Category
) -> None:
    with pytest.raises(VerificationError) as info:
        run(scenario())
    assert info.value.category is category, info.value.message


def test_baseline_verifies_the_signed_tag_and_digest() -> None:
    assert run(baseline()) == A
    s = baseline()
    s.tag, s.digest = "", A
    assert run(s) == A


def test_rollback_scenario_is_accepted_without_history() -> None:
    """Without a remembered version the old set is valid: the denial above is due to history."""
    s = rollback_of_versions()
    s.known = None
    assert run(s) == A


def test_published_releases_wins_over_targets_docker_cli_rule() -> None:
    sim = signed_sim()
    sim.delegate("targets/releases", sim_key("releases"))
    sim.sign_tag("v1", B, role="targets/releases")
    assert run(plain(sim)) == B


def test_declared_but_unpublished_releases_falls_back_to_targets() -> None:
    sim = signed_sim()
    sim.delegate("targets/releases", sim_key("releases"))
    sim.unlisted_in_snapshot.add("targets/releases")
    files = dict(sim.publish())
    del files["targets/releases"]
    assert run(Scenario(files=files, pinned=[sim.pinned_pem])) == A


def test_delegation_within_its_paths_is_trusted() -> None:
    sim = signed_sim()
    sim.delegate("targets/releases", sim_key("releases"), paths=["v"])
    sim.sign_tag("v1", B, role="targets/releases")
    assert run(plain(sim)) == B


def test_all_required_delegations_agreeing_verify() -> None:
    assert run(plain(ci_and_qa_sign_v1(B, B), delegations=("ci", "qa"))) == B


def test_star_trust_root_needs_every_pinned_key() -> None:
    sim = signed_sim()
    sim.root.keys = [sim_key("root", x509_cert=True), sim_key("root-2", x509_cert=True)]
    files = dict(sim.publish())
    both = [sim_key("root").public_pem, sim_key("root-2").public_pem]
    assert run(Scenario(files=files, pinned=both)) == A
    with pytest.raises(VerificationError) as info:
        run(Scenario(files=files, pinned=[*both, sim_key("other").public_pem]))
    assert info.value.category is Category.SIGNATURE_INVALID


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_rsa_pss_and_ed25519_role_keys_verify(kind: str) -> None:
    sim = signed_sim()
    sim.targets.keys = [sim_key(f"targets-{kind}", kind)]
    sim.snapshot.keys = [sim_key(f"snapshot-{kind}", kind, x509_cert=kind == "rsa")]
    assert run(plain(sim)) == A


def test_der_encoded_ecdsa_signatures_verify() -> None:
    class DerKey(SimKey):
        def sign(self, message: bytes) -> dict[str, str]:
            assert isinstance(self.private, ec.EllipticCurvePrivateKey)
            sig = self.private.sign(message, ec.ECDSA(hashes.SHA256()))
            return {"keyid": self.key_id, "method": "ecdsa", "sig": base64.b64encode(sig).decode()}

    sim = signed_sim()
    k = sim_key("targets")
    sim.targets.keys = [DerKey(k.private, k.keytype, k.public_b64)]
    assert run(plain(sim)) == A
