"""The composition root: the only module that knows every concrete class.

``Container`` is built from frozen :class:`Settings`; :func:`running` gives it its aiohttp
``ClientSession`` for as long as an entry point uses it, and closes what it opened.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from dependency_injector import containers, providers

from connaisseur.adapters.alerts import AiohttpAlertSink
from connaisseur.adapters.bundle_export import (
    BundleRecorder,
    RecordingLog,
    RecordingNotary,
    RecordingRegistry,
)
from connaisseur.adapters.bundle_files import BundleFiles
from connaisseur.adapters.cache import InMemoryCache, RedisCache, load_hmac_key, redis_client
from connaisseur.adapters.clock import SystemClock
from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.kubernetes import AiohttpKubernetesApi, ServiceAccountToken
from connaisseur.adapters.metrics import PrometheusMetrics
from connaisseur.adapters.mirrored_registry import Hop, HopHealth, MirroredRegistry, Route
from connaisseur.adapters.notary import NotaryV1HttpClient
from connaisseur.adapters.oci_layout import OciLayoutRegistry
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.adapters.rekor import AiohttpRekorClient
from connaisseur.adapters.rekor_directory import RekorDirectoryLog
from connaisseur.adapters.sigstore_trust import public_good_material
from connaisseur.adapters.tuf_directory import TufDirectoryNotary
from connaisseur.adapters.upstream_auth import UpstreamAuth
from connaisseur.application.alerting import AlertingSettings, Notifier
from connaisseur.application.approval import ChildApproval
from connaisseur.application.caching import fingerprint_hash
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.explain import ExplainImage, InspectImage
from connaisseur.application.notaryv1 import NotaryV1Validator
from connaisseur.application.notation import NotationValidator
from connaisseur.application.ports import (
    Cache,
    Clock,
    Endpoint,
    KubernetesApi,
    Notary,
    Registry,
    TransparencyLog,
)
from connaisseur.application.review import ReviewAdmission
from connaisseur.application.settings import (
    Infrastructure,
    ResourceValidationMode,
    Settings,
    ValidatorSettings,
)
from connaisseur.application.validators import (
    StaticValidator,
    Validator,
    ValidatorFactory,
    build_validators,
)
from connaisseur.application.verify import CachePolicy, VerifyImage
from connaisseur.config.alerting import build_alerting, template_dirs
from connaisseur.config.configuration import (
    TrustDataSources,
    registry_mirrors,
    trust_data_sources,
)
from connaisseur.config.mirrors import Mirror, RegistryMirrors
from connaisseur.domain.errors import ConfigError
from connaisseur.domain.sigstore import TransparencyMaterial

log = logging.getLogger("connaisseur")


@dataclass(frozen=True, slots=True)
class TrustDataPorts:
    """The adapters one validator reads trust data through."""

    registry: Registry
    notary: Notary
    tlog: TransparencyLog
    #: the bundle's files when the ports read one (its read counter is what ``make bench`` shows)
    files: BundleFiles | None = None


class TrustDataAdapters:
    """Chooses, per validator, the adapters behind the Registry, Notary and TransparencyLog
    ports: the upstream clients — read through the validator's registry mirrors when it has
    any (docs/decisions/0050-registry-mirrors.md) — or a bundle's files when the configuration
    points the validator at one (docs/decisions/0056-adapter-choice-is-configuration.md)."""

    def __init__(
        self,
        http: HttpClient,
        clock: Clock,
        sources: TrustDataSources,
        max_file_bytes: int,
        recorder: BundleRecorder | None = None,
        mirrors: RegistryMirrors | None = None,
    ) -> None:
        """``recorder``: every validator reads its upstreams, and what they answer is recorded
        for ``connaisseur bundle export`` (whatever the sources say) under the images' own
        names, mirrors or not."""
        self._mirrors = mirrors or RegistryMirrors()
        # One client per protocol: challenges, tokens and plain-HTTP fallbacks are shared; one
        # authenticator (token cache, credential policy) serves both.
        auth = UpstreamAuth(http)
        plain_http = self._mirrors.plain_http_registries()
        self._direct = AiohttpRegistryClient(http, clock, auth=auth, plain_http=plain_http)
        self._health = HopHealth(clock)  # shared: a mirror that is down rests for everyone
        self._recorder = recorder
        notary: Notary = NotaryV1HttpClient(http, auth)
        tlog: TransparencyLog = AiohttpRekorClient(http)
        if recorder is not None:
            notary = RecordingNotary(notary, recorder)
            tlog = RecordingLog(tlog, recorder)
            sources = TrustDataSources()
        self._notary, self._tlog = notary, tlog
        #: the ports through the global mirrors (a bundle export completes Notary data through
        #: them; referrers through the registry each image was read through)
        self.upstream = self._upstream(self._mirrors.shared)
        self._sources = sources
        self._max_file_bytes = max_file_bytes
        self._bundles: dict[Path, TrustDataPorts] = {}

    def _upstream(self, mirrors: Sequence[Mirror]) -> TrustDataPorts:
        """The upstream clients, the registry read through ``mirrors`` (recorded outermost,
        so a bundle names the images as the policy does)."""
        routes = mirror_routes(mirrors)
        registry: Registry = self._direct
        if routes:
            registry = MirroredRegistry(self._direct, routes, self._health)
        if self._recorder is not None:
            registry = RecordingRegistry(registry, self._recorder)
        return TrustDataPorts(registry=registry, notary=self._notary, tlog=self._tlog)

    def for_validator(self, name: str) -> TrustDataPorts:
        """The ports validator ``name`` reads through.

        Raises:
            ConfigError: its bundle directory cannot be listed.
        """
        path = self._sources.bundle_for(name)
        if path is None:
            own = self._mirrors.for_validator(name)
            return self.upstream if own == self._mirrors.shared else self._upstream(own)
        if path not in self._bundles:  # one read-once file cache per bundle, shared
            files = BundleFiles(path, max_file_bytes=self._max_file_bytes)
            self._bundles[path] = TrustDataPorts(
                registry=OciLayoutRegistry(
                    files,
                    max_manifest_bytes=self._max_file_bytes,
                    max_blob_bytes=self._max_file_bytes,
                ),
                notary=TufDirectoryNotary(files),
                tlog=RekorDirectoryLog(files),
                files=files,
            )
        return self._bundles[path]


def validator_factories(
    http: HttpClient,
    clock: Clock,
    kubernetes: KubernetesApi | None = None,
    adapters: TrustDataAdapters | None = None,
) -> dict[str, ValidatorFactory]:
    """Validator type → factory; each new validator type is registered here.

    ``kubernetes`` reads cosign keys given as ``k8s://<namespace>/<secret>`` (in cluster only);
    ``adapters`` chooses where each validator reads trust data (upstreams when not given).
    """
    ports = adapters or TrustDataAdapters(http, clock, TrustDataSources(), 4 * 1024 * 1024)

    def notaryv1(settings: ValidatorSettings) -> Validator:
        return NotaryV1Validator(settings, ports.for_validator(settings.name).notary, clock)

    def cosign(settings: ValidatorSettings) -> Validator:
        chosen = ports.for_validator(settings.name)
        return CosignValidator(
            settings,
            chosen.registry,
            chosen.tlog,
            clock,
            kubernetes=kubernetes,
            public_good=sigstore_material(settings),
        )

    def notation(settings: ValidatorSettings) -> Validator:
        return NotationValidator(settings, ports.for_validator(settings.name).registry, clock)

    return {"static": StaticValidator, "notaryv1": notaryv1, "cosign": cosign, "notation": notation}


def mirror_routes(mirrors: Sequence[Mirror]) -> list[Route]:
    """The registry adapter's routes for the configured mirrors."""
    return [
        Route(
            source=m.source,
            hops=tuple(
                Hop(
                    registry=e.registry,
                    prefix=e.prefix,
                    endpoint=Endpoint(auth=e.auth, ca_pem=e.cert.pem if e.cert else None),
                    resolve=e.resolve,
                )
                for e in m.endpoints
            ),
            to_source=m.fallback_to_source,
        )
        for m in mirrors
    ]


