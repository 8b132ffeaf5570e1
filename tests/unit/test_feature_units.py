"""Unit tests of the feature pieces: in-process cache, D5 keys, cacheErrors, env plumbing."""

from __future__ import annotations

from dataclasses import replace

from connaisseur.adapters.cache import InMemoryCache
from connaisseur.application.caching import definitive, fingerprint_hash, rule_fingerprint
from connaisseur.application.ports import CachedResult
from connaisseur.application.settings import ValidatorSettings
from connaisseur.config.env import infrastructure
from connaisseur.domain.errors import Category
from connaisseur.domain.policy import Rule, RuleOptions
from connaisseur.domain.verdict import ImageVerdict
from tests.support.fakes import Ticks


async def test_in_memory_cache_expires_and_stays_bounded() -> None:
    ticks = Ticks()
    lookups: list[bool] = []
    cache = InMemoryCache(max_entries=2, monotonic=ticks, on_lookup=lookups.append)
    value = CachedResult(digest="sha256:" + "a" * 64)
    await cache.put("a", value, 10)
    assert await cache.get("a") == value
    ticks.now = 10.5
    assert await cache.get("a") is None  # expired
    for key in ("x", "y", "z"):
        await cache.put(key, value, 10)
    assert len(cache) == 2
    assert await cache.get("x") is None  # least recently used went first
    assert lookups == [True, False, False]
    await cache.put("never", value, 0)
    assert await cache.get("never") is None


def test_cache_key_changes_with_rule_and_validator_configuration() -> None:
    """D5: a configuration change never reuses an old verdict."""
    validator = ValidatorSettings(name="v", type="cosign")
    base = rule_fingerprint(Rule(pattern="*"), fingerprint_hash(validator.fingerprint()))
    other_rule = rule_fingerprint(
        Rule(pattern="*", options=RuleOptions(threshold=2)),
        fingerprint_hash(validator.fingerprint()),
    )
    other_validator = rule_fingerprint(
        Rule(pattern="*"), fingerprint_hash(replace(validator, host="https://n").fingerprint())
    )
    assert len({base, other_rule, other_validator}) == 3
    assert base == rule_fingerprint(Rule(pattern="*"), fingerprint_hash(validator.fingerprint()))


def _denial(category: Category) -> ImageVerdict:
    return ImageVerdict(image="i", reference="r", allowed=False, category=category, message="m")


def test_only_definitive_results_are_cached() -> None:
    trusted = ImageVerdict(image="i", reference="r", allowed=True, digest="sha256:" + "b" * 64)
    assert definitive(trusted, cache_errors=True) == CachedResult(digest=trusted.digest)
    static_allow = ImageVerdict(image="i", reference="r", allowed=True)
    assert definitive(static_allow, cache_errors=True) is None
    permanent = definitive(_denial(Category.SIGNATURE_INVALID), cache_errors=True)
    assert permanent == CachedResult(category="signature_invalid", message="m")
    assert definitive(_denial(Category.SIGNATURE_INVALID), cache_errors=False) is None
    for transient in (Category.TIMEOUT, Category.FETCH_FAILED, Category.RATE_LIMITED):
        assert definitive(_denial(transient), cache_errors=True) is None


def test_infrastructure_from_environment_hides_secrets() -> None:
    infra = infrastructure(
        {
            "REDIS_HOST": "redis.svc",
            "REDIS_PASSWORD": "pw-123",
            "KUBERNETES_SERVICE_HOST": "10.0.0.1",
            "KUBERNETES_SERVICE_PORT": "6443",
            "POD_NAME": "connaisseur-abc",
            "CACHE_HMAC_KEY": "k-456",
        }
    )
    assert infra.redis_host == "redis.svc"
    assert infra.kube_port == "6443"
    assert infra.pod_name == "connaisseur-abc"
    assert "pw-123" not in repr(infra)
    assert "k-456" not in repr(infra)
