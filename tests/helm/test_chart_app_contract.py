"""The chart and the application agree: what the pods get is what the application reads.

Each test renders the chart, builds what the kubelet would give the container (environment and
mounted files, ``tests/support/helm_pod.py``) and runs the application's own start-up code over it
(``config.env.infrastructure``, ``config.loader.load_settings``, ``adapters.cache``,
``config.alerting``, ``config.container``) — so a renamed variable, key, file or path on either
side fails here.
"""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path
from typing import cast

import pytest
import yaml

from connaisseur.adapters.cache import load_hmac_key
from connaisseur.adapters.http import HttpClient
from connaisseur.config.alerting import build_alerting, template_dirs
from connaisseur.config.container import make_child_approval
from connaisseur.config.env import infrastructure
from tests.support.helm import (
    ALL_FEATURES,
    CHART,
    HelmError,
    Manifest,
    Renderer,
    app_config,
    find,
    names,
)
from tests.support.helm_pod import (
    arg_value,
    container,
    in_root,
    materialize,
    object_data,
    pod_spec,
    resolve_env,
    served_settings,
)

pytestmark = pytest.mark.helm

REDIS_KINDS = {
    ("Deployment", "connaisseur-redis"),
    ("Service", "connaisseur-redis-service"),
    ("Secret", "connaisseur-redis-secret"),
    ("Secret", "connaisseur-redis-tls"),
    ("Secret", "connaisseur-cache-key"),
}
CACHE_ENV = {"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "CACHE_HMAC_KEY"}


def tls_handshake(cert_pem: str, key_pem: str, ca_file: Path, hostname: str) -> None:
    """A TLS handshake in memory, the client set up as the application's Redis client is.

    Raises:
        ssl.SSLError: the server certificate is not trusted for ``hostname``.
    """
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    key_dir = ca_file.parent.parent / "server-material"
    key_dir.mkdir(exist_ok=True)
    (key_dir / "tls.crt").write_text(cert_pem)
    (key_dir / "tls.key").write_text(key_pem)
    server_ctx.load_cert_chain(key_dir / "tls.crt", key_dir / "tls.key")
    client_ctx = ssl.create_default_context(cafile=str(ca_file))  # hostname check, required
    client_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("TLS handshake did not finish")


# --- Redis and the cache key -----------------------------------------------------------------


def test_the_app_finds_redis_and_the_hmac_key_in_the_rendered_pod(
    default_manifests: list[Manifest], tmp_path: Path
) -> None:
    infra = infrastructure(resolve_env(default_manifests, "connaisseur"))
    # host and port: the Redis Service, which forwards to the TLS port Redis listens on
    service = find(default_manifests, "Service", "connaisseur-redis-service")
    (port,) = service["spec"]["ports"]
    host = infra.redis_host
    assert host is not None
    assert host == service["metadata"]["name"]
    assert infra.redis_port == port["port"]
    redis = container(default_manifests, "connaisseur-redis")
    (redis_port,) = [p for p in redis["ports"] if p["name"] == port["targetPort"]]
    assert arg_value(redis["args"], "--tls-port") == str(redis_port["containerPort"])
    assert arg_value(redis["args"], "--port") == "0"  # TLS only, and the app speaks TLS
    assert infra.redis_tls is True
    # password: the generated one, the same the Redis server requires
    generated = object_data(default_manifests, "Secret", "connaisseur-redis-secret")
    assert infra.redis_password == generated["REDIS_PASSWORD"]
    assert arg_value(redis["args"], "--requirepass") == "$(REDIS_PASSWORD)"
    assert resolve_env(default_manifests, "connaisseur-redis")["REDIS_PASSWORD"] == (
        infra.redis_password
    )
    # CA: the mounted file the app reads is the Redis CA, and it trusts Redis under its host name
    materialize(default_manifests, "connaisseur", tmp_path)
    ca_file = in_root(tmp_path, infra.redis_ca_file)
    assert ca_file.name == "tls.crt"
    redis_tls = object_data(default_manifests, "Secret", "connaisseur-redis-tls")
    assert ca_file.read_text() == redis_tls["ca.crt"]
    tls_handshake(redis_tls["tls.crt"], redis_tls["tls.key"], ca_file, host)
    # HMAC key: from the chart's Secret, so every replica has the same one
    key = object_data(default_manifests, "Secret", "connaisseur-cache-key")["hmac.key"]
    assert len(key) >= 32
    assert infra.cache_hmac_key == key
    assert load_hmac_key(infra.cache_hmac_key, tmp_path / "unused") == key.encode()
    assert not (tmp_path / "unused").exists()  # no per-process fallback key


def test_each_install_gets_its_own_hmac_key(render: Renderer) -> None:
    keys = {object_data(render(), "Secret", "connaisseur-cache-key")["hmac.key"] for _ in range(2)}
    assert len(keys) == 2


@pytest.mark.parametrize("expiry", ["0", "-5"])
def test_cache_off_renders_no_redis_and_no_redis_environment(
    render: Renderer, expiry: str, tmp_path: Path
) -> None:
    manifests = render([], [f"application.features.cache.expirySeconds={expiry}"])
    rendered = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    assert not rendered & REDIS_KINDS
    env = resolve_env(manifests, "connaisseur")
    assert not CACHE_ENV & env.keys()
    assert "/app/redis-certs" not in materialize(manifests, "connaisseur", tmp_path)
    settings = served_settings(manifests, tmp_path)
    assert settings.features.cache_expiry_seconds <= 0  # → config.container: no cache at all
    assert settings.infra.redis_host is None


def test_supplied_hmac_key_is_used(render: Renderer) -> None:
    key = "k" * 40
    manifests = render([], [f"kubernetes.redis.hmacKey={key}"])
    assert infrastructure(resolve_env(manifests, "connaisseur")).cache_hmac_key == key


def test_short_supplied_hmac_key_is_refused(render: Renderer) -> None:
    with pytest.raises(HelmError, match="at least 32 characters"):
        render([], ["kubernetes.redis.hmacKey=too-short"])


def test_existing_hmac_key_secret_is_referenced_not_created(render: Renderer) -> None:
    manifests = render([], ["kubernetes.redis.hmacKeySecret=my-cache-key"])
    assert "connaisseur-cache-key" not in names(manifests, "Secret")
    assert "my-cache-key" not in names(manifests, "Secret")
    (var,) = [
        v for v in container(manifests, "connaisseur")["env"] if v["name"] == "CACHE_HMAC_KEY"
    ]
    assert var["valueFrom"]["secretKeyRef"] == {"name": "my-cache-key", "key": "hmac.key"}


# --- alerting: a Secret mounted as /app/alerts/config.yaml ------------------------------------


def test_the_app_reads_alerting_from_the_rendered_secret_file(
    all_features_manifests: list[Manifest], tmp_path: Path
) -> None:
    values = yaml.safe_load(ALL_FEATURES.read_text())["alerting"]
    assert "alerting" not in app_config(all_features_manifests)  # only the Secret carries it
    settings = served_settings(all_features_manifests, tmp_path)
    args = container(all_features_manifests, "connaisseur")["args"]
    mounted = in_root(tmp_path, arg_value(args, "--alerting-config"))
    assert yaml.safe_load(mounted.read_text()) == values
    assert settings.alerting["clusterIdentifier"] == values["clusterIdentifier"]
    alerting = build_alerting(
        settings.alerting, template_dirs(settings.infra.alert_templates_dir), "pod"
    )
    assert alerting is not None
    opsgenie = alerting.reject[0]
    assert opsgenie.url == values["rejectRequest"]["receivers"][0]["receiverUrl"]
    assert ("Authorization", "GenieKey 00000000-0000-0000-0000-000000000000") in opsgenie.headers
    assert len(alerting.admit) == len(values["admitRequest"]["receivers"])


def test_without_alerting_the_pod_gets_no_alerting_file(
    default_manifests: list[Manifest], tmp_path: Path
) -> None:
    args = container(default_manifests, "connaisseur")["args"]
    assert "--alerting-config" not in args
    assert "connaisseur-alert-config" not in names(default_manifests, "Secret")
    assert "/app/alerts/config.yaml" not in materialize(default_manifests, "connaisseur", tmp_path)
    assert served_settings(default_manifests, tmp_path / "again").alerting is None


# --- custom alert templates ------------------------------------------------------------------


def test_custom_alert_templates_are_mounted_where_the_app_looks(
    render: Renderer, tmp_path: Path
) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "alert_payload_templates" / "team.json").write_text(
        '{"text": "{{ alert_message }} on {{ cluster }}", "priority": {{ priority }}}'
    )
    values = tmp_path / "alerting.yaml"
    receiver = {"template": "team", "receiverUrl": "https://alerts.example.com/hook"}
    values.write_text(yaml.safe_dump({"alerting": {"rejectRequest": {"receivers": [receiver]}}}))
    manifests = render([values], chart=chart)
    root = tmp_path / "pod"
    settings = served_settings(manifests, root)
    mounted = materialize(manifests, "connaisseur", root)
    assert settings.infra.alert_templates_dir in mounted
    dirs = template_dirs(in_root(root, settings.infra.alert_templates_dir))
    alerting = build_alerting(settings.alerting, dirs, settings.infra.pod_name)
    assert alerting is not None
    assert alerting.reject[0].template.name == "team"