def sigstore_material(settings: ValidatorSettings) -> TransparencyMaterial | None:
    """The Sigstore material the validator starts from: its own trusted root
    (docs/decisions/0052-private-sigstore-trusted-root.md), else the public-good one — read from
    the sigstore package only when some of it is used."""
    custom = settings.transparency
    if custom.trusted_root is not None:
        return custom.trusted_root
    if custom.rekor_pubkey and custom.fulcio_cert and custom.ct_log_pubkey:
        return None
    return _public_good_cached()


@functools.cache
def _public_good_cached() -> TransparencyMaterial:
    return public_good_material()


def make_validators(
    settings: Settings, factories: Mapping[str, ValidatorFactory]
) -> dict[str, Validator]:
    return build_validators(settings.validators, factories)


def make_cache(settings: Settings, metrics: PrometheusMetrics) -> Cache | None:
    """No cache when ``expirySeconds <= 0``; Redis when ``REDIS_HOST`` is set; else in-process.

    Raises:
        ConfigError: the Redis CA file is unreadable or invalid.
    """
    if settings.features.cache_expiry_seconds <= 0:
        return None
    infra = settings.infra
    if not infra.redis_host:
        return InMemoryCache(infra.cache_max_entries, on_lookup=metrics.cache_lookup)
    try:
        client = redis_client(
            infra.redis_host,
            infra.redis_port,
            infra.redis_password,
            tls=infra.redis_tls,
            ca_file=infra.redis_ca_file,
        )
    except (OSError, ValueError) as e:
        raise ConfigError(f"redis: cannot use CA file {infra.redis_ca_file}: {e}") from e
    key = load_hmac_key(infra.cache_hmac_key, Path(infra.cache_hmac_key_file))
    return RedisCache(client, key, on_lookup=metrics.cache_lookup)


