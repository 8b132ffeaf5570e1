"""Fuzz targets: every parser that sees attacker bytes, and the invariant each must keep.

A target turns one input (bytes) into a call of the product's own code, the way the product
calls it. The invariant, checked by :func:`check`: the call returns a value or raises the
product's own error — the ``ConnaisseurError`` family (cosign's and Notation's ``Rejection``
included), each with a :class:`Category` — never another exception. Hangs are caught by the
runner (a deadline per input). Async adapters run on one private event loop over a scripted
HTTP double, so the adapter code that reads status, headers and bodies is the code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from connaisseur.adapters.notary import NotaryV1HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.adapters.rekor import AiohttpRekorClient
from connaisseur.adapters.upstream_auth import parse_challenge, parse_challenges
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.application.notation import NotationValidator
from connaisseur.application.ports import Endpoint
from connaisseur.application.settings import AuthSettings, Credentials
from connaisseur.config.loader import load_settings
from connaisseur.domain import cosign, cosign_layout, rekor, sigstore
from connaisseur.domain import sigstore_bundle as sigstore_bundle_module
from connaisseur.domain.cosign_referrers import ReferrerManifest
from connaisseur.domain.cosign_signed import BundleSigned, ClassicSignature
from connaisseur.domain.errors import Category, ConnaisseurError, Rejection
from connaisseur.domain.image import MAX_REFERENCE_LENGTH, ImageReference
from connaisseur.domain.notaryv1 import pinned_keys, verify_notary_image
from connaisseur.domain.notation import verify_envelope
from connaisseur.domain.notation_envelope import (
    MEDIA_TYPE_COSE,
    MEDIA_TYPE_JWS,
    Target,
    parse_envelope,
)
from connaisseur.domain.notation_policy import NotationPolicy, NotationTrustStore
from connaisseur.domain.oci import Descriptor
from connaisseur.domain.policy import Policy, RuleOptions
from connaisseur.domain.policy import Rule as PolicyRule
from connaisseur.domain.rfc3161 import Der, parse_der, verify_timestamp_token
from connaisseur.domain.trust import PemPublicKey, load_certificates
from connaisseur.domain.workload import Workload
from connaisseur.entrypoints.admission import decode_json, parse_review
from tests.fuzz import corpus, make_seeds
from tests.fuzz.make_seeds import IMAGE_MANIFEST
from tests.support.fake_oci_registry import ServedRegistry
from tests.support.fakes import FakeClock, FakeTransparencyLog, ScriptedHttp
from tests.support.settings import trust_root, validator_settings


class Finding(Exception):
    """An input broke a target's invariant: an exception outside the product's error family."""


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    """One parser under fuzz: what it is, how one input is fed to it, and its seeds."""

    name: str
    parser: str
    run: Callable[[bytes], object]
    seeds: Callable[[], list[bytes]]
    #: Leading bytes that select a variant (role, media type) and are kept by JSON mutations.
    prefix: int = 0


def check(target: FuzzTarget, data: bytes) -> None:
    """Feed ``data`` to ``target``.

    Raises:
        Finding: the target raised anything but the product's own categorised error.
    """
    try:
        target.run(data)
    except ConnaisseurError as e:
        if not isinstance(e.category, Category):
            raise Finding(f"{target.name}: {type(e).__name__} without a category") from e
    except Exception as e:
        raise Finding(f"{target.name}: {type(e).__name__}: {str(e)[:200]}") from e


def text(data: bytes) -> str:
    """Attacker text as the product receives it: decoded JSON strings may hold any code point."""
    return data.decode("utf-8", "surrogateescape")


NOW = datetime(2026, 11, 29, tzinfo=UTC)
CLOCK = FakeClock(NOW, frozen=True)
_LOOP = asyncio.new_event_loop()


def deadline(seconds: float = 0.05) -> Deadline:
    """A frozen budget: short enough that a ``Retry-After`` is never waited for."""
    return Deadline.after(CLOCK, seconds)


def run_sync(coroutine: Any) -> Any:
    return _LOOP.run_until_complete(coroutine)


# --- AdmissionReview and workloads ------------------------------------------------------------


def admission_review(data: bytes) -> None:
    command, _ = parse_review(decode_json(data, 100), 1.0)
    workload = Workload.parse(command.kind, command.object, command.namespace)
    for slot in workload.slots:
        workload.patch_path(slot)
    if command.operation == "UPDATE":
        Workload.parse(command.kind, command.old_object, command.namespace)


# --- image references and policy patterns -----------------------------------------------------


def image_reference(data: bytes) -> None:
    ref = ImageReference.parse(text(data))
    again = ImageReference.parse(ref.name)
    if again.name != ref.name:
        raise AssertionError(f"normalised name is not a fixed point: {ref.name!r}")
    _ = (ref.notary_reference, ref.identifier, ref.scope(ref.tag), ref.with_digest("ab" * 32))


def policy_pattern(data: bytes) -> None:
    """``pattern`` NUL ``image``: compile the rule, match the image, select among rules. The
    policy only ever sees normalised names of parsed references, which are at most
    ``MAX_REFERENCE_LENGTH`` long: a longer image is cut there."""
    pattern, _, image = text(data).partition("\0")
    image = image[:MAX_REFERENCE_LENGTH]
    rule = PolicyRule(pattern=pattern, validator="v")
    rule.matches(image)
    policy = Policy((PolicyRule(pattern="*:*", validator="default"), rule))
    policy.match(image)
    policy.matching(image)


# --- configuration ----------------------------------------------------------------------------

_CONFIG_FILE = Path(tempfile.gettempdir()) / f"connaisseur-fuzz-config-{os.getpid()}.yaml"


def config_loader(data: bytes) -> None:
    _CONFIG_FILE.write_bytes(data)
    load_settings(_CONFIG_FILE, secrets_dir=None, env={})


# --- Notary v1 (TUF) --------------------------------------------------------------------------

_NOTARY_KEY = (corpus.DATA / "notaryv1" / "trust_data" / "keys" / "root.pub").read_text()
_NOTARY_PINNED = pinned_keys([trust_root("notaryv1", "root", key=_NOTARY_KEY)])
NOTARY_FILES = corpus.notary_files()


def notary_tuf(data: bytes) -> None:
    """Role byte + served bytes: that role file replaced in a GUN that verifies as served."""
    if not data:
        return
    role = corpus.NOTARY_ROLES[data[0] % len(corpus.NOTARY_ROLES)]
    files: dict[str, bytes | None] = {**NOTARY_FILES, role: data[1:]}
    for tag, delegations in (("sign", ()), ("sign", ("del1",)), ("v1", ("del2",))):
        verify_notary_image(files, _NOTARY_PINNED, NOW, tag=tag, digest="", delegations=delegations)


# --- cosign -----------------------------------------------------------------------------------


def cosign_payload(data: bytes) -> None:
    cosign_layout.SimpleSigningPayload.parse(data)


_ALICE_PEM = (corpus.DATA / "cosign" / "alice.key").read_text()
_REKOR_KEY = sigstore.keyring(PemPublicKey.parse(_ALICE_PEM))
_MATERIAL = sigstore.TransparencyMaterial(rekor_keys=_REKOR_KEY)
_ALICE_ROOT = {"name": "alice", "key": _ALICE_PEM}
_ALICE = trust_root("cosign", **_ALICE_ROOT)


def rekor_bundle(data: bytes) -> None:
    """The bundle annotation, then the same bytes as a Rekor API answer through the adapter."""
    try:
        entry = rekor.RekorEntry.from_bundle(text(data))
        rekor.verify_log_entry(
            entry,
            _MATERIAL,
            rekor.Logged(
                signature=b"sig",
                signer_key=_ALICE.key.key,  # type: ignore[union-attr]
                data_sha256=hashlib.sha256(b"payload").digest(),
            ),
        )
    except ConnaisseurError:
        pass
    client = AiohttpRekorClient(ScriptedHttp([(200, {}, b'["uuid"]'), (200, {}, data)]))  # type: ignore[arg-type]
    run_sync(client.find_entries("https://rekor.test", "sha256:00", deadline()))


# --- cosign keyless: the attacker's certificate ----------------------------------------------

_KEYLESS_SIGNED = json.loads((corpus.SEEDS / "keyless-signature.json").read_text())
KEYLESS_LAYER = cosign_layout.SignatureLayer(
    payload=_KEYLESS_SIGNED["payload"].encode(), signature=_KEYLESS_SIGNED["signature"]
)
KEYLESS_VERIFIER = trust_root(
    "cosign",
    name="keyless",
    keyless={"issuer": make_seeds.KEYLESS_ISSUER, "subject": make_seeds.KEYLESS_SUBJECT},
)
_KEYLESS_CT_KEY = yaml.safe_load((corpus.DATA / "cosign" / "11_keyless.yaml").read_text())
KEYLESS_MATERIAL = sigstore.TransparencyMaterial(
    fulcio=(
        sigstore.FulcioAuthority(
            roots=tuple(load_certificates((corpus.SEEDS / "keyless-fulcio.pem").read_text()))
        ),
    ),
    ct_keys=sigstore.keyring(PemPublicKey.parse(_KEYLESS_CT_KEY["host"]["ctLogPubkey"])),
)
KEYLESS_CHECKS = tuple(
    cosign.CheckOptions(
        image=ImageReference.parse(make_seeds.KEYLESS_IMAGE + ":1"),
        digest=make_seeds.KEYLESS_DIGEST,
        verify_tlog=False,
        verify_sct=sct,
    )
    for sct in (False, True)
)


def cosign_keyless(data: bytes) -> None:
    """Format byte + certificate (even: DER, put into the annotation as PEM; odd: the
    annotation's text): a keyless signature whose certificate the registry chose, signed by
    the key of the seed leaves. Parsed, its key taken (``_signer_key``), the signature checked,
    then the chain to the seed Fulcio, the identity and the SCTs (with and without SCTs), and
    the offline pre-check that decides on a Rekor lookup."""
    if not data:
        return
    body = data[1:]
    certificate = text(corpus.pem_certificate(body) if data[0] % 2 == 0 else body)
    layer = ClassicSignature(dataclasses.replace(KEYLESS_LAYER, certificate=certificate))
    for options in KEYLESS_CHECKS:
        with contextlib.suppress(Rejection):
            cosign.check_signature(
                layer,
                KEYLESS_VERIFIER,
                None,
                KEYLESS_MATERIAL,
                options,
                log_entries=(),
                now=NOW,
            )
    cosign.worth_a_log_lookup(
        layer, KEYLESS_VERIFIER, None, KEYLESS_MATERIAL, KEYLESS_CHECKS[1], now=NOW
    )


# --- Sigstore bundles and cosign referrers ----------------------------------------------------

_BUNDLE_DIGEST = "sha256:1b38fb514519f61229f8fb324108fdc8e0d1778fe1b22f3b561a8744ed14eeee"
_BUNDLE_ROOTS = tuple(
    trust_root("cosign", name, key=(corpus.SEEDS / f"{name}.pem").read_text())
    for name in ("sigstore-bundle-key", "sigstore-bundle-logged-key")
)
_BUNDLE_MATERIAL = sigstore.TransparencyMaterial(
    rekor_keys=sigstore.keyring(
        PemPublicKey.parse((corpus.SEEDS / "sigstore-bundle-rekor.pem").read_text())
    )
)
_BUNDLE_CHECKS = tuple(
    cosign.CheckOptions(
        image=ImageReference.parse("127.0.0.1:45123/demo/app"),
        digest=_BUNDLE_DIGEST,
        verify_tlog=tlog,
        verify_sct=False,
    )
    for tlog in (False, True)
)


def sigstore_bundle(data: bytes) -> None:
    """A Sigstore bundle: parsed (sigstore_models, DSSE, statement), then judged for both seed
    keys with and without the transparency log: signature, inclusion proof, checkpoint,
    promise, entry body, timestamps, claims."""
    try:
        bundle = sigstore_bundle_module.SigstoreBundle.parse(data)
    except ConnaisseurError:
        return
    signed = BundleSigned(bundle)
    for root in _BUNDLE_ROOTS:
        for options in _BUNDLE_CHECKS:
            with contextlib.suppress(Rejection):
                cosign.check_signature(
                    signed,
                    root,
                    root.key.key if root.key else None,
                    _BUNDLE_MATERIAL,
                    options,
                    now=NOW,
                )


def referrer_manifest(data: bytes) -> None:
    """A referrer manifest as cosign's discovery reads it: classified, then its signature
    layers (a classic referrer)."""
    listed = Descriptor(digest=_BUNDLE_DIGEST, artifact_type="application/vnd.oci.empty.v1+json")
    with contextlib.suppress(ConnaisseurError):
        manifest = ReferrerManifest.read(data, listed)
        if manifest.classic:
            cosign_layout.signature_layers(manifest.body)


# --- Notation ---------------------------------------------------------------------------------

_NOTATION_WRITTEN = [
    {
        "name": "default",
        "cert": (corpus.SEEDS / "ca.pem").read_text(),
        "tsCert": (corpus.SEEDS / "tsa-ca.pem").read_text(),
    },
    {"name": "conformance", "cert": (corpus.DATA / "notation" / "ca.pem").read_text()},
]
_NOTATION_ROOTS = tuple(trust_root("notation", **r) for r in _NOTATION_WRITTEN)
_NOTATION_STORE = NotationTrustStore.from_roots(_NOTATION_ROOTS)
_NOTATION_POLICY = NotationPolicy.build(
    "registry.test/app", RuleOptions(trust_root="*"), _NOTATION_ROOTS
)
_MEDIA_TYPES = (MEDIA_TYPE_JWS, MEDIA_TYPE_COSE)
#: What the generated seed envelopes sign, so that a seed verifies all the way.
_SEED_TARGET = Target(
    digest="sha256:" + hashlib.sha256(IMAGE_MANIFEST).hexdigest(), size=len(IMAGE_MANIFEST)
)


def notation_envelope(data: bytes) -> None:
    """Media-type byte + envelope: parsed, then verified against the seed CA and TSA."""
    if not data:
        return
    envelope = parse_envelope(_MEDIA_TYPES[data[0] % 2], data[1:])
    verify_envelope(
        envelope,
        target=_SEED_TARGET,
        policy=_NOTATION_POLICY,
        store=_NOTATION_STORE,
        now=datetime.now(UTC),
    )


# --- RFC 3161 / DER ---------------------------------------------------------------------------

TSA_ROOTS = load_certificates((corpus.SEEDS / "tsa-ca.pem").read_text())


def _walk(element: Der, depth: int = 0) -> None:
    if element.tag & 0x20 and depth < 64:
        for child in element.children():
            _walk(child, depth + 1)


def rfc3161_token(data: bytes) -> None:
    """The token as Notation verifies it; then the same bytes through the bare DER reader."""
    with contextlib.suppress(ConnaisseurError):
        verify_timestamp_token(data, b"fuzz seed signature", TSA_ROOTS)
    _walk(parse_der(data))


# --- registry: manifests, referrers, auth challenges ------------------------------------------


IMAGE = ImageReference.parse("registry.test/app:1")
ENDPOINT = Endpoint(
    auth=AuthSettings(credentials=(("registry.test", Credentials(username="u", password="p")),))
)
_JSON = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
_COSIGN_PAYLOAD = corpus.cosign_payloads()[0]
_NOTATION_BLOB = (corpus.SEEDS / "notation.jws.json").read_bytes()


_COSIGN = validator_settings({"name": "cosign", "type": "cosign", "trustRoots": [_ALICE_ROOT]})
_NOTATION = validator_settings(
    {"name": "notation", "type": "notation", "trustRoots": _NOTATION_WRITTEN}
)
_NO_TLOG = RuleOptions(verify_in_transparency_log=False, trust_root="*")


def _served_blob(digest: str) -> bytes:
    return _NOTATION_BLOB if digest.endswith("1") else _COSIGN_PAYLOAD


def registry_manifest(data: bytes) -> None:
    """The body as a manifest and as a referrers index through the registry adapter, then the
    manifest as a cosign signature manifest and a Notation signature manifest."""
    served = [(200, _JSON, data)]
    manifest = run_sync(
        AiohttpRegistryClient(ScriptedHttp(served), CLOCK).manifest(  # type: ignore[arg-type]
            IMAGE, "1", ENDPOINT, deadline()
        )
    )
    referrers = run_sync(
        AiohttpRegistryClient(ScriptedHttp(served), CLOCK).referrers(  # type: ignore[arg-type]
            IMAGE.with_digest("sha256:" + "1" * 64), "", ENDPOINT, deadline()
        )
    )
    registry = ServedRegistry(manifest, referrers, _served_blob)
    for validator in (
        CosignValidator(_COSIGN, registry, FakeTransparencyLog(), CLOCK),
        NotationValidator(_NOTATION, registry, CLOCK),
    ):
        try:
            run_sync(validator.validate(IMAGE, _NO_TLOG, deadline(5.0)))
        except ConnaisseurError:
            continue


def auth_challenge(data: bytes) -> None:
    """``WWW-Authenticate`` value, newline, token answer: both parsers, then the registry and
    Notary token flows (with a ``Retry-After`` of the same value on the way)."""
    header, _, token = text(data).partition("\n")
    parse_challenge(header)
    parse_challenges(header)
    body = token.encode("utf-8", "surrogateescape")
    headers = {"WWW-Authenticate": header, "Retry-After": header}
    script = [(401, headers, b""), (200, {}, body), (429, headers, b""), (200, _JSON, b"{}")]
    with contextlib.suppress(ConnaisseurError):
        run_sync(
            AiohttpRegistryClient(ScriptedHttp(script), CLOCK).manifest(  # type: ignore[arg-type]
                IMAGE, "1", ENDPOINT, deadline()
            )
        )
    notary = NotaryV1HttpClient(ScriptedHttp(script))  # type: ignore[arg-type]
    run_sync(
        notary.fetch_roles(
            "https://notary.test", "registry.test/app", ["root"], ENDPOINT, deadline()
        )
    )


TARGETS: dict[str, FuzzTarget] = {
    t.name: t
    for t in (
        FuzzTarget(
            "admission_review",
            "entrypoints.admission (decode_json, parse_review) + domain.workload",
            admission_review,
            corpus.admission_reviews,
        ),
        FuzzTarget(
            "image_reference",
            "domain.image.ImageReference",
            image_reference,
            corpus.image_references,
        ),
        FuzzTarget(
            "policy_pattern", "domain.policy (Rule, Policy)", policy_pattern, corpus.policy_patterns
        ),
        FuzzTarget(
            "config_loader", "config.loader.load_settings", config_loader, corpus.configurations
        ),
        FuzzTarget(
            "notary_tuf",
            "domain.notaryv1 + domain.tuf (TUF metadata of a real GUN)",
            notary_tuf,
            corpus.notary_roles,
            prefix=1,
        ),
        FuzzTarget(
            "cosign_payload",
            "domain.cosign_layout.SimpleSigningPayload",
            cosign_payload,
            corpus.cosign_payloads,
        ),
        FuzzTarget(
            "cosign_keyless",
            "domain.cosign keyless path (certificate, _signer_key, chain, identity, SCT)",
            cosign_keyless,
            corpus.keyless_certificates,
            prefix=1,
        ),
        FuzzTarget(
            "sigstore_bundle",
            "domain.sigstore_bundle + dsse + rekor (proof, checkpoint, bodies) + cosign",
            sigstore_bundle,
            corpus.sigstore_bundles,
        ),
        FuzzTarget(
            "referrer_manifest",
            "domain.cosign_referrers.ReferrerManifest + cosign_layout.signature_layers",
            referrer_manifest,
            corpus.referrer_manifests,
        ),
        FuzzTarget(
            "rekor_bundle",
            "domain.rekor.RekorEntry (bundle, API entry) + adapters.rekor",
            rekor_bundle,
            corpus.rekor_bundles,
        ),
        FuzzTarget(
            "notation_envelope",
            "domain.notation_envelope (JWS, COSE) + domain.notation",
            notation_envelope,
            corpus.notation_envelopes,
            prefix=1,
        ),
        FuzzTarget(
            "rfc3161_token",
            "domain.rfc3161 (token, DER reader)",
            rfc3161_token,
            corpus.timestamp_tokens,
        ),
        FuzzTarget(
            "registry_manifest",
            "adapters.registry (manifest, referrers) + cosign/Notation signature manifests",
            registry_manifest,
            corpus.registry_manifests,
        ),
        FuzzTarget(
            "auth_challenge",
            "adapters.upstream_auth (challenges, token answers), Retry-After",
            auth_challenge,
            corpus.auth_challenges,
        ),
    )
}
