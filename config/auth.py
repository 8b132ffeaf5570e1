"""A validator's ``auth`` block → :class:`AuthSettings`, read at start-up.

Forms: ``secretName`` (files of a mounted secret: ``secret.yaml`` first, else
``.dockerconfigjson``), ``useKeychain`` (recorded; only when there is no ``secretName``), and the
chart-level inline ``username``/``password``/``registry``. Paths are sanitised: the secret name is
one path element and every file must resolve (symlinks included) inside its secret directory.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from connaisseur.application.settings import EMPTY_AUTH, AuthSettings, Credentials
from connaisseur.domain.errors import ConfigError, InvalidReferenceError
from connaisseur.domain.image import normalise_registry_repo
from connaisseur.domain.urls import SafeUrl

SECRET_FILES = ("secret.yaml", ".dockerconfigjson")
MAX_SECRET_FILE_BYTES = 1024 * 1024


def load_auth(
    raw_auth: Mapping[str, Any] | None,
    secrets_dir: Path | None,
    path: str,
    validator_type: str | None = None,
    host: str | None = None,
) -> AuthSettings:
    """Resolve an ``auth`` block; ``None`` (no block, or an empty document) means anonymous.

    ``path`` prefixes error messages (``validators[0].auth``). For ``notaryv1`` an entry
    without registry (``EMPTYAUTH``) is re-keyed to the Notary ``host`` when one is given.
    ``secrets_dir=None`` keeps ``secretName`` unresolved (commands that never authenticate).

    Raises:
        ConfigError: not a mapping, no usable source, missing/unreadable/malformed secret
            files, invalid registry keys.
    """
    if raw_auth is None:
        return AuthSettings()
    if not isinstance(raw_auth, Mapping):
        raise ConfigError(f"{path}: unmarshal error: not a mapping")
    secret_name = raw_auth.get("secretName")
    if secret_name:
        if not isinstance(secret_name, str):
            raise ConfigError(f"{path}.secretName must be a string")
        if secrets_dir is None:
            return AuthSettings(secret_name=secret_name)
        try:
            entries = read_secret(secrets_dir, secret_name)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e.message}") from e
        return AuthSettings(
            secret_name=secret_name, credentials=_rekey(entries, validator_type, host)
        )
    if _has_inline(raw_auth):
        return _inline(raw_auth, path, validator_type, host)
    if raw_auth.get("useKeychain") is True:
        return AuthSettings(use_keychain=True)
    raise ConfigError(f"{path}: neither secretName nor useKeychain defined")


def read_secret(secrets_dir: Path, name: str) -> tuple[tuple[str, Credentials], ...]:
    """Credentials from ``<secrets_dir>/<name>/secret.yaml`` or ``.dockerconfigjson``.

    Raises:
        ConfigError: see :func:`load_auth`.
    """
    directory = _secret_directory(secrets_dir, name)
    for filename in SECRET_FILES:
        path = directory / filename
        if not path.exists():
            continue
        text = _read_inside(directory, path)
        if filename == "secret.yaml":
            return (_from_secret_yaml(text, path),)
        return _from_docker_config(text, path)
    raise ConfigError(f"no authentication file for secret {name}")


def _secret_directory(secrets_dir: Path, name: str) -> Path:
    if name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ConfigError(f"invalid secret name {name!r}")
    directory = secrets_dir / name
    if not directory.is_dir():
        raise ConfigError(f"no authentication file for secret {name}")
    base = secrets_dir.resolve()
    if not directory.resolve().is_relative_to(base):
        raise ConfigError(f"secret {name} resolves outside {secrets_dir}")
    return directory


def _read_inside(directory: Path, path: Path) -> str:
    # Kubernetes mounts secret files as symlinks into ``..data``: allowed while they stay inside.
    if not path.resolve().is_relative_to(directory.resolve()):
        raise ConfigError(f"error reading authentication file {path}: resolves outside {directory}")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"error reading authentication file {path}: {e.strerror}") from e
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(f"error reading authentication file {path}: larger than 1 MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"error reading authentication file {path}: not UTF-8") from e


def _from_secret_yaml(text: str, path: Path) -> tuple[str, Credentials]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"error reading authentication file {path}: invalid YAML") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"error reading authentication file {path}: not a mapping")
    username, password, registry = doc.get("username"), doc.get("password"), doc.get("registry")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ConfigError(
            f"error reading authentication file {path}: username and password must be strings"
        )
    if registry is not None and not isinstance(registry, str):
        raise ConfigError(f"error reading authentication file {path}: registry must be a string")
    key = _normalise(registry) if registry else EMPTY_AUTH
    return key, Credentials(username=username, password=password)


def _from_docker_config(text: str, path: Path) -> tuple[tuple[str, Credentials], ...]:
    try:
        auths = json.loads(text).get("auths", {})
    except (ValueError, AttributeError) as e:
        raise ConfigError(f"error reading authentication file {path}: invalid JSON") from e
    if not isinstance(auths, dict):
        raise ConfigError(f"error reading authentication file {path}: auths is not a mapping")
    entries = []
    for raw_key, entry in auths.items():
        key = _normalise(raw_key)
        entries.append((key, _docker_credentials(entry, path)))
    return tuple(entries)


def _docker_credentials(entry: Any, path: Path) -> Credentials:
    if not isinstance(entry, dict):
        raise ConfigError(f"error reading authentication file {path}: entry is not a mapping")
    username, password = entry.get("username", ""), entry.get("password", "")
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise ConfigError(f"error reading authentication file {path}: bad auth field") from e
        username, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(f"error reading authentication file {path}: bad auth field")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ConfigError(f"error reading authentication file {path}: bad username/password")
    return Credentials(username=username, password=password)


def _normalise(registry: str) -> str:
    try:
        return normalise_registry_repo(registry)
    except InvalidReferenceError as e:
        raise ConfigError(
            f"unable to parse registry {str(SafeUrl.of(registry))!r}: {e.message}"
        ) from e


def _has_inline(raw: Mapping[str, Any]) -> bool:
    return bool(raw.get("username")) and bool(raw.get("password"))


def _inline(
    raw: Mapping[str, Any], path: str, validator_type: str | None, host: str | None
) -> AuthSettings:
    # The chart turns inline credentials into a secret ``<name>-auth``; without ``registry`` it
    # creates none for cosign/notation, so upstream fails to start. We fail too, but clearly.
    username, password, registry = raw["username"], raw["password"], raw.get("registry")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ConfigError(f"{path}: username and password must be strings")
    if not registry and validator_type in ("cosign", "notation"):
        raise ConfigError(
            f"{path}: username/password need auth.registry for a {validator_type} validator"
        )
    try:
        key = _normalise(str(registry)) if registry else EMPTY_AUTH
    except ConfigError as e:
        raise ConfigError(f"{path}.registry: {e.message}") from e
    entry = (key, Credentials(username=username, password=password))
    return AuthSettings(credentials=_rekey((entry,), validator_type, host))


def _rekey(
    entries: tuple[tuple[str, Credentials], ...], validator_type: str | None, host: str | None
) -> tuple[tuple[str, Credentials], ...]:
    if validator_type != "notaryv1" or not host:
        return entries
    return keyed_to(entries, _normalise(host))


def keyed_to(
    entries: tuple[tuple[str, Credentials], ...], registry: str
) -> tuple[tuple[str, Credentials], ...]:
    """``entries`` with the credentials that name no registry (``EMPTYAUTH``) keyed to
    ``registry``: the one upstream they can be meant for (a Notary host, a mirror endpoint)."""
    return tuple((registry if key == EMPTY_AUTH else key, creds) for key, creds in entries)