def make_cache_policy(settings: Settings, cache: Cache | None) -> CachePolicy:
    sources, mirrors = trust_data_sources(settings), registry_mirrors(settings)
    return CachePolicy(
        cache=cache,
        ttl_seconds=settings.features.cache_expiry_seconds,
        cache_errors=settings.features.cache_errors,
        validator_fingerprints={
            # Where trust data is read from (a bundle; mirrors, which decide where a tag is
            # resolved) is part of what a cached verdict was made under.
            v.name: fingerprint_hash(
                (
                    *v.fingerprint(),
                    sources.fingerprint(v.name),
                    *(m.fingerprint() for m in mirrors.for_validator(v.name)),
                )
            )
            for v in settings.validators
        },
    )


def make_trust_data_adapters(
    settings: Settings, http: HttpClient, clock: Clock, recorder: BundleRecorder | None
) -> TrustDataAdapters:
    return TrustDataAdapters(
        http,
        clock,
        trust_data_sources(settings),
        settings.limits.max_document_bytes,
        recorder,
        mirrors=registry_mirrors(settings),
    )


def make_child_approval(settings: Settings, http: HttpClient) -> ChildApproval | None:
    """The owner lookup through the in-cluster API, or ``None`` when off or out of cluster."""
    features, infra = settings.features, settings.infra
    if not features.automatic_child_approval:
        return None
    if features.resource_validation_mode is ResourceValidationMode.PODS_ONLY:
        return None
    if not infra.kube_host:
        return None
    return ChildApproval(kube_api(infra, http))


def make_kubernetes_api(settings: Settings, http: HttpClient) -> KubernetesApi | None:
    """The in-cluster API with the pod's service account, or ``None`` out of cluster."""
    return kube_api(settings.infra, http) if settings.infra.kube_host else None


def kube_api(infra: Infrastructure, http: HttpClient) -> AiohttpKubernetesApi:
    host = infra.kube_host or ""
    host = f"[{host}]" if ":" in host else host
    try:
        ca_pem: str | None = Path(infra.kube_ca_file).read_text()
    except OSError:
        ca_pem = None  # then the system roots are used, as a client-go fallback would
    token = ServiceAccountToken(Path(infra.kube_token_file))
    return AiohttpKubernetesApi(http, f"https://{host}:{infra.kube_port}", token, ca_pem)


def make_notifier(
    alerting: AlertingSettings | None, http: HttpClient, clock: Clock
) -> Notifier | None:
    return None if alerting is None else Notifier(alerting, AiohttpAlertSink(http), clock)


