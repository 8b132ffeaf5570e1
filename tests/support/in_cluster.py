"""The application as ``connaisseur serve`` composes it inside a pod: a configuration file, the
in-cluster API server found through ``KUBERNETES_SERVICE_HOST``/``_PORT``, and the
service-account token and CA files the kubelet mounts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from dependency_injector import providers

from connaisseur.config.container import Container, build_container
from connaisseur.config.loader import load_settings


def pod_container(
    tmp_path: Path,
    config: dict[str, Any],
    session: aiohttp.ClientSession,
    *,
    api_url: str | None,
    ca_file: Path,
    token: str,
) -> Container:
    """The composed container; ``api_url=None`` runs it out of cluster."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    token_file = tmp_path / "token"
    token_file.write_text(token)
    env = {}
    if api_url is not None:
        env = {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": api_url.rsplit(":", 1)[1],
        }
    settings = load_settings(path, secrets_dir=None, env=env)
    infra = replace(settings.infra, kube_token_file=str(token_file), kube_ca_file=str(ca_file))
    container = build_container(replace(settings, infra=infra))
    container.session.override(providers.Object(session))
    return container