# --- API access: child approval and k8s:// keys ----------------------------------------------


K8S_KEY_VALIDATOR = [
    "application.validators[0].name=team",
    "application.validators[0].type=cosign",
    "application.validators[0].trustRoots[0].name=default",
    "application.validators[0].trustRoots[0].key=k8s://signing/team-key",
    "application.policy[0].pattern=*:*",
    "application.policy[0].validator=team",
]


@pytest.mark.parametrize(
    ("sets", "owner_lookups", "key_reads"),
    [
        pytest.param([], True, False, id="default"),
        pytest.param(
            ["application.features.automaticChildApproval=false"], False, False, id="child-off"
        ),
        pytest.param(
            ["application.features.resourceValidationMode=podsOnly"], False, False, id="podsOnly"
        ),
        pytest.param(
            ["application.features.automaticChildApproval=false", *K8S_KEY_VALIDATOR],
            False,
            True,
            id="k8s-key",
        ),
    ],
)
def test_api_access_is_granted_exactly_when_the_app_uses_the_api(
    render: Renderer, tmp_path: Path, sets: list[str], owner_lookups: bool, key_reads: bool
) -> None:
    manifests = render([], sets)
    settings = served_settings(manifests, tmp_path)
    # the adapter is only constructed here; it sends nothing until an owner is looked up
    app_looks_up_owners = make_child_approval(settings, cast(HttpClient, None)) is not None
    assert app_looks_up_owners is owner_lookups
    assert ("ClusterRole" in {m["kind"] for m in manifests}) is owner_lookups
    app_reads_keys = any(
        root.key_ref is not None for v in settings.validators for root in v.trust_roots
    )
    assert app_reads_keys is key_reads
    assert ("Role" in {m["kind"] for m in manifests}) is key_reads
    # the token the adapter presents (kube_token_file) is mounted exactly when it is needed
    spec = pod_spec(manifests, "connaisseur")
    assert spec["automountServiceAccountToken"] is (owner_lookups or key_reads)
    assert settings.infra.kube_host  # the kubelet's KUBERNETES_SERVICE_HOST reaches the app
    assert settings.infra.kube_token_file.startswith("/var/run/secrets/kubernetes.io/")
