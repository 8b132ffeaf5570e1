"""Webhook and Redis certificates: generated with a bounded CA, or supplied."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.helm import (
    ALL_FEATURES,
    NAMESPACE,
    HelmError,
    Manifest,
    Renderer,
    armed_webhook,
    find,
)
from tests.support.tls import self_signed

pytestmark = pytest.mark.helm

DAY = dt.timedelta(days=1)


def secret_pem(secret: Manifest, key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def check_generated(secret: Manifest, service: str, validity_days: int) -> x509.Certificate:
    """Assert the chart's CA + leaf scheme; return the CA."""
    ca = x509.load_pem_x509_certificate(secret_pem(secret, "ca.crt"))
    leaf = x509.load_pem_x509_certificate(secret_pem(secret, "tls.crt"))
    key = serialization.load_pem_private_key(secret_pem(secret, "tls.key"), password=None)
    assert secret["type"] == "kubernetes.io/tls"

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.issuer == ca.subject
    assert isinstance(key, rsa.RSAPrivateKey)
    ca_key = ca.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey)
    assert leaf.signature_hash_algorithm is not None
    ca_key.verify(  # raises if the leaf was not signed by this CA
        leaf.signature,
        leaf.tbs_certificate_bytes,
        padding.PKCS1v15(),
        leaf.signature_hash_algorithm,
    )
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, rsa.RSAPublicKey)
    assert key.public_key().public_numbers() == leaf_key.public_numbers()

    fqdn = f"{service}.{NAMESPACE}.svc"
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == fqdn
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        service,
        f"{service}.{NAMESPACE}",
        fqdn,
        f"{fqdn}.cluster.local",
    }
    # bounded validity (Connaisseur's self-signed certificate was valid for 100 years)
    for cert in (ca, leaf):
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert abs(lifetime - validity_days * DAY) <= DAY, lifetime
    not_after = int(secret["metadata"]["annotations"]["connaisseur-py/tls-not-after"])
    assert abs(not_after - leaf.not_valid_after_utc.timestamp()) < 3600
    return ca


def test_generated_webhook_certificate_is_signed_by_a_bounded_ca(
    default_manifests: list[Manifest],
) -> None:
    secret = find(default_manifests, "Secret", "connaisseur-tls")
    check_generated(secret, "connaisseur-svc", validity_days=730)
    for config in (m for m in default_manifests if m["kind"] == "MutatingWebhookConfiguration"):
        (hook,) = config["webhooks"]
        # the API server trusts the CA, which is also what the Secret carries as ca.crt
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == secret_pem(secret, "ca.crt")


def test_certificate_validity_comes_from_values(all_features_manifests: list[Manifest]) -> None:
    check_generated(
        find(all_features_manifests, "Secret", "connaisseur-tls"), "connaisseur-svc", 365
    )
    check_generated(
        find(all_features_manifests, "Secret", "connaisseur-redis-tls"),
        "connaisseur-redis-service",
        365,
    )


def test_redis_certificate_is_its_own(default_manifests: list[Manifest]) -> None:
    webhook_ca = check_generated(
        find(default_manifests, "Secret", "connaisseur-tls"), "connaisseur-svc", 730
    )
    redis_ca = check_generated(
        find(default_manifests, "Secret", "connaisseur-redis-tls"), "connaisseur-redis-service", 730
    )
    assert webhook_ca.public_key() != redis_ca.public_key()


def tls_values(tmp_path: Path, **tls: str) -> Path:
    path = tmp_path / "tls.yaml"
    path.write_text(yaml.safe_dump({"kubernetes": {"deployment": {"tls": tls}}}))
    return path


def test_supplied_certificate_is_used_and_trusted(render: Renderer, tmp_path: Path) -> None:
    cert, key = self_signed("connaisseur-svc.connaisseur.svc")
    manifests = render([tls_values(tmp_path, cert=cert, key=key)])
    secret = find(manifests, "Secret", "connaisseur-tls")
    assert secret_pem(secret, "tls.crt").decode() == cert
    assert secret_pem(secret, "tls.key").decode() == key
    assert "annotations" not in secret["metadata"]  # never replaced by the chart
    (hook,) = armed_webhook(manifests)["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]).decode() == cert


def test_supplied_ca_becomes_the_ca_bundle(render: Renderer, tmp_path: Path) -> None:
    cert, key = self_signed("connaisseur-svc.connaisseur.svc")
    ca, _ = self_signed("my-ca")
    manifests = render([tls_values(tmp_path, cert=cert, key=key, caCert=ca)])
    (hook,) = armed_webhook(manifests)["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]).decode() == ca


@pytest.mark.parametrize(("given", "missing"), [("cert", "key"), ("key", "cert")])
def test_half_a_supplied_certificate_fails_naming_what_is_missing(
    render: Renderer, tmp_path: Path, given: str, missing: str
) -> None:
    cert, key = self_signed("x")
    values = tls_values(tmp_path, **{given: {"cert": cert, "key": key}[given]})
    with pytest.raises(HelmError, match=f"missing the '{missing}' attribute"):
        render([values])


def test_supplied_redis_certificate(render: Renderer, tmp_path: Path) -> None:
    cert, key = self_signed("connaisseur-redis-service.connaisseur.svc")
    values = tmp_path / "redis.yaml"
    values.write_text(
        yaml.safe_dump({"kubernetes": {"redis": {"tls": {"cert": cert, "key": key}}}})
    )
    manifests = render([ALL_FEATURES, values])
    secret = find(manifests, "Secret", "connaisseur-redis-tls")
    assert secret_pem(secret, "tls.crt").decode() == cert
    assert secret_pem(secret, "ca.crt").decode() == cert  # what Connaisseur trusts for Redis
    values.write_text(yaml.safe_dump({"kubernetes": {"redis": {"tls": {"cert": cert}}}}))
    with pytest.raises(HelmError, match=r"kubernetes\.redis\.tls: .* missing the 'key' attribute"):
        render([values])
