"""Real service processes for cart and order tests: start them, stock products, read stock."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.processes import ROOT, RunningProcess, start_service


def process_env(key_files: tuple[Path, Path], folder: Path, **extra: str) -> dict[str, str]:
    """Environment of a service process under test (like `service_env`, usable per module)."""
    return {
        "BREAKWATER_TOKEN_PUBLIC_KEY_FILE": str(key_files[1]),
        "BREAKWATER_VAR_DIR": str(folder / "var"),
        "OTEL_TRACES_EXPORTER": "none",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **extra,
    }


@contextmanager
def running(name: str, env: Mapping[str, str], folder: Path,
            port: int | None = None) -> Iterator[RunningProcess]:
    """`python -m services.<name>` for the length of the block."""
    process = start_service(name, env, folder, port=port)
    try:
        yield process
    finally:
        process.stop()


def new_product(product_url: str, slug: str, price: str, stock: int) -> int:
    """Create a product on the real product service; its id."""
    response = requests.post(f"{product_url}/api/v1/products", timeout=5,
                             json={"name": slug.title(), "slug": slug, "price": price, "stock": stock})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def available(product_url: str, product_id: int, headers: Mapping[str, str]) -> int:
    """Units of a product available now at the real product service."""
    response = requests.get(f"{product_url}/api/v1/products/{product_id}", headers=dict(headers),
                            timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["stock"]
