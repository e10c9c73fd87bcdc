"""Stock reservations: all-or-nothing holds, idempotent retries, owners, confirm, release, expiry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from services.common.tokens import TokenSigner, generate_keypair
from services.product.reservations import release_expired_holds
from tests.services.product.conftest import stock_of

pytestmark = pytest.mark.timeout(60)
TTL = 60  # the default hold: seconds, as a checkout needs
# Token checks happen before the database is touched: one backend is enough for them.
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"])


def test_a_reservation_holds_units_for_the_caller(client, add_product, reserve, clock):
    widget = add_product("widget", stock=10)
    response = reserve("order-1", [(widget["id"], 3)], user=7)
    assert response.status_code == 201
    body = response.json
    assert body["status"] == "held" and body["user_id"] == 7 and body["order_ref"] == "order-1"
    assert body["lines"] == [{"product_id": widget["id"], "quantity": 3}]
    assert body["expires_at"].startswith("2030-01-01T12:01:00")
    assert stock_of(client, widget) == 7


def test_a_retried_reserve_returns_the_same_reservation_and_takes_nothing_more(client, add_product, reserve):
    widget = add_product("widget", stock=10)
    first = reserve("order-1", [(widget["id"], 3)])
    again = reserve("order-1", [(widget["id"], 3)])
    assert again.status_code == 200 and again.json == first.json
    assert stock_of(client, widget) == 7


def test_reusing_a_reference_for_other_lines_or_by_another_user_is_a_conflict(client, add_product, reserve):
    widget = add_product("widget", stock=10)
    reserve("order-1", [(widget["id"], 3)], user=1)
    other_lines = reserve("order-1", [(widget["id"], 4)], user=1)
    assert other_lines.status_code == 409 and other_lines.json["error"]["code"] == "idempotency_mismatch"
    other_user = reserve("order-1", [(widget["id"], 3)], user=2)
    assert other_user.status_code == 409 and other_user.json["error"]["code"] == "order_ref_taken"
    assert stock_of(client, widget) == 7


def test_insufficient_stock_reserves_nothing_and_says_what_is_short(client, add_product, reserve):
    widget, gadget = add_product("widget", stock=10), add_product("gadget", stock=2)
    response = reserve("order-1", [(widget["id"], 5), (gadget["id"], 3)])
    assert response.status_code == 409
    error = response.json["error"]
    assert error["code"] == "insufficient_stock"
    assert error["details"]["products"] == [{"product_id": gadget["id"], "requested": 3,
                                             "available": 2, "held": 0}]
    assert "Retry-After" not in response.headers  # nothing held: sold out, not "wait"
    assert stock_of(client, widget) == 10 and stock_of(client, gadget) == 2
    assert reserve("order-1", [(gadget["id"], 2)]).status_code == 201  # the reference is still free


def test_lines_for_the_same_product_are_added_up(client, add_product, reserve):
    widget = add_product("widget", stock=5)
    response = reserve("order-1", [(widget["id"], 2), (widget["id"], 3)])
    assert response.status_code == 201
    assert response.json["lines"] == [{"product_id": widget["id"], "quantity": 5}]
    assert reserve("order-2", [(widget["id"], 1)]).status_code == 409


def test_unknown_products_are_named(client, add_product, reserve):
    widget = add_product("widget", stock=5)
    response = reserve("order-1", [(widget["id"], 1), (4242, 1)])
    assert response.status_code == 422
    assert response.json["error"]["code"] == "unknown_product"
    assert response.json["error"]["details"]["product_ids"] == [4242]
    assert stock_of(client, widget) == 5


def test_confirm_makes_the_sale_and_is_idempotent(client, add_product, reserve, auth_header):
    widget = add_product("widget", stock=5)
    rid = reserve("order-1", [(widget["id"], 2)]).json["id"]
    for _ in range(2):
        response = client.post(f"/api/v1/reservations/{rid}/confirm", headers=auth_header(1))
        assert response.status_code == 200 and response.json["status"] == "confirmed"
    assert stock_of(client, widget) == 3
    release = client.post(f"/api/v1/reservations/{rid}/release", headers=auth_header(1))
    assert release.status_code == 409 and release.json["error"]["code"] == "reservation_confirmed"
    assert stock_of(client, widget) == 3


def test_release_returns_the_units_once(client, add_product, reserve, auth_header):
    widget = add_product("widget", stock=5)
    rid = reserve("order-1", [(widget["id"], 2)]).json["id"]
    for _ in range(2):
        response = client.post(f"/api/v1/reservations/{rid}/release", headers=auth_header(1))
        assert response.status_code == 200 and response.json["status"] == "released"
    assert stock_of(client, widget) == 5
    confirm = client.post(f"/api/v1/reservations/{rid}/confirm", headers=auth_header(1))
    assert confirm.status_code == 409 and confirm.json["error"]["code"] == "reservation_released"


def test_a_reservation_can_be_read_by_its_owner(client, add_product, reserve, auth_header):
    widget = add_product("widget", stock=5)
    made = reserve("order-1", [(widget["id"], 2)], user=3).json
    assert client.get(f"/api/v1/reservations/{made['id']}", headers=auth_header(3)).json == made


@pytest.mark.parametrize("action", ["", "/confirm", "/release"])
def test_someone_elses_reservation_is_not_found(client, add_product, reserve, auth_header, action):
    widget = add_product("widget", stock=5)
    rid = reserve("order-1", [(widget["id"], 2)], user=1).json["id"]
    method = client.get if not action else client.post
    response = method(f"/api/v1/reservations/{rid}{action}", headers=auth_header(2))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "reservation_not_found"
    assert stock_of(client, widget) == 3
    assert client.get(f"/api/v1/reservations/{rid}", headers=auth_header(1)).json["status"] == "held"


@pytest.mark.parametrize("rid", ["999", str(2**70)])
@pytest.mark.parametrize("action", ["", "/confirm", "/release"])
def test_unknown_reservations_are_not_found(client, auth_header, rid, action):
    method = client.get if not action else client.post
    assert method(f"/api/v1/reservations/{rid}{action}", headers=auth_header(1)).status_code == 404


def _token(keypair: tuple[str, str], *, audience: str = "breakwater", ttl: int = 60) -> str:
    signer = TokenSigner(*keypair, issuer="breakwater-auth", audience=audience, ttl_seconds=ttl)
    return signer.issue(1, "a@example.com", "A", "standard")[0]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (lambda kp: None, "missing_token"),
        (lambda kp: "Bearer garbage", "invalid_token"),
        (lambda kp: f"Bearer {_token(kp, ttl=-60)}", "token_expired"),
        (lambda kp: f"Bearer {_token(kp, audience='someone-else')}", "invalid_token"),
        (lambda kp: f"Bearer {_token(generate_keypair())}", "invalid_token"),
        (lambda kp: f"Bearer {_token(kp)[:-3]}abc", "invalid_token"),
    ],
    ids=["missing", "garbage", "expired", "wrong-audience", "foreign-key", "tampered"],
)
@pytest.mark.parametrize("path", ["/api/v1/reservations", "/api/v1/reservations/1/confirm"])
@SQLITE_ONLY
def test_reservations_need_a_valid_token(client, add_product, keypair, authorization, code, path):
    add_product("widget", stock=5)
    value = authorization(keypair)
    headers = {"Authorization": value} if value else {}
    body = {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": 1}]}
    response = client.post(path, json=body if path.endswith("reservations") else None, headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == code
    assert client.get("/api/v1/products/1").json["stock"] == 5


def test_expired_holds_return_their_units_when_swept(app, client, add_product, reserve, clock):
    widget = add_product("widget", stock=5)
    reserve("order-1", [(widget["id"], 2)])
    reserve("order-2", [(widget["id"], 1)])
    with app.app_context():
        assert release_expired_holds(clock.advance(TTL - 1)) == 0
        assert release_expired_holds(clock.advance(1)) == 2
        assert release_expired_holds(clock()) == 0
    assert stock_of(client, widget) == 5


def test_reserve_sweeps_expired_holds_first(client, add_product, reserve, clock, auth_header):
    widget = add_product("widget", stock=5)
    rid = reserve("order-1", [(widget["id"], 5)]).json["id"]
    assert reserve("order-2", [(widget["id"], 1)]).status_code == 409
    clock.advance(TTL)
    assert reserve("order-2", [(widget["id"], 5)]).status_code == 201
    assert client.get(f"/api/v1/reservations/{rid}", headers=auth_header(1)).json["status"] == "expired"


def test_an_expired_hold_cannot_be_confirmed_and_its_units_come_back(client, add_product, reserve, clock, auth_header):
    widget = add_product("widget", stock=5)
    rid = reserve("order-1", [(widget["id"], 2)]).json["id"]
    clock.advance(TTL + 1)
    response = client.post(f"/api/v1/reservations/{rid}/confirm", headers=auth_header(1))
    assert response.status_code == 409 and response.json["error"]["code"] == "reservation_expired"
    assert stock_of(client, widget) == 5
    release = client.post(f"/api/v1/reservations/{rid}/release", headers=auth_header(1))
    assert release.status_code == 200 and release.json["status"] == "expired"
    assert stock_of(client, widget) == 5


def test_the_ttl_is_a_setting(make_app, auth_header, admin_header):
    client = make_app(hold_ttl_seconds=30).test_client()
    client.post("/api/v1/products", json={"name": "W", "slug": "w", "price": "1", "stock": 1},
                headers=admin_header)
    body = {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": 1}]}
    made = client.post("/api/v1/reservations", json=body, headers=auth_header(1)).json
    assert made["expires_at"].startswith("2030-01-01T12:00:30")


def test_racing_release_and_expiry_return_the_units_exactly_once(app, add_product, reserve, clock, auth_header):
    widget = add_product("widget", stock=10)
    ids = [reserve(f"order-{n}", [(widget["id"], 1)]).json["id"] for n in range(4)]
    clock.advance(TTL)  # every hold is now both releasable and expired

    def release(rid: int) -> int:
        return app.test_client().post(f"/api/v1/reservations/{rid}/release", headers=auth_header(1)).status_code

    def sweep(_: int) -> int:
        with app.app_context():
            return release_expired_holds(clock())

    with ThreadPoolExecutor(max_workers=8) as pool:
        releases = [pool.submit(release, rid) for rid in ids * 3]
        sweeps = [pool.submit(sweep, n) for n in range(4)]
        assert {future.result(timeout=30) for future in releases} == {200}
        for future in sweeps:
            future.result(timeout=30)
    assert stock_of(app.test_client(), widget) == 10
