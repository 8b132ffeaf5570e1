"""Registry and Notary credentials from ``auth.secretName`` (a mounted secret) or inline values."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from application.settings import AuthSettings, Credentials
from domain.errors import ConfigError, InvalidReferenceError
from domain.image import normalise_registry_repo

SECRET_FILES = ("secret.yaml", ".dockerconfigjson")


def load_auth(raw: Mapping[str, Any] | None, secrets_dir: Path | None, path: str) -> AuthSettings:
    """Resolve an ``auth`` block into credentials keyed by normalised ``registry[/repo]``.

    ``secrets_dir=None`` keeps ``secretName`` unresolved (commands that never authenticate).

    Raises:
        ConfigError: the secret is missing, unreadable or malformed (path-qualified).
    """
    if not raw:
        return AuthSettings()
    name = raw.get("secretName")
    if name:
        if secrets_dir is None:
            return AuthSettings(secret_name=name)
        return AuthSettings(secret_name=name, credentials=_read_secret(secrets_dir, name, path))
    if "username" in raw and "password" in raw:
        entry = _entry(raw, f"{path}.registry")
        return AuthSettings(credentials=(entry,))
    return AuthSettings(use_keychain=bool(raw.get("useKeychain")))


def _read_secret(secrets_dir: Path, name: str, path: str) -> tuple[tuple[str, Credentials], ...]:
    base = secrets_dir.resolve()
    folder = (base / name).resolve()
    if base not in folder.parents:
        raise ConfigError(f"{path}.secretName: {name!r} leaves the secrets directory")
    for filename in SECRET_FILES:
        file = (folder / filename).resolve()
        if file.parent != folder or not file.is_file():
            continue
        try:
            text = file.read_text()
            if filename == "secret.yaml":
                return (_entry(yaml.safe_load(text), f"{path} ({file})"),)
            return _docker_config(json.loads(text), f"{path} ({file})")
        except (OSError, ValueError, yaml.YAMLError, AttributeError, TypeError) as e:
            raise ConfigError(f"{path}: error reading authentication file {file}: {e}") from e
    raise ConfigError(f"{path}.secretName: no authentication file for secret {name}")


def _entry(doc: Any, path: str) -> tuple[str, Credentials]:
    if not isinstance(doc, Mapping) or "username" not in doc or "password" not in doc:
        raise ConfigError(f"{path}: needs username and password")
    creds = Credentials(username=str(doc["username"]), password=str(doc["password"]))
    registry = doc.get("registry")
    return (_key(str(registry), path) if registry else "EMPTYAUTH", creds)


def _docker_config(doc: Any, path: str) -> tuple[tuple[str, Credentials], ...]:
    auths = doc.get("auths") if isinstance(doc, Mapping) else None
    if not isinstance(auths, Mapping):
        raise ConfigError(f"{path}: .dockerconfigjson has no auths")
    entries = []
    for key, value in auths.items():
        user, password = value.get("username"), value.get("password")
        if value.get("auth"):
            user, _, password = base64.b64decode(value["auth"]).decode().partition(":")
        entries.append((_key(key, path), Credentials(username=user or "", password=password or "")))
    return tuple(entries)


def _key(registry: str, path: str) -> str:
    try:
        return normalise_registry_repo(registry)
    except InvalidReferenceError as e:
        raise ConfigError(f"{path}: {e.message}") from e
