"""The composition root: the only module that knows every concrete class.

``Container`` is built from frozen :class:`Settings`; the aiohttp ``ClientSession`` is created by
the running process (webhook start-up or CLI) and provided with ``container.session.override``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import aiohttp
from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.http import HttpClient
from adapters.metrics import PrometheusMetrics
from adapters.notary import NotaryV1HttpClient
from adapters.registry import AiohttpRegistryClient
from adapters.rekor import AiohttpRekorClient
from adapters.sigstore_trust import public_good_material
from application.cosign import CosignValidator
from application.notaryv1 import NotaryV1Validator
from application.notation import NotationValidator
from application.ports import Clock
from application.review import ReviewAdmission
from application.settings import Settings, ValidatorSettings
from application.validators import (
    StaticValidator,
    Validator,
    ValidatorFactory,
    build_validators,
)
from application.verify import VerifyImage
from domain.cosign import TransparencyMaterial


def validator_factories(http: HttpClient, clock: Clock) -> dict[str, ValidatorFactory]:
    """Validator type → factory; each new validator type is registered here."""
    # One client per protocol: challenges, tokens and plain-HTTP fallbacks are shared.
    notary = NotaryV1HttpClient(http)
    registry = AiohttpRegistryClient(http, clock)
    rekor = AiohttpRekorClient(http)

    def notaryv1(settings: ValidatorSettings) -> Validator:
        return NotaryV1Validator(settings, notary, clock)

    def cosign(settings: ValidatorSettings) -> Validator:
        # The public-good trust material is read from the sigstore package only when needed.
        return CosignValidator(settings, registry, rekor, clock, public_good=_public_good(settings))

    def notation(settings: ValidatorSettings) -> Validator:
        return NotationValidator(settings, registry, clock)

    return {"static": StaticValidator, "notaryv1": notaryv1, "cosign": cosign, "notation": notation}


def _public_good(settings: ValidatorSettings) -> TransparencyMaterial | None:
    custom = settings.transparency
    if custom is not None and custom.rekor_pubkey and custom.fulcio_cert and custom.ct_log_pubkey:
        return None
    return _public_good_cached()


@functools.cache
def _public_good_cached() -> TransparencyMaterial:
    return public_good_material()


def make_validators(
    settings: Settings, factories: Mapping[str, ValidatorFactory]
) -> dict[str, Validator]:
    return build_validators(settings.validators, factories)


class Container(containers.DeclarativeContainer):
    """Wires settings, adapters and use cases."""

    settings = providers.Dependency(instance_of=Settings)
    session = providers.Dependency(instance_of=aiohttp.ClientSession)

    clock = providers.Singleton(SystemClock)
    metrics = providers.Singleton(PrometheusMetrics)

    http = providers.Singleton(
        HttpClient,
        session=session,
        max_body_bytes=settings.provided.limits.max_document_bytes,
        on_response=metrics.provided.upstream_response,
    )

    factories = providers.Singleton(validator_factories, http=http, clock=clock)
    validators = providers.Singleton(make_validators, settings=settings, factories=factories)

    verify_image = providers.Singleton(
        VerifyImage,
        policy=settings.provided.policy,
        validators=validators,
        metrics=metrics,
    )
    review_admission = providers.Singleton(
        ReviewAdmission,
        verify=verify_image,
        features=settings.provided.features,
        clock=clock,
        metrics=metrics,
    )


def build_container(settings: Settings, clock: Clock | None = None) -> Container:
    """A container for ``settings``; ``clock`` fixes the wall clock (``--now``)."""
    container = Container(settings=settings)
    if clock is not None:
        container.clock.override(providers.Object(clock))
    return container
