"""A real `python -m services.product` process: the seed's curl, and no overselling under load."""

from __future__ import annotations

import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, func, select

from services.product.models import Product, ReservationLine
from tests.support.processes import RunningProcess, free_port, start_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
STOCK, ATTEMPTS, THREADS = 100, 300, 24


def test_the_seed_curl_creates_a_product_on_a_fresh_process(service_env, tmp_path):
    product = start_service("product", service_env, tmp_path)  # SQLite under var/, migrated at start
    try:
        # curl -i -d "name=prod1&slug=prod1&image=product1.jpg&price=100" -X POST localhost:5002/api/product/create
        response = requests.post(
            f"{product.url}/api/product/create",
            data="name=prod1&slug=prod1&image=product1.jpg&price=100",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        shown = requests.get(f"{product.url}/api/v1/products/prod1", timeout=10).json()
        assert (shown["name"], shown["image"], shown["price"]) == ("prod1", "product1.jpg", "100.00")
        assert (tmp_path / "var" / "product.db").exists()
        assert "catalog writes are OPEN" in product.log_path.read_text()
    finally:
        product.stop()


def test_concurrent_reservations_never_oversell(service_env, tmp_path, database_url_for, auth_header):
    url = database_url_for("product")
    product = start_service("product", {**service_env, "PRODUCT_DATABASE_URL": url}, tmp_path)
    try:
        created = requests.post(
            f"{product.url}/api/v1/products",
            json={"name": "Flash", "slug": "flash", "price": "9.99", "stock": STOCK}, timeout=10,
        )
        assert created.status_code == 201, created.text
        product_id = created.json()["id"]

        def attempt(n: int) -> tuple[int, str]:
            body = {"order_ref": f"flash-{n}", "lines": [{"product_id": product_id, "quantity": 1}]}
            response = requests.post(
                f"{product.url}/api/v1/reservations", json=body, headers=auth_header(n % 7 + 1),
                timeout=30,
            )
            return response.status_code, response.json()["error"]["code"] if response.status_code >= 400 else ""

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            outcomes = Counter(pool.map(attempt, range(ATTEMPTS)))
        assert outcomes == {(201, ""): STOCK, (409, "insufficient_stock"): ATTEMPTS - STOCK}, (
            f"{outcomes}\n{product.log_tail()}"
        )
    finally:
        product.stop()

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            available = connection.scalar(select(Product.available).where(Product.id == product_id))
            held = connection.scalar(select(func.sum(ReservationLine.quantity)))
    finally:
        engine.dispose()
    assert (available, held) == (0, STOCK)


def test_gunicorn_serves_the_app_factory(service_env, tmp_path, admin_header):
    port = free_port()
    env = {**service_env, "PRODUCT_AUTO_MIGRATE": "on"}
    # --preload: the factory (and its one migration) runs in the master, before the fork.
    args = [sys.executable, "-m", "gunicorn", "--preload", "--workers", "2", "--threads", "4",
            "--bind", f"127.0.0.1:{port}", "services.product:create_app()"]
    server = RunningProcess(args, env, tmp_path / "gunicorn.log", f"http://127.0.0.1:{port}")
    server.wait_healthy()
    try:
        anonymous = requests.post(f"{server.url}/api/v1/products",
                                  json={"name": "A", "slug": "a", "price": "1.00"}, timeout=10)
        assert anonymous.status_code == 401  # catalog writes need an admin under gunicorn
        for n in range(4):  # a few requests, so both workers most likely answer one
            created = requests.post(
                f"{server.url}/api/v1/products", headers=admin_header,
                json={"name": f"P{n}", "slug": f"p-{n}", "price": "1.00"}, timeout=10,
            )
            assert created.status_code == 201, created.text
        listed = requests.get(f"{server.url}/api/v1/products", timeout=10).json()
        assert listed["total"] == 4
    finally:
        server.stop()