def warn_about_features(settings: Settings) -> None:
    """Start-up warnings for feature combinations (once, not per image)."""
    features = settings.features
    if not features.automatic_child_approval:
        return
    if features.resource_validation_mode is ResourceValidationMode.PODS_ONLY:
        log.warning(
            "insecure configuration detected: automatic child approval enabled, while only pod "
            "admissions are rejected. Pretending automatic child approval was disabled"
        )
    elif not settings.infra.kube_host:
        log.warning(
            "automatic child approval is enabled but KUBERNETES_SERVICE_HOST is not set: "
            "children are verified like any other object"
        )


class Container(containers.DeclarativeContainer):
    """Wires settings, adapters and use cases."""

    settings = providers.Dependency(instance_of=Settings)
    session = providers.Dependency(instance_of=aiohttp.ClientSession)
    alerting: providers.Object[AlertingSettings | None] = providers.Object(None)
    recorder: providers.Object[BundleRecorder | None] = providers.Object(None)

    clock = providers.Singleton(SystemClock)
    metrics = providers.Singleton(PrometheusMetrics)

    http = providers.Singleton(
        HttpClient,
        session=session,
        max_body_bytes=settings.provided.limits.max_document_bytes,
        on_response=metrics.provided.upstream_response,
    )

    kubernetes = providers.Singleton(make_kubernetes_api, settings=settings, http=http)
    trust_data = providers.Singleton(
        make_trust_data_adapters, settings=settings, http=http, clock=clock, recorder=recorder
    )
    factories = providers.Singleton(
        validator_factories, http=http, clock=clock, kubernetes=kubernetes, adapters=trust_data
    )
    validators = providers.Singleton(make_validators, settings=settings, factories=factories)

    cache = providers.Singleton(make_cache, settings=settings, metrics=metrics)
    cache_policy = providers.Singleton(make_cache_policy, settings=settings, cache=cache)
    child_approval = providers.Singleton(make_child_approval, settings=settings, http=http)
    notifier = providers.Singleton(make_notifier, alerting=alerting, http=http, clock=clock)

    verify_image = providers.Singleton(
        VerifyImage,
        policy=settings.provided.policy,
        validators=validators,
        metrics=metrics,
        caching=cache_policy,
        limits=settings.provided.limits,
    )
    explain_image = providers.Singleton(ExplainImage, settings=settings)
    inspect_image = providers.Singleton(InspectImage, settings=settings, validators=validators)
    review_admission = providers.Singleton(
        ReviewAdmission,
        verify=verify_image,
        features=settings.provided.features,
        clock=clock,
        metrics=metrics,
        child_approval=child_approval,
        notifier=notifier,
        limits=settings.provided.limits,
    )


def build_container(
    settings: Settings, clock: Clock | None = None, recorder: BundleRecorder | None = None
) -> Container:
    """A container for ``settings``; ``clock`` fixes the wall clock (``--now``); ``recorder``
    records what the validators fetch (``connaisseur bundle export``).

    Alert templates and the cache's TLS material are loaded here, so that a broken template
    or CA file stops start-up instead of failing requests.

    Raises:
        ConfigError: an alert template, receiver or the Redis CA file is unusable.
    """
    container = Container(settings=settings)
    infra = settings.infra
    alerting = build_alerting(
        settings.alerting, template_dirs(infra.alert_templates_dir), infra.pod_name
    )
    container.alerting.override(providers.Object(alerting))
    if clock is not None:
        container.clock.override(providers.Object(clock))
    if recorder is not None:
        container.recorder.override(providers.Object(recorder))
    container.cache()
    return container


@contextlib.asynccontextmanager
async def running(container: Container) -> AsyncIterator[Container]:
    """``container`` in use, for as long as the webhook or a command needs it: the lifecycle
    every entry point shares (``serve``, ``review``, ``verify``, ``explain``, ``check-config``).

    On entry the one outbound HTTP session is opened and every validator is built, so a broken
    one stops start-up before the first request. On exit background alerts finish, the Redis
    pool closes and then the HTTP session.
    """
    connector = aiohttp.TCPConnector(limit=100, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        container.session.override(session)
        try:
            container.validators()
            yield container
        finally:
            await _close(container)
            container.session.reset_override()


async def _close(container: Container) -> None:
    """Let background alerts finish and close the Redis connection pool."""
    notifier = container.notifier()
    if notifier is not None:
        await notifier.drain()
    cache = container.cache()
    if isinstance(cache, RedisCache):
        await cache.close()
