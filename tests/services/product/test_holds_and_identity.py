"""Reservations are the order service's alone; holds are capped per user, found by order_ref,
short, and swept by a background task so `stock` is true."""

from __future__ import annotations

import pytest

from services.common.service_identity import ACTING_USER_HEADER
from services.product.sweeper import sweep_expired_holds
from tests.services.product.conftest import stock_of
from tests.support.processes import wait_until

pytestmark = pytest.mark.timeout(60)
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"])
BODY = {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": 1}]}
ENDPOINTS = [("post", "/api/v1/reservations", BODY), ("get", "/api/v1/reservations/1", None),
             ("post", "/api/v1/reservations/1/confirm", None),
             ("post", "/api/v1/reservations/1/release", None),
             ("get", "/api/v1/reservations/by-ref/o-1", None)]


@SQLITE_ONLY
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_shoppers_own_token_is_refused_with_403(client, add_product, make_token, method, path,
                                                  body):
    add_product("widget", stock=5)
    headers = {"Authorization": f"Bearer {make_token(1)}", ACTING_USER_HEADER: "1"}
    response = getattr(client, method)(path, json=body, headers=headers)
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "service_only"
    assert stock_of(client, 1) == 5


@SQLITE_ONLY
def test_another_services_token_is_refused(client, add_product, service_header):
    add_product("widget", stock=5)
    response = client.post("/api/v1/reservations", json=BODY, headers=service_header(1, "cart"))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "service_not_allowed"


@SQLITE_ONLY
@pytest.mark.parametrize("acting", [None, "", "abc", "0", "-3", "9" * 30])
def test_the_acting_user_must_be_named(client, add_product, service_header, acting):
    add_product("widget", stock=5)
    headers = service_header(1)
    if acting is None:
        del headers[ACTING_USER_HEADER]
    else:
        headers[ACTING_USER_HEADER] = acting
    response = client.post("/api/v1/reservations", json=BODY, headers=headers)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "acting_user_required"


def test_one_user_may_hold_only_so_many_units(make_app, service_header, admin_header):
    client = make_app(max_held_units_per_user=5).test_client()
    client.post("/api/v1/products", json={"name": "W", "slug": "w", "price": "1", "stock": 100},
                headers=admin_header)

    def reserve(ref: str, quantity: int, user: int = 1):  # noqa: ANN202
        body = {"order_ref": ref, "lines": [{"product_id": 1, "quantity": quantity}]}
        return client.post("/api/v1/reservations", json=body, headers=service_header(user))

    assert reserve("a", 3).status_code == 201
    refused = reserve("b", 3)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "hold_limit"
    assert refused.json["error"]["details"] == {"held": 3, "requested": 3, "max_held_units": 5}
    assert reserve("c", 3, user=2).status_code == 201  # per user
    rid = reserve("a", 3).json["id"]
    client.post(f"/api/v1/reservations/{rid}/confirm", headers=service_header(1))
    assert reserve("b", 3).status_code == 201  # confirmed units are not held any more
    assert stock_of(client, 1) == 91


def test_a_reservation_is_found_by_order_ref_and_reports_expiry(client, add_product, reserve,
                                                                 service_header, clock):
    widget = add_product("widget", stock=5)
    made = reserve("order-9", [(widget["id"], 2)], user=4).json
    found = client.get("/api/v1/reservations/by-ref/order-9", headers=service_header(4))
    assert (found.status_code, found.json["id"], found.json["status"]) == (200, made["id"], "held")
    # Someone else's, or nothing at all: the same 404.
    for user, ref in ((5, "order-9"), (4, "order-10"), (4, "bad ref!")):
        missing = client.get(f"/api/v1/reservations/by-ref/{ref}", headers=service_header(user))
        assert missing.status_code == 404 and missing.json["error"]["code"] == "reservation_not_found"
    clock.advance(60)
    expired = client.get("/api/v1/reservations/by-ref/order-9", headers=service_header(4))
    assert expired.json["status"] == "expired"
    assert stock_of(client, widget) == 5


def test_the_sweeper_returns_expired_holds_without_any_reserve(app, client, add_product, reserve,
                                                               clock):
    widget = add_product("widget", stock=5)
    reserve("order-1", [(widget["id"], 2)])
    reserve("order-2", [(widget["id"], 3)])
    assert stock_of(client, widget) == 0
    clock.advance(59)
    assert sweep_expired_holds(app, clock) == 0
    clock.advance(1)
    assert sweep_expired_holds(app, clock) == 2
    assert stock_of(client, widget) == 5


@SQLITE_ONLY
def test_the_sweeper_runs_by_itself_in_the_service(database_url_for, key_files, service_header,
                                                   admin_header):
    from datetime import timedelta

    import flask_migrate

    from services.product import create_app
    from services.product.models import db, utcnow
    from services.product.sweeper import SWEEPER_KEY

    shift = [timedelta(0)]
    app = create_app({"database_url": database_url_for("product"), "testing": True,
                      "token_public_key_file": str(key_files[1]), "hold_ttl_seconds": 1,
                      "hold_sweep_interval_seconds": 0.05}, clock=lambda: utcnow() + shift[0])
    try:
        with app.app_context():
            flask_migrate.upgrade()
        client = app.test_client()
        created = client.post("/api/v1/products", headers=admin_header,
                              json={"name": "W", "slug": "w", "price": "1", "stock": 4})
        assert created.status_code == 201, created.json
        body = {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": 4}]}
        assert client.post("/api/v1/reservations", json=body,
                           headers=service_header(1)).status_code == 201
        shift[0] = timedelta(seconds=2)  # the hold is past its expiry; nobody reserves again
        wait_until(lambda: stock_of(client, 1) == 4, timeout=10, message="the hold swept")
    finally:
        app.extensions[SWEEPER_KEY].stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_the_stock_view_accounts_for_every_unit(client, add_product, reserve, service_header, clock):
    widget = add_product("widget", stock=10)
    add_product("other", stock=5)
    rid = reserve("order-1", [(widget["id"], 2)]).json["id"]
    reserve("order-2", [(widget["id"], 3), (2, 1)], user=2)
    client.post(f"/api/v1/reservations/{rid}/confirm", headers=service_header(1))
    view = client.get("/api/v1/products/widget/stock").json
    assert view == {"product_id": widget["id"], "available": 5, "held": 3, "expired_held": 0,
                    "sold": 2}
    clock.advance(60)
    assert client.get(f"/api/v1/products/{widget['id']}/stock").json == {
        "product_id": widget["id"], "available": 5, "held": 0, "expired_held": 3, "sold": 2}
    assert client.get("/api/v1/products/nope/stock").status_code == 404


@SQLITE_ONLY
def test_a_shortage_says_whether_held_units_may_return(client, add_product, service_header):
    """Units held by checkouts in flight come back when those end: the refusal says so, with
    Retry-After, so a client can tell "held for now" from "sold out"."""
    add_product("widget", stock=5)

    def reserve(ref: str, quantity: int, user: int):  # noqa: ANN202
        body = {"order_ref": ref, "lines": [{"product_id": 1, "quantity": quantity}]}
        return client.post("/api/v1/reservations", json=body, headers=service_header(user))

    first = reserve("a", 4, user=1)
    assert first.status_code == 201
    held = reserve("b", 3, user=2)
    assert held.status_code == 409 and held.json["error"]["code"] == "insufficient_stock"
    assert held.json["error"]["details"]["products"] == [
        {"product_id": 1, "requested": 3, "available": 1, "held": 4}]
    assert held.headers["Retry-After"]
    client.post(f"/api/v1/reservations/{first.json['id']}/confirm", headers=service_header(1))
    sold_out = reserve("c", 3, user=2)
    assert sold_out.status_code == 409
    assert sold_out.json["error"]["details"]["products"][0]["held"] == 0
    assert "Retry-After" not in sold_out.headers
