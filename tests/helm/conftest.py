"""Fixtures for the chart checks: rendered manifests (``helm_bin`` and ``render`` are shared
with the cluster tests: tests/support/helm_fixtures.py)."""

from __future__ import annotations

import pytest

from tests.support import containers, images
from tests.support.helm import (
    ALL_FEATURES,
    CONNAISSEUR_2X,
    Manifest,
    Renderer,
)


@pytest.fixture(scope="session")
def product_image() -> str:
    """The product image, built from the Dockerfile once per content (needs a Docker engine)."""
    containers.require_engine()
    return images.build_product()


@pytest.fixture(scope="session")
def default_manifests(render: Renderer) -> list[Manifest]:
    return render()


@pytest.fixture(scope="session")
def all_features_manifests(render: Renderer) -> list[Manifest]:
    return render([ALL_FEATURES])


@pytest.fixture(scope="session")
def connaisseur_2x_manifests(render: Renderer) -> list[Manifest]:
    return render([CONNAISSEUR_2X])
