"""Checkout across real processes: product, cart and order on loopback ports (order also under
gunicorn), with cart or product stopped in the middle."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.services.cart.stack import available, new_product, process_env, running
from tests.support.processes import RunningProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop(key_files: tuple[Path, Path],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningProcess]]:
    """Auth, product, cart and order processes, wired to each other (auth issues order's
    service token; the secret is local mode's, generated in the shared var folder)."""
    folder = tmp_path_factory.mktemp("order-stack")
    env = process_env(key_files, folder, AUTH_TOKEN_PRIVATE_KEY_FILE=str(key_files[0]))
    with running("auth", env, folder) as auth, running("product", env, folder) as product, \
            running("cart", {**env, "CART_PRODUCT_URL": product.url}, folder) as cart, \
            running("order", {**env, "ORDER_CART_URL": cart.url, "ORDER_PRODUCT_URL": product.url,
                              "ORDER_AUTH_URL": auth.url}, folder) as order:
        yield {"product": product, "cart": cart, "order": order}


def add(cart_url: str, headers: dict, product_id: int, quantity: int) -> None:
    response = requests.post(f"{cart_url}/api/v1/cart/items", headers=headers, timeout=5,
                             json={"product_id": product_id, "quantity": quantity})
    assert response.status_code in (200, 201), response.text


def checkout(order_url: str, headers: dict, key: str | None = None) -> requests.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{order_url}/api/v1/orders", headers={**headers, **extra}, timeout=15)


def orders(order_url: str, headers: dict) -> list[dict]:
    response = requests.get(f"{order_url}/api/v1/orders?per_page=100", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_checkout_sells_the_stock_once_even_when_repeated_concurrently(
        shop: dict[str, RunningProcess], auth_header: Callable[..., dict]) -> None:
    product, cart, order = (shop[name].url for name in ("product", "cart", "order"))
    headers = auth_header(201)
    kettle = new_product(product, "proc-kettle", "19.99", 10)
    add(cart, headers, kettle, 3)
    results: list[requests.Response] = []
    barrier = threading.Barrier(5)

    def buy() -> None:
        barrier.wait(timeout=10)
        results.append(checkout(order, headers, key="proc-once"))

    threads = [threading.Thread(target=buy) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409}, [r.text for r in results]
    assert available(product, kettle, headers) == 7
    [made] = orders(order, headers)
    assert (made["status"], made["total"]) == ("confirmed", "59.97")
    again = checkout(order, headers, key="proc-once")
    assert (again.status_code, again.json()["id"]) == (200, made["id"])
    cart_now = requests.get(f"{cart}/api/v1/cart", headers=headers, timeout=5).json()
    assert cart_now["lines"] == []


def test_insufficient_stock_at_the_real_product_holds_nothing(
        shop: dict[str, RunningProcess], auth_header: Callable[..., dict]) -> None:
    product, cart, order = (shop[name].url for name in ("product", "cart", "order"))
    headers, rival = auth_header(202), auth_header(203)
    lamp, bulb = new_product(product, "proc-lamp", "40.00", 1), new_product(product, "proc-bulb", "2.50", 9)
    add(cart, headers, bulb, 4)
    add(cart, headers, lamp, 1)
    add(cart, rival, lamp, 1)
    assert checkout(order, rival).status_code == 201  # the rival takes the last lamp first
    response = checkout(order, headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_stock"
    assert (available(product, lamp, headers), available(product, bulb, headers)) == (0, 9)
    [failed] = orders(order, headers)
    assert (failed["status"], failed["failure"]["code"]) == ("failed", "insufficient_stock")


def test_product_then_cart_going_down_during_checkout(
        key_files: tuple[Path, Path], tmp_path: Path, auth_header: Callable[..., dict]) -> None:
    env = process_env(key_files, tmp_path, AUTH_TOKEN_PRIVATE_KEY_FILE=str(key_files[0]))
    product_port = free_port()
    headers = auth_header(204)
    with running("auth", env, tmp_path) as auth, \
            running("product", env, tmp_path, port=product_port) as product, \
            running("cart", {**env, "CART_PRODUCT_URL": product.url}, tmp_path) as cart, \
            running("order", {**env, "ORDER_CART_URL": cart.url, "ORDER_PRODUCT_URL": product.url,
                              "ORDER_AUTH_URL": auth.url}, tmp_path) as order:
        cup = new_product(product.url, "proc-cup", "5.00", 6)
        add(cart.url, headers, cup, 2)
        product.stop()
        started = time.monotonic()
        response = checkout(order.url, headers, key="outage")
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "product_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        with running("product", env, tmp_path, port=product_port):
            assert available(product.url, cup, headers) == 6  # nothing was held
            [failed] = orders(order.url, headers)
            assert failed["status"] == "failed"
            cart.stop()
            response = checkout(order.url, headers, key="outage")
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "cart_unavailable"
            assert available(product.url, cup, headers) == 6
            assert [o["status"] for o in orders(order.url, headers)] == ["failed"]
            assert requests.get(order.url + "/readyz", timeout=5).status_code == 200


def test_order_runs_under_gunicorn(key_files: tuple[Path, Path], tmp_path: Path,
                                   auth_header: Callable[..., dict]) -> None:
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = RunningProcess(
        [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--preload",
         "services.order:create_app()"],
        process_env(key_files, tmp_path, ORDER_AUTO_MIGRATE="on"), tmp_path / "gunicorn.log",
        f"http://127.0.0.1:{port}")
    try:
        process.wait_healthy()
        assert orders(process.url, auth_header(205)) == []
        assert requests.get(process.url + "/openapi.json", timeout=5).status_code == 200
    finally:
        process.stop()
