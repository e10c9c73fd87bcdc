"""A checkout whose dependencies hang fits inside the gateway's budget, and does not blame order.

The real order service (its calls to cart and product through the shared client) runs on a
loopback port behind the gateway; product's reservations hang. Before deadlines propagated,
order's worst case (cart, reserve, release, each retried) was 13-26 s against the gateway's
8 s: the gateway answered 504 while order carried on, and counted it against order's breaker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.auth import create_app as create_auth_app
from services.cart import create_app as create_cart_app
from services.order import create_app as create_order_app
from tests.gateway.fakes import timed
from tests.services.cart.fakes import FakeProduct, UpstreamServer

# Order answers at the deadline it is given minus its margin (5 % of it): 200 ms here, enough
# for its answer to beat the gateway's own deadline on a loaded CI machine (100 ms was not).
BUDGET = 4.0


@pytest.fixture
def order_url(tmp_path: Path, keypair: tuple[str, str]) -> Iterator[tuple[str, UpstreamServer, object]]:
    """Order served on a free port, with a real cart, a real auth (order's service token) and
    a fake product whose reservations hang."""
    from services.auth.models import db as auth_db
    from services.cart.models import db as cart_db
    from services.order.models import db as order_db

    product = FakeProduct()
    product.add(1, "Blue Mug", 1250, stock=10)
    auth_app = create_auth_app({"database_url": f"sqlite:///{tmp_path / 'auth.db'}",
                                "token_private_key": keypair[0], "auto_migrate": True,
                                "password_hash_method": "scrypt:1024:8:1", "testing": True})
    with UpstreamServer(product.app) as product_server, UpstreamServer(auth_app) as auth_server:
        product_server.fault(r"POST /api/v1/reservations.*", "slow", delay=30)
        cart_app = create_cart_app({
            "database_url": f"sqlite:///{tmp_path / 'cart.db'}", "token_public_key": keypair[1],
            "auto_migrate": True, "product_url": product_server.url, "testing": True})
        with UpstreamServer(cart_app) as cart_server:
            # Order's own timeouts are long: only the deadline it is given can bound the checkout.
            order_app = create_order_app({
                "database_url": f"sqlite:///{tmp_path / 'order.db'}", "token_public_key": keypair[1],
                "auto_migrate": True, "cart_url": cart_server.url, "product_url": product_server.url,
                "cart_read_timeout": 10.0, "product_read_timeout": 10.0, "testing": True,
                "auth_url": auth_server.url, "reconciler": False})
            with UpstreamServer(order_app) as order_server:
                yield order_server.url, cart_app, order_app
            for app, db in ((order_app, order_db), (cart_app, cart_db)):
                app.extensions["breakwater.client"].close()
                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
        with auth_app.app_context():
            auth_db.session.remove()
            auth_db.engine.dispose()


def test_order_answers_within_the_gateways_checkout_budget_and_is_not_blamed(
    start_gateway, order_url, bearer
):
    url, cart_app, order_app = order_url
    added = cart_app.test_client().post("/api/v1/cart/items", headers=bearer,
                                        json={"product_id": 1, "quantity": 1})
    assert added.status_code in (200, 201)
    gateway = start_gateway(upstream_order=url, route_overrides=f"orders.write_budget={BUDGET}",
                            breaker_failures=1)
    for key in ("k-1", "k-2"):
        answer, seconds = timed(lambda key=key: gateway.post(
            "/api/v1/orders", headers={**bearer, "Idempotency-Key": key}, json={}))
        # Order itself gave up in time and said which dependency was slow.
        assert answer.status_code == 504, answer.text
        assert answer.json()["error"]["code"] == "product_timeout"
        assert answer.headers["X-Breakwater-Failed-Dependency"] == "product"
        assert seconds < BUDGET + 1.0
    view = gateway.admin_get("/gateway/upstreams").json()["upstreams"]["order"]["instances"][0]
    assert (view["breaker"], view["failures"], view["failure_rate"]) == ("closed", 0, 0.0)
    # Order's own calls were cut by the gateway's deadline: product's breaker is not blamed either.
    (product_view,) = order_app.extensions["breakwater.client"].snapshot()["upstreams"]["product"]["instances"]
    assert product_view["breaker"] == "closed"
