"""A ``CosignValidator`` over fakes, for the use-case tests: an image and its signatures pushed
to a :class:`FakeRegistry`, the validator configured as a user writes it (through the loader)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.domain.cosign_layout import signature_tag
from connaisseur.domain.errors import ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.verdict import TrustedDigest
from tests.support.cosign import Layout, Signer, image_manifest, payload, sign_layout
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fakes import FakeClock, FakeTransparencyLog
from tests.support.settings import validator_settings

IMAGE = ImageReference.parse("registry.example/team/app:1.0")
REPOSITORY = IMAGE.repository
CLOCK = FakeClock()
NO_TLOG = RuleOptions(verify_in_transparency_log=False)
Signed = tuple[bytes, bytes, dict[str, str]]


def push_image(reg: FakeRegistry, tag: str, seed: str = "a") -> str:
    """An image manifest (and its blobs) under ``tag``; returns its digest."""
    body, blobs = image_manifest(seed)
    for blob in blobs.values():
        reg.put_blob(REPOSITORY, blob)
    return reg.put_manifest(REPOSITORY, body, tag)


def push_signatures(reg: FakeRegistry, digest: str, layout: Layout) -> None:
    """The signature manifest of ``digest`` where cosign puts it (``sha256-<hex>.sig``)."""
    for blob in layout.blobs.values():
        reg.put_blob(REPOSITORY, blob)
    reg.put_manifest(REPOSITORY, layout.manifest, signature_tag(digest))


def validator(
    roots: Sequence[Mapping[str, Any]],
    registry: FakeRegistry,
    tlog: FakeTransparencyLog | None = None,
    host: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> CosignValidator:
    """A validator of the ``trustRoots`` (and ``host`` block) as a user writes them."""
    entry = {"name": "cosign", "type": "cosign", "trustRoots": list(roots), "host": host or {}}
    settings = validator_settings(entry)
    return CosignValidator(settings, registry, tlog or FakeTransparencyLog(), CLOCK, **kwargs)


def signed_image(*signers: Signer) -> tuple[FakeRegistry, str]:
    """A registry holding :data:`IMAGE` (tag ``1.0``) with one signature by each of ``signers``
    over its digest and repository; returns the registry and the digest."""
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([signed(signer, digest) for signer in signers]))
    return reg, digest


def signed(signer: Signer, digest: str, reference: str = IMAGE.context, **extra: str) -> Signed:
    """A simple-signing payload for ``digest``/``reference``, its signature and annotations."""
    body = payload(digest, reference)
    return body, signer.sign(body), dict(extra)


async def run(
    v: CosignValidator, options: RuleOptions = NO_TLOG, image: ImageReference = IMAGE
) -> TrustedDigest:
    return await v.validate(image, options, Deadline.after(CLOCK, 5))


async def denied(v: CosignValidator, options: RuleOptions = NO_TLOG) -> ConnaisseurError:
    """The error ``v`` denies :data:`IMAGE` with."""
    with pytest.raises(ConnaisseurError) as err:
        await run(v, options)
    return err.value
