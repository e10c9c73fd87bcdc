"""The cart process against real product processes on loopback ports: normal, slow and down."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.services.cart.stack import available, new_product, process_env, running
from tests.support.processes import RunningProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(key_files: tuple[Path, Path],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningProcess]]:
    """A product, a slow product (3 s per read), and a cart for each, as real processes."""
    folder = tmp_path_factory.mktemp("cart-stack")
    with running("product", process_env(key_files, folder / "p"), folder) as product, \
            running("product", process_env(key_files, folder / "slow", PRODUCT_SIMULATED_DELAY_MS="3000"),
                    folder) as slow_product, \
            running("cart", process_env(key_files, folder / "c", CART_PRODUCT_URL=product.url,
                                        CART_PRODUCT_READ_TIMEOUT="0.5"), folder) as cart, \
            running("cart", process_env(key_files, folder / "c2", CART_PRODUCT_URL=slow_product.url,
                                        CART_PRODUCT_READ_TIMEOUT="0.5"), folder) as slow_cart:
        yield {"product": product, "slow_product": slow_product, "cart": cart, "slow_cart": slow_cart}


def test_items_are_priced_from_the_real_product(
        stack: dict[str, RunningProcess], auth_header: Callable[..., dict]) -> None:
    product_id = new_product(stack["product"].url, "copper-kettle", "12.50", 5)
    url, headers = stack["cart"].url + "/api/v1/cart", auth_header(101)
    added = requests.post(f"{url}/items", json={"product_id": product_id, "quantity": 3},
                          headers=headers, timeout=5)
    assert added.status_code == 201, added.text
    line = added.json()["lines"][0]
    assert (line["name"], line["unit_price"], line["line_total"]) == ("Copper-Kettle", "12.50", "37.50")
    too_many = requests.post(f"{url}/items", json={"product_id": product_id, "quantity": 3},
                             headers=headers, timeout=5)
    assert too_many.status_code == 409  # 6 > 5 units available
    unknown = requests.post(f"{url}/items", json={"product_id": 999_999}, headers=headers, timeout=5)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "product_not_found")
    assert available(stack["product"].url, product_id, headers) == 5  # a cart holds no stock


def test_a_slow_product_gives_504_within_the_read_timeout(
        stack: dict[str, RunningProcess], auth_header: Callable[..., dict]) -> None:
    product_id = new_product(stack["slow_product"].url, "slow-kettle", "3.00", 5)
    started = time.monotonic()
    response = requests.post(stack["slow_cart"].url + "/api/v1/cart/items", timeout=10,
                             json={"product_id": product_id}, headers=auth_header(102))
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "product_timeout"
    assert "Retry-After" in response.headers
    assert elapsed < 2.5, f"took {elapsed:.1f}s; product takes 3 s, cart waits 0.5 s"


def test_product_down_gives_503_and_the_cart_still_answers(
        key_files: tuple[Path, Path], tmp_path: Path, auth_header: Callable[..., dict]) -> None:
    with running("product", process_env(key_files, tmp_path / "p"), tmp_path) as product, \
            running("cart", process_env(key_files, tmp_path / "c", CART_PRODUCT_URL=product.url),
                    tmp_path) as cart:
        product_id = new_product(product.url, "mug", "1.10", 5)
        headers = auth_header(103)
        assert requests.post(cart.url + "/api/v1/cart/items", json={"product_id": product_id},
                             headers=headers, timeout=5).status_code == 201
        product.stop()
        response = requests.post(cart.url + "/api/v1/cart/items", json={"product_id": product_id},
                                 headers=headers, timeout=5)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "product_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        cart_now = requests.get(cart.url + "/api/v1/cart", headers=headers, timeout=5).json()
        assert (cart_now["item_count"], cart_now["total"]) == (1, "1.10")
        assert requests.get(cart.url + "/readyz", timeout=5).status_code == 200


def test_cart_runs_under_gunicorn(key_files: tuple[Path, Path], tmp_path: Path,
                                  auth_header: Callable[..., dict]) -> None:
    port = free_port()
    process = RunningProcess(
        [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--preload", "services.cart:create_app()"],
        process_env(key_files, tmp_path, CART_AUTO_MIGRATE="on"), tmp_path / "gunicorn.log",
        f"http://127.0.0.1:{port}")
    try:
        process.wait_healthy()
        response = requests.get(process.url + "/api/v1/cart", headers=auth_header(104), timeout=5)
        assert (response.status_code, response.json()["lines"]) == (200, [])
    finally:
        process.stop()
