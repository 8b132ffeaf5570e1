"""The Sigstore trusted root's ``validFor`` windows
(docs/decisions/0028-trust-material-has-a-lifetime.md).

A Rekor key vouches only for entries integrated inside its window, a CT log key only for SCTs
issued inside its window, a Fulcio CA only for certificates issued inside its window. Checked
with a real keyless signature (conformance vector, May 2024) against the public-good trusted
root shipped in the ``sigstore`` package — unmodified, it verifies; each window moved to end
just before the signature's moment, it must not.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from connaisseur.adapters.sigstore_trust import public_good_material
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.sigstore import Validity
from connaisseur.domain.trusted_root import material_from_trusted_root
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fakes import FakeClock, FakeTransparencyLog
from tests.support.settings import validator_settings

DATA = resources.files("tests") / "conformance" / "data" / "cosign"
IMAGE = ImageReference.parse("registry.example/team/app:keyless")
OPTIONS = RuleOptions(ignore_reference=True)
#: The vector's moments: certificate notBefore, SCT timestamp, Rekor integrated time.
ISSUED = datetime(2024, 5, 30, 15, 18, 10, tzinfo=UTC)
SCT_TIME = datetime(2024, 5, 30, 15, 18, 10, 907000, tzinfo=UTC)
INTEGRATED = datetime.fromtimestamp(1717082297, tz=UTC)
SECOND = timedelta(seconds=1)
Edit = Callable[[dict[str, Any]], None]


def public_good_document() -> dict[str, Any]:
    store = resources.files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    doc: dict[str, Any] = json.loads((store / "trusted_root.json").read_bytes())
    return doc


def registry() -> FakeRegistry:
    base = DATA / "securesystemsengineering" / "testimage" / "manifests"
    reg = FakeRegistry()
    digest = reg.put_manifest(IMAGE.repository, (base / "keyless.json").read_bytes(), "keyless")
    signatures = base / f"{digest.replace(':', '-')}.sig.json"
    reg.put_manifest(IMAGE.repository, signatures.read_bytes(), f"{digest.replace(':', '-')}.sig")
    for blob in (DATA / "securesystemsengineering" / "testimage" / "blobs").iterdir():
        reg.put_blob(IMAGE.repository, blob.read_bytes())
    return reg


async def verify(edit: Edit | None = None) -> str:
    doc = copy.deepcopy(public_good_document())
    if edit is not None:
        edit(doc)
    keyless = {"issuerRegex": "github", "subjectRegex": "philipp"}
    roots = [{"name": "default", "keyless": keyless}]
    settings = validator_settings({"name": "keyless", "type": "cosign", "trustRoots": roots})
    clock = FakeClock()
    validator = CosignValidator(
        settings,
        registry(),
        FakeTransparencyLog(),
        clock,
        public_good=material_from_trusted_root(doc),
    )
    try:
        await validator.validate(IMAGE, OPTIONS, Deadline.after(clock, 5))
    except ConnaisseurError as e:
        return f"{e.category.value}: {e.message}"
    return "verified"


def ending(section: str, before: datetime, path: tuple[str, ...] = ("validFor",)) -> Edit:
    """Every entry of ``section`` stops vouching one second before ``before``."""

    def edit(doc: dict[str, Any]) -> None:
        for entry in doc[section]:
            window = entry
            for key in path:
                window = window[key]
            window["end"] = (before - SECOND).isoformat().replace("+00:00", "Z")

    return edit


async def test_the_real_signature_verifies_against_the_public_good_root() -> None:
    assert await verify() == "verified"


async def test_sigstore_fulcio_ca_only_vouches_for_certificates_issued_in_its_window() -> None:
    # Before: every Fulcio CA of the trusted root vouched for certificates of any date.
    message = await verify(ending("certificateAuthorities", ISSUED))
    assert "no Fulcio certificate authority of the trusted root was in service" in message
    assert message.startswith(Category.SIGNATURE_INVALID.value)


async def test_sigstore_rekor_key_only_vouches_for_entries_integrated_in_its_window() -> None:
    message = await verify(ending("tlogs", INTEGRATED, ("publicKey", "validFor")))
    assert "vouches only for entries integrated" in message
    assert message.startswith(Category.SIGNATURE_INVALID.value)


async def test_sigstore_ct_key_only_vouches_for_scts_issued_in_its_window() -> None:
    message = await verify(ending("ctlogs", SCT_TIME, ("publicKey", "validFor")))
    assert "no SCT verifies" in message
    assert message.startswith(Category.SIGNATURE_INVALID.value)


def test_the_windows_of_the_shipped_trusted_root_are_kept() -> None:
    material = public_good_material()
    ended = [a.validity for a in material.fulcio if a.validity.end is not None]
    assert ended, "the first public-good Fulcio CA retired at the end of 2022"
    assert all(v.end is not None and v.end.year == 2022 for v in ended)
    assert any(v.end is None for v in (a.validity for a in material.fulcio))
    assert any(w.end is not None for w in material.ct_validity.values())
    assert all(w.start is not None for w in material.rekor_validity.values())


def test_the_shipped_timestamp_authorities_are_kept_with_their_windows() -> None:
    material = public_good_material()
    assert material.timestamp_authorities, "the public-good root names Sigstore's TSA"
    for authority in material.timestamp_authorities:
        assert authority.certificates
        assert authority.validity.start is not None


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        (Validity(start=ISSUED), ISSUED, ISSUED - SECOND),
        (Validity(end=ISSUED), ISSUED, ISSUED + SECOND),
        (Validity(), datetime(1970, 1, 1, tzinfo=UTC), None),
    ],
)
def test_a_window_includes_both_ends(
    window: Validity, inside: datetime, outside: datetime | None
) -> None:
    assert window.contains(inside)
    if outside is not None:
        assert not window.contains(outside)
