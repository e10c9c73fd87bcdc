"""Fixtures of the deploy checks: the resolved compose model and the rendered overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests import (
    OVERLAYS,
    Cluster,
    compose_binary,
    compose_config,
    need,
    render_overlay,
    tool,
)


@pytest.fixture(scope="session")
def compose_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compose")


@pytest.fixture(scope="session")
def compose(compose_tmp: Path) -> dict[str, Any]:
    """The compose model exactly as Docker Compose resolves it, defaults applied."""
    need(compose_binary)
    return compose_config(compose_tmp)


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="session")
def clusters() -> dict[str, Cluster]:
    """Every overlay rendered by `kubectl kustomize`, by overlay name."""
    need(lambda: tool("kubectl"))
    return {overlay: Cluster(overlay, render_overlay(overlay)) for overlay in OVERLAYS}
