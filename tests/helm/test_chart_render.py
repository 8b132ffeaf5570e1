"""What the chart renders: the Connaisseur 2.x deployment contract."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.helm import (
    ALL_FEATURES,
    CHART,
    NAMESPACE,
    HelmError,
    Manifest,
    Renderer,
    app_config,
    armed_webhook,
    find,
    names,
)

pytestmark = pytest.mark.helm

WORKLOAD_RESOURCES = {
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "daemonsets"),
    ("apps", "statefulsets"),
    ("", "pods"),
    ("", "pods/ephemeralcontainers"),
    ("", "replicationcontrollers"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
}
SSE_KEY_LINE = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsx28WV7BsQfnHF1kZmpdCTTLJaWe"
REDIS_DIGEST = "sha256:83edc2b8e9ffb1781a67bdab260a94674f802881838e20bba0f9a69d8cb40d70"


def connaisseur_container(manifests: list[Manifest]) -> Manifest:
    pod = find(manifests, "Deployment", "connaisseur")["spec"]["template"]["spec"]
    container: Manifest
    (container,) = pod["containers"]
    return container


def pod_spec(manifests: list[Manifest], name: str = "connaisseur") -> Manifest:
    spec: Manifest = find(manifests, "Deployment", name)["spec"]["template"]["spec"]
    return spec


def mounts(manifests: list[Manifest]) -> dict[str, str]:
    """mountPath → the Secret or ConfigMap behind it."""
    spec = pod_spec(manifests)
    volumes = {v["name"]: v for v in spec["volumes"]}
    out = {}
    for m in connaisseur_container(manifests)["volumeMounts"]:
        v = volumes[m["name"]]
        source = v.get("secret", {}).get("secretName") or v.get("configMap", {}).get("name")
        out[m["mountPath"]] = source or "emptyDir"
    return out


def env_data(manifests: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = find(manifests, "ConfigMap", "connaisseur-env")["data"]
    return data


def secret_text(manifest: Manifest, key: str) -> str:
    return base64.b64decode(manifest["data"][key]).decode()


# --- resources -------------------------------------------------------------------------------


def test_default_values_render_the_resources_of_connaisseur_chart_2x(
    default_manifests: list[Manifest],
) -> None:
    rendered = sorted((m["kind"], m["metadata"]["name"]) for m in default_manifests)
    assert rendered == sorted(
        [
            ("ServiceAccount", "connaisseur-serviceaccount"),
            ("Secret", "connaisseur-tls"),
            ("Secret", "connaisseur-redis-secret"),
            ("Secret", "connaisseur-redis-tls"),
            ("Secret", "connaisseur-cache-key"),  # new: the cache HMAC key (D5)
            ("ConfigMap", "connaisseur-app-config"),
            ("ConfigMap", "connaisseur-env"),
            ("ClusterRole", "connaisseur-cluster-role"),
            ("ClusterRoleBinding", "connaisseur-cluster-role-binding"),
            ("Service", "connaisseur-svc"),
            ("Service", "connaisseur-redis-service"),
            ("Deployment", "connaisseur"),
            ("Deployment", "connaisseur-redis"),
            ("MutatingWebhookConfiguration", "connaisseur-webhook"),
            ("MutatingWebhookConfiguration", "connaisseur-webhook"),
        ]
    )


def test_every_resource_carries_the_common_labels(all_features_manifests: list[Manifest]) -> None:
    for m in all_features_manifests:
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "connaisseur", m["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"].startswith("connaisseur-")
        assert labels["environment"] == "test"  # kubernetes.additionalLabels


# --- Deployment ------------------------------------------------------------------------------


def test_deployment_runs_three_replicas_spread_over_nodes(
    default_manifests: list[Manifest],
) -> None:
    deployment = find(default_manifests, "Deployment", "connaisseur")
    assert deployment["spec"]["replicas"] == 3
    (term,) = pod_spec(default_manifests)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["weight"] == 100
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    selector = term["podAffinityTerm"]["labelSelector"]["matchExpressions"][0]
    assert selector == {
        "key": "app.kubernetes.io/instance",
        "operator": "In",
        "values": ["connaisseur"],
    }
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] == (
        "connaisseur"
    )


def test_container_serves_https_on_5000_with_probes(default_manifests: list[Manifest]) -> None:
    c = connaisseur_container(default_manifests)
    assert c["ports"] == [{"name": "https", "containerPort": 5000, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "https", "scheme": "HTTPS"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "https", "scheme": "HTTPS"}
    assert c["args"] == [
        "serve",
        "--config",
        "/app/config/config.yaml",
        "--secrets-dir",
        "/app/secrets",
        "--tls-cert",
        "/app/certs/tls.crt",
        "--tls-key",
        "/app/certs/tls.key",
    ]
    assert c["image"] == "connaisseur-py:0.1.0"


def test_container_is_locked_down(default_manifests: list[Manifest]) -> None:
    c = connaisseur_container(default_manifests)
    assert c["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1000m", "memory": "512Mi"},
    }
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert (sc["runAsUser"], sc["runAsGroup"]) == (10001, 20001)


def test_container_mounts_match_the_paths_the_application_reads(
    default_manifests: list[Manifest],
) -> None:
    assert mounts(default_manifests) == {
        "/app/certs": "connaisseur-tls",
        "/app/config": "connaisseur-app-config",
        "/app/redis-certs": "connaisseur-redis-tls",
        "/tmp": "emptyDir",  # the only writable path (read-only root filesystem)
    }
    spec = pod_spec(default_manifests)
    certs = next(v for v in spec["volumes"] if v["name"] == "certs")
    assert [i["key"] for i in certs["secret"]["items"]] == ["tls.crt", "tls.key"]
    redis = next(v for v in spec["volumes"] if v["name"] == "redis-certs")
    # the Redis key never reaches Connaisseur: only the CA, under the file name it reads
    assert redis["secret"]["items"] == [{"key": "ca.crt", "path": "tls.crt"}]


def test_deployment_passes_through_scheduling_and_pull_settings(
    all_features_manifests: list[Manifest],
) -> None:
    deployment = find(all_features_manifests, "Deployment", "connaisseur")
    spec = pod_spec(all_features_manifests)
    c = connaisseur_container(all_features_manifests)
    assert deployment["spec"]["replicas"] == 5
    assert c["image"] == "registry.example.com/platform/connaisseur-py:0.1.0-test"
    assert c["imagePullPolicy"] == "Always"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"][0]["key"] == "dedicated"
    assert spec["securityContext"] == {"fsGroup": 20001}
    assert deployment["metadata"]["annotations"]["owner"] == "platform-team"
    # podLabels are part of the selector, like Connaisseur (selectors are immutable on upgrade)
    assert deployment["spec"]["selector"]["matchLabels"]["team"] == "security"
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "security"


def test_upstream_go_image_of_a_migrated_values_file_is_replaced(
    connaisseur_2x_manifests: list[Manifest],
) -> None:
    assert connaisseur_container(connaisseur_2x_manifests)["image"] == "connaisseur-py:0.1.0"


def test_config_checksum_rolls_pods_only_when_the_config_changes(
    render: Renderer, tmp_path: Path
) -> None:
    tls = supplied_tls_values(tmp_path)  # a fixed certificate: otherwise every render differs

    def checksum(*sets: str) -> str:
        manifests = render([tls], list(sets))
        deployment = find(manifests, "Deployment", "connaisseur")
        pod = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        assert deployment["metadata"]["annotations"]["checksum/config"] == pod
        return str(pod)

    base = checksum("application.features.cache.expirySeconds=0")
    assert checksum("application.features.cache.expirySeconds=0") == base
    assert checksum("application.features.cache.expirySeconds=0", "application.logLevel=debug") != (
        base
    )
    assert (
        checksum(
            "application.features.cache.expirySeconds=0",
            "kubernetes.deployment.envs.HTTPS_PROXY=http://proxy:3128",
        )
        != base
    )
    receiver = "alerting.rejectRequest.receivers[0]"
    alerting = [f"{receiver}.template=slack", f"{receiver}.receiverUrl=https://hooks.example/a"]
    with_alerting = checksum("application.features.cache.expirySeconds=0", *alerting)
    assert with_alerting != base
    rotated = [alerting[0], f"{receiver}.receiverUrl=https://hooks.example/b"]
    assert checksum("application.features.cache.expirySeconds=0", *rotated) != with_alerting


def supplied_tls_values(tmp_path: Path) -> Path:
    """A values file that supplies a fixed webhook certificate."""
    from tests.support.tls import self_signed

    cert, key = self_signed("connaisseur-svc.connaisseur.svc")
    path = tmp_path / "tls.yaml"
    path.write_text(
        yaml.safe_dump({"kubernetes": {"deployment": {"tls": {"cert": cert, "key": key}}}})
    )
    return path


# --- Service ---------------------------------------------------------------------------------


def test_service_maps_443_to_the_https_port(default_manifests: list[Manifest]) -> None:
    svc = find(default_manifests, "Service", "connaisseur-svc")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 443, "targetPort": "https", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/name": "connaisseur",
        "app.kubernetes.io/instance": "connaisseur",
    }


# --- webhook ---------------------------------------------------------------------------------


def test_armed_webhook_intercepts_the_eight_workload_kinds(
    default_manifests: list[Manifest],
) -> None:
    config = armed_webhook(default_manifests)
    assert config["metadata"]["annotations"]["helm.sh/hook"] == (
        "post-install,post-upgrade,post-rollback"
    )
    (hook,) = config["webhooks"]
    assert hook["name"] == "connaisseur-svc.connaisseur.svc"
    seen = set()
    for rule in hook["rules"]:
        assert rule["operations"] == ["CREATE", "UPDATE"]
        assert rule["apiVersions"] == ["v1"]
        seen |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
    assert seen == WORKLOAD_RESOURCES
    assert hook["failurePolicy"] == "Fail"
    assert hook["reinvocationPolicy"] == "Never"
    assert hook["timeoutSeconds"] == 30
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["clientConfig"]["service"] == {
        "name": "connaisseur-svc",
        "namespace": NAMESPACE,
        "path": "/mutate",
        "port": 443,
    }


def test_unarmed_copy_removes_the_webhook_on_uninstall(default_manifests: list[Manifest]) -> None:
    (unarmed,) = [
        m
        for m in default_manifests
        if m["kind"] == "MutatingWebhookConfiguration"
        and m["metadata"]["annotations"]["helm.sh/hook"] == "post-delete"
    ]
    assert unarmed["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == (
        "before-hook-creation,hook-succeeded,hook-failed"
    )
    (hook,) = unarmed["webhooks"]
    assert hook["rules"] == []
    assert hook["failurePolicy"] == "Ignore"


def test_webhook_policies_come_from_values(all_features_manifests: list[Manifest]) -> None:
    (hook,) = armed_webhook(all_features_manifests)["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["clientConfig"]["service"]["port"] == 8443


LABEL = "securesystemsengineering.connaisseur/webhook"
EXCLUDE_OWN = {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE]}


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        pytest.param(
            [],
            [{"key": LABEL, "operator": "NotIn", "values": ["ignore"]}, EXCLUDE_OWN],
            id="default-mode-ignore",
        ),
        pytest.param(
            ["application.features.namespacedValidation.mode=validate"],
            [{"key": LABEL, "operator": "In", "values": ["validate"]}, EXCLUDE_OWN],
            id="mode-validate",
        ),
        pytest.param(
            ["application.features.namespacedValidation=null"],
            [EXCLUDE_OWN],
            id="no-namespaced-validation",
        ),
        pytest.param(
            ["kubernetes.webhook.excludeReleaseNamespace=false"],
            [{"key": LABEL, "operator": "NotIn", "values": ["ignore"]}],
            id="own-namespace-validated",
        ),
        pytest.param(
            [
                "application.features.namespacedValidation=null",
                "kubernetes.webhook.excludeReleaseNamespace=false",
            ],
            None,
            id="all-namespaces",
        ),
    ],
)
def test_namespace_selector(render: Renderer, sets: list[str], expected: object) -> None:
    (hook,) = armed_webhook(render([], sets))["webhooks"]
    if expected is None:
        assert "namespaceSelector" not in hook
    else:
        assert hook["namespaceSelector"] == {"matchExpressions": expected}


def test_namespace_selector_excludes_the_actual_release_namespace(render: Renderer) -> None:
    (hook,) = armed_webhook(render(namespace="security"))["webhooks"]
    assert {
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": ["security"],
    } in hook["namespaceSelector"]["matchExpressions"]
    assert hook["name"] == "connaisseur-svc.security.svc"


# --- application config and environment --------------------------------------------------


def test_default_config_is_the_shipped_preconfiguration(default_manifests: list[Manifest]) -> None:
    config = app_config(default_manifests)
    assert [(v["name"], v["type"]) for v in config["validators"]] == [
        ("allow", "static"),
        ("deny", "static"),
        ("dockerhub", "notaryv1"),
    ]
    assert config["validators"][0]["approve"] is True
    assert config["validators"][1]["approve"] is False
    (root,) = config["validators"][2]["trustRoots"]
    assert root["name"] == "sse"
    assert SSE_KEY_LINE in root["key"]
    assert [(r["pattern"], r["validator"]) for r in config["policy"]] == [
        ("*:*", "deny"),
        (f"docker.io/library/redis@{REDIS_DIGEST}", "allow"),
        ("docker.io/securesystemsengineering/*:*", "dockerhub"),
        ("registry.k8s.io/*:*", "allow"),
    ]
    assert config["policy"][2]["with"] == {"trustRoot": "sse"}
    assert config["features"]["automaticChildApproval"] is True
    assert config["features"]["cache"] == {"expirySeconds": 30, "cacheErrors": True}
    assert config["logLevel"] == "info"
    assert "alerting" not in config


def test_default_env_is_connaisseurs(default_manifests: list[Manifest]) -> None:
    assert env_data(default_manifests) == {
        "AUTOMATIC_CHILD_APPROVAL": "true",
        "AUTOMATIC_UNCHANGED_APPROVAL": "false",
        "DETECTION_MODE": "false",
        "RESOURCE_VALIDATION_MODE": "all",
        "CACHE_EXPIRY_SECONDS": "30",
        "CACHE_ERRORS": "true",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json-pretty",
        "REDIS_HOST": "connaisseur-redis-service",
        "REDIS_PORT": "6379",
    }
    c = connaisseur_container(default_manifests)
    assert {"configMapRef": {"name": "connaisseur-env"}} in c["envFrom"]
    assert {"secretRef": {"name": "connaisseur-redis-secret"}} in c["envFrom"]


def test_all_features_env_and_config_agree(all_features_manifests: list[Manifest]) -> None:
    env = env_data(all_features_manifests)
    assert env["AUTOMATIC_UNCHANGED_APPROVAL"] == "true"
    assert env["DETECTION_MODE"] == "true"
    assert env["RESOURCE_VALIDATION_MODE"] == "podsOnly"
    assert env["CACHE_EXPIRY_SECONDS"] == "120"
    assert env["CACHE_ERRORS"] == "false"
    assert (env["LOG_LEVEL"], env["LOG_FORMAT"]) == ("debug", "json")
    config = app_config(all_features_manifests)
    assert config["features"]["resourceValidationMode"] == "podsOnly"
    assert "alerting" not in config  # a Secret of its own (test_alerting_is_a_secret…)
    assert config["logFormat"] == "json"


def test_disabled_features_stay_disabled(render: Renderer) -> None:
    """`false` must not fall back to a `true` default (a classic Helm `default` pitfall)."""
    manifests = render([], ["application.features.automaticChildApproval=false"])
    assert env_data(manifests)["AUTOMATIC_CHILD_APPROVAL"] == "false"
    assert app_config(manifests)["features"]["automaticChildApproval"] is False
    assert "ClusterRole" not in {m["kind"] for m in manifests}
    assert pod_spec(manifests)["automountServiceAccountToken"] is False


def test_envs_go_to_a_secret(all_features_manifests: list[Manifest]) -> None:
    secret = find(all_features_manifests, "Secret", "connaisseur-env-secret")
    assert secret_text(secret, "COSIGN_REPOSITORY") == "registry.example.com/signatures"
    assert {"secretRef": {"name": "connaisseur-env-secret"}} in connaisseur_container(
        all_features_manifests
    )["envFrom"]


# --- validator credentials -------------------------------------------------------------------


def test_chart_level_credentials_become_mounted_secrets(
    all_features_manifests: list[Manifest],
) -> None:
    config = app_config(all_features_manifests)
    auth = {v["name"]: v.get("auth") for v in config["validators"]}
    assert auth["private-notary"] == {"secretName": "private-notary-auth"}
    assert auth["cosign-private"] == {"secretName": "cosign-private-auth"}
    assert auth["cosign-k8s-key"] == {"useKeychain": True}
    cm_text = find(all_features_manifests, "ConfigMap", "connaisseur-app-config")["data"][
        "config.yaml"
    ]
    assert "robot-token" not in cm_text
    assert "notary-password" not in cm_text

    secret = find(all_features_manifests, "Secret", "cosign-private-auth")
    assert yaml.safe_load(secret_text(secret, "secret.yaml")) == {
        "username": "robot",
        "password": "robot-token",
        "registry": "registry.example.com",
    }
    secret = find(all_features_manifests, "Secret", "private-notary-auth")
    assert yaml.safe_load(secret_text(secret, "secret.yaml")) == {
        "username": "notary-user",
        "password": "notary-password",
    }
    m = mounts(all_features_manifests)
    for name in ("private-notary-auth", "cosign-private-auth"):
        assert m[f"/app/secrets/{name}"] == name


def test_cosign_credentials_without_registry_are_refused(render: Renderer, tmp_path: Path) -> None:
    """Connaisseur quirk not reproduced (docs/decisions/0015-credentials-name-their-registry.md):
    instead of referencing a Secret that is never created, credentials of a cosign validator must
    name their registry (as the app demands)."""
    values = tmp_path / "v.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "application": {
                    "validators": [
                        {
                            "name": "cosign-noregistry",
                            "type": "cosign",
                            "auth": {"username": "someone", "password": "something"},
                            "trustRoots": [{"name": "default", "key": "k8s://ns/key"}],
                        }
                    ],
                    "policy": [{"pattern": "*:*", "validator": "cosign-noregistry"}],
                }
            }
        )
    )
    with pytest.raises(HelmError, match=r"need auth\.registry for a cosign validator"):
        render([values])


def test_existing_secret_names_are_mounted_not_created(render: Renderer, tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "application": {
                    "validators": [
                        {"name": "deny", "type": "static", "approve": False},
                        {
                            "name": "harbor",
                            "type": "notation",
                            "auth": {"secretName": "harbor-pull"},
                            "trustRoots": [{"name": "default", "cert": "PEM"}],
                        },
                    ]
                }
            }
        )
    )
    manifests = render([values])
    assert mounts(manifests)["/app/secrets/harbor-pull"] == "harbor-pull"
    assert "harbor-pull" not in names(manifests, "Secret")


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"username": "u"}, "username and password must both be set"),
        ({"password": "p"}, "username and password must both be set"),
    ],
)
def test_incomplete_credentials_fail_rendering(
    render: Renderer, tmp_path: Path, auth: dict[str, str], message: str
) -> None:
    values = tmp_path / "v.yaml"
    values.write_text(
        yaml.safe_dump(
            {"application": {"validators": [{"name": "c", "type": "cosign", "auth": auth}]}}
        )
    )
    with pytest.raises(HelmError, match=message):
        render([values])


# --- RBAC ------------------------------------------------------------------------------------


def test_cluster_role_only_gets_workloads(default_manifests: list[Manifest]) -> None:
    role = find(default_manifests, "ClusterRole", "connaisseur-cluster-role")
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert granted == {
        (g, r, "get") for g, r in WORKLOAD_RESOURCES if r != "pods/ephemeralcontainers"
    }
    binding = find(default_manifests, "ClusterRoleBinding", "connaisseur-cluster-role-binding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "connaisseur-serviceaccount", "namespace": NAMESPACE}
    ]
    assert "Role" not in {m["kind"] for m in default_manifests}  # no secret access by default


def test_k8s_key_references_grant_get_on_exactly_those_secrets(
    all_features_manifests: list[Manifest],
) -> None:
    roles = {
        m["metadata"]["namespace"]: m["rules"]
        for m in all_features_manifests
        if m["kind"] == "Role"
    }
    assert roles == {
        "signing": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": ["team-cosign-key"],
                "verbs": ["get"],
            }
        ],
        NAMESPACE: [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": ["connaisseur-local-key"],
                "verbs": ["get"],
            }
        ],
    }
    for ns in roles:
        binding = find(all_features_manifests, "RoleBinding", "connaisseur-role-binding", ns)
        assert binding["subjects"][0]["namespace"] == NAMESPACE


def test_service_account_token_is_mounted_only_where_needed(
    render: Renderer, all_features_manifests: list[Manifest]
) -> None:
    sa = find(all_features_manifests, "ServiceAccount", "connaisseur-serviceaccount")
    assert sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/connaisseur"
    }
    assert sa["automountServiceAccountToken"] is False
    assert pod_spec(all_features_manifests)["automountServiceAccountToken"] is True
    assert pod_spec(all_features_manifests, "connaisseur-redis")[
        "automountServiceAccountToken"
    ] is (False)


# --- PodDisruptionBudget -------------------------------------------------------------------


def test_pod_disruption_budget(all_features_manifests: list[Manifest], render: Renderer) -> None:
    pdb = find(all_features_manifests, "PodDisruptionBudget", "connaisseur-pod-disruption-budget")
    assert pdb["spec"]["minAvailable"] == 2
    assert "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "connaisseur"
    with pytest.raises(HelmError, match="not both"):
        render(
            [],
            [
                "kubernetes.podDisruptionBudget.minAvailable=1",
                "kubernetes.podDisruptionBudget.maxUnavailable=1",
            ],
        )


# --- Redis -----------------------------------------------------------------------------------


def test_redis_is_pinned_password_protected_tls_only(default_manifests: list[Manifest]) -> None:
    spec = pod_spec(default_manifests, "connaisseur-redis")
    (c,) = spec["containers"]
    assert c["image"] == f"redis@{REDIS_DIGEST}"
    args = c["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--port") + 1] == "0"  # no plaintext listener
    assert args[args.index("--tls-port") + 1] == "6379"
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--loglevel") + 1] == "notice"
    renamed = [args[i + 1] for i, a in enumerate(args) if a == "--rename-command"]
    assert renamed == ["FLUSHALL", "FLUSHDB"]
    assert c["securityContext"]["runAsUser"] == 999
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    password = secret_text(
        find(default_manifests, "Secret", "connaisseur-redis-secret"), "REDIS_PASSWORD"
    )
    assert len(password) >= 32
    svc = find(default_manifests, "Service", "connaisseur-redis-service")
    assert svc["spec"]["ports"][0]["port"] == 6379


def test_redis_log_level_follows_the_application(all_features_manifests: list[Manifest]) -> None:
    (c,) = pod_spec(all_features_manifests, "connaisseur-redis")["containers"]
    assert c["args"][c["args"].index("--loglevel") + 1] == "debug"


def test_cache_disabled_deploys_no_redis(render: Renderer) -> None:
    manifests = render([], ["application.features.cache.expirySeconds=0"])
    rendered = {m["metadata"]["name"] for m in manifests}
    assert not {n for n in rendered if "redis" in n}
    assert "REDIS_HOST" not in env_data(manifests)
    assert env_data(manifests)["CACHE_EXPIRY_SECONDS"] == "0"
    assert "/app/redis-certs" not in mounts(manifests)
    assert {"secretRef": {"name": "connaisseur-redis-secret"}} not in connaisseur_container(
        manifests
    )["envFrom"]


def test_redis_without_digest_uses_the_tag(render: Renderer) -> None:
    manifests = render([], ["kubernetes.redis.image.digest="])
    (c,) = pod_spec(manifests, "connaisseur-redis")["containers"]
    assert c["image"] == "redis:7"


# --- alerting: credentials in a Secret ------------------------------------------------------

ALERT_SECRETS = (
    "hooks.slack.com/services/T000/B000/XXXX",
    "GenieKey 00000000-0000-0000-0000-000000000000",
    "api.eu.opsgenie.com",
)


def test_alerting_is_a_secret_mounted_for_the_alerting_config_flag(
    all_features_manifests: list[Manifest],
) -> None:
    secret = find(all_features_manifests, "Secret", "connaisseur-alert-config", NAMESPACE)
    assert secret["type"] == "Opaque"
    stored = yaml.safe_load(base64.b64decode(secret["data"]["config.yaml"]))
    assert stored == yaml.safe_load(ALL_FEATURES.read_text())["alerting"]
    (mount,) = [
        m
        for m in connaisseur_container(all_features_manifests)["volumeMounts"]
        if m["mountPath"] == "/app/alerts/config.yaml"
    ]
    assert mount["readOnly"] is True
    assert mount["subPath"] == "config.yaml"
    assert mounts(all_features_manifests)["/app/alerts/config.yaml"] == "connaisseur-alert-config"
    args = connaisseur_container(all_features_manifests)["args"]
    assert args[args.index("--alerting-config") + 1] == "/app/alerts/config.yaml"


def test_no_configmap_carries_alert_receivers_or_headers(
    all_features_manifests: list[Manifest],
) -> None:
    for cm in (m for m in all_features_manifests if m["kind"] == "ConfigMap"):
        text = yaml.safe_dump(cm["data"])
        for leaked in ALERT_SECRETS:
            assert leaked not in text, f"ConfigMap {cm['metadata']['name']} contains {leaked}"
    # guards the check above: the values really do contain them
    assert all(leaked in ALL_FEATURES.read_text() for leaked in ALERT_SECRETS)


def test_without_alerting_no_secret_mount_or_flag(default_manifests: list[Manifest]) -> None:
    assert "connaisseur-alert-config" not in names(default_manifests, "Secret")
    assert not any(p.startswith("/app/alerts") for p in mounts(default_manifests))
    assert "--alerting-config" not in connaisseur_container(default_manifests)["args"]


# --- alert templates -------------------------------------------------------------------------


def test_custom_alert_templates_are_shipped_when_alerting_is_on(
    render: Renderer, tmp_path: Path
) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "alert_payload_templates" / "custom.json").write_text(
        '{"text": "{{ alert_message }}"}'
    )
    with_alerting = render([ALL_FEATURES], chart=chart)
    cm = find(with_alerting, "ConfigMap", "connaisseur-alert-templates")
    assert cm["data"] == {"custom.json": '{"text": "{{ alert_message }}"}'}
    assert mounts(with_alerting)["/app/alerts/templates"] == "connaisseur-alert-templates"
    without_alerting = render(chart=chart)
    assert "connaisseur-alert-templates" not in names(without_alerting, "ConfigMap")
