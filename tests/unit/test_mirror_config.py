"""``mirrors`` in the configuration (docs/decisions/0050-registry-mirrors.md): the shape, its
normalisation, the global list and a validator's own, and every problem named by its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connaisseur.config.configuration import Configuration, registry_mirrors
from connaisseur.config.loader import build_settings
from connaisseur.domain.errors import ConfigError
from tests.support.notation_signing import make_ca

CA = make_ca("mirror CA").pem()
KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsx28WV7BsQfnHF1kZmpdCTTLJaWe
d0CA+JOi8H4REuBaWSZ5zPDe468WuOJ6f71E7WFg3CVEVYHuoZt2UYbN/Q==
-----END PUBLIC KEY-----
"""


def cosign(**fields: Any) -> dict[str, Any]:
    return {"name": "cs", "type": "cosign", "trustRoots": [{"name": "k", "key": KEY}], **fields}


def document(validators: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    return {
        "validators": validators or [cosign()],
        "policy": [{"pattern": "*", "validator": "cs"}],
        **top,
    }


def load(doc: dict[str, Any], secrets_dir: Path | None = None) -> Configuration:
    settings = build_settings(doc, secrets_dir=secrets_dir, env={})
    assert isinstance(settings, Configuration)
    return settings


def problems(doc: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as err:
        build_settings(doc, secrets_dir=None, env={})
    return err.value.problems


def test_a_mirror_with_every_field() -> None:
    mirror = {
        "source": "docker.io/library",
        "endpoints": [
            {
                "url": "https://Mirror.Internal:5000/dockerhub/library/",
                "cert": CA,
                "auth": {"username": "pull", "password": "s3cret"},
                "capabilities": ["pull"],
            },
            {"url": "http://127.0.0.1:5001"},
        ],
        "fallbackToSource": False,
    }
    (loaded,) = load(document(mirrors=[mirror])).mirrors.shared
    assert loaded.source == "index.docker.io/library"  # Docker Hub spelt as image names are
    assert not loaded.fallback_to_source
    first, second = loaded.endpoints
    assert (first.scheme, first.registry, first.prefix) == (
        "https",
        "mirror.internal:5000",
        "dockerhub/library",
    )
    assert first.cert is not None
    assert first.cert.pem == CA
    assert not first.resolve
    # credentials without a registry are the endpoint's own
    creds = first.auth.lookup("mirror.internal:5000", "dockerhub/library/nginx")
    assert creds is not None
    assert creds.username == "pull"
    assert (second.scheme, second.registry, second.prefix, second.resolve) == (
        "http",
        "127.0.0.1:5001",
        "",
        True,
    )
    assert load(document(mirrors=[mirror])).mirrors.plain_http_registries() == {"127.0.0.1:5001"}


def test_a_configuration_without_mirrors_has_none() -> None:
    settings = load(document())
    assert registry_mirrors(settings).for_validator("cs") == ()


def test_a_validators_own_entry_comes_first_and_hides_the_global_one_for_its_source() -> None:
    own = {"source": "docker.io", "endpoints": [{"url": "own.mirror"}]}
    shared = [
        {"source": "docker.io", "endpoints": [{"url": "shared.mirror"}]},
        {"source": "ghcr.io", "endpoints": [{"url": "ghcr.mirror"}]},
    ]
    mirrors = load(document([cosign(mirrors=[own])], mirrors=shared)).mirrors
    chosen = [(m.source, m.endpoints[0].registry) for m in mirrors.for_validator("cs")]
    assert chosen == [("index.docker.io", "own.mirror"), ("ghcr.io", "ghcr.mirror")]
    others = [(m.source, m.endpoints[0].registry) for m in mirrors.for_validator("other")]
    assert others == [("index.docker.io", "shared.mirror"), ("ghcr.io", "ghcr.mirror")]


def test_mirrors_in_a_helm_values_file() -> None:
    values = {"application": document(mirrors=[{"source": "quay.io", "endpoints": [{"url": "m"}]}])}
    (loaded,) = load(values).mirrors.shared
    assert loaded.source == "quay.io"


@pytest.mark.parametrize(
    ("mirror", "problem"),
    [
        ({"endpoints": [{"url": "m"}]}, "mirrors[0].source: Missing data"),
        ({"source": "docker.io"}, "mirrors[0].endpoints: Missing data"),
        ({"source": "docker.io", "endpoints": []}, "mirrors[0].endpoints: "),
        ({"source": "docker.io", "endpoints": [{"url": "m"}] * 9}, "mirrors[0].endpoints: "),
        ({"source": "docker.io/Team", "endpoints": [{"url": "m"}]}, "mirrors[0].source: "),
        ({"source": "https://docker.io", "endpoints": [{"url": "m"}]}, "mirrors[0].source: "),
        ({"source": "x", "endpoints": [{"url": "m"}], "bogus": 1}, "mirrors[0].bogus: Unknown"),
        ({"source": "x", "endpoints": [{"url": "ftp://m"}]}, "mirrors[0].endpoints[0].url: "),
        ({"source": "x", "endpoints": [{"url": "https://u:p@m"}]}, "mirrors[0].endpoints[0].url: "),
        ({"source": "x", "endpoints": [{"url": "https://m/A"}]}, "mirrors[0].endpoints[0].url: "),
        ({"source": "x", "endpoints": [{"url": "https://m?q=1"}]}, "mirrors[0].endpoints[0].url: "),
        (
            {"source": "x", "endpoints": [{"url": "m", "cert": "junk"}]},
            "mirrors[0].endpoints[0].cert: ",
        ),
        (
            {"source": "x", "endpoints": [{"url": "m", "capabilities": ["resolve"]}]},
            "mirrors[0].endpoints[0].capabilities: ",
        ),
        (
            {"source": "x", "endpoints": [{"url": "m", "capabilities": ["pull", "fly"]}]},
            "mirrors[0].endpoints[0].capabilities[1]: ",
        ),
        (
            {"source": "x", "endpoints": [{"url": "m", "auth": {}}]},
            "mirrors[0].endpoints[0].auth: ",
        ),
        (
            {
                "source": "x",
                "endpoints": [
                    {"url": "http://mirror.internal", "auth": {"username": "u", "password": "p"}}
                ],
            },
            "mirrors[0].endpoints[0].auth: credentials are never sent over plain HTTP",
        ),
        (
            {
                "source": "x",
                "endpoints": [{"url": "m", "capabilities": ["pull"]}],
                "fallbackToSource": False,
            },
            "mirrors[0]: with fallbackToSource false",
        ),
    ],
)
def test_every_problem_is_named_by_its_path(mirror: dict[str, Any], problem: str) -> None:
    found = problems(document(mirrors=[mirror]))
    assert any(p.startswith(problem) for p in found), found


def test_a_source_named_twice_is_refused() -> None:
    twice = [
        {"source": "docker.io", "endpoints": [{"url": "a"}]},
        {"source": "index.docker.io", "endpoints": [{"url": "b"}]},
    ]
    assert problems(document(mirrors=twice)) == (
        "mirrors: sources named more than once: index.docker.io",
    )


def test_a_validators_mirrors_are_checked_under_its_path() -> None:
    broken = cosign(mirrors=[{"source": "x", "endpoints": [{"url": "ftp://m"}]}])
    found = problems(document([broken]))
    assert any(p.startswith("validators[0].mirrors[0].endpoints[0].url: ") for p in found), found


def test_a_notary_v1_validator_reads_no_registry_and_takes_no_mirrors() -> None:
    notary = {
        "name": "cs",
        "type": "notaryv1",
        "trustRoots": [{"name": "k", "key": KEY}],
        "mirrors": [{"source": "x", "endpoints": [{"url": "m"}]}],
    }
    assert any(
        p.startswith("validators[0].mirrors: Unknown field") for p in problems(document([notary]))
    )


def test_mirror_credentials_from_a_secret(tmp_path: Path) -> None:
    secret = tmp_path / "mirror-pull"
    secret.mkdir()
    (secret / "secret.yaml").write_text("username: robot\npassword: pw\n")
    mirror = {
        "source": "docker.io",
        "endpoints": [{"url": "m.internal", "auth": {"secretName": "mirror-pull"}}],
    }
    (loaded,) = load(document(mirrors=[mirror]), secrets_dir=tmp_path).mirrors.shared
    creds = loaded.endpoints[0].auth.lookup("m.internal", "library/nginx")
    assert creds is not None
    assert creds.username == "robot"
    assert "pw" not in repr(loaded)
