"""The catalog: create (JSON, form, the seed's legacy path), find, list v1 and v2, exact money."""

from __future__ import annotations

import time

import pytest

from tests.services.product.conftest import stock_of

pytestmark = pytest.mark.timeout(60)
SEED_FORM = "name=prod1&slug=prod1&image=product1.jpg&price=100"
FORM = "application/x-www-form-urlencoded"
# Input checks happen before the database is touched: one backend is enough for them.
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"])


def test_the_seed_form_post_on_the_legacy_path_creates_a_product(admin_client):
    response = admin_client.post("/api/product/create", data=SEED_FORM, content_type=FORM)
    assert response.status_code == 201
    body = response.json
    assert {k: body[k] for k in ("name", "slug", "image", "price", "currency", "stock")} == {
        "name": "prod1", "slug": "prod1", "image": "product1.jpg", "price": "100.00",
        "currency": "EUR", "stock": 100,
    }


def test_the_legacy_path_ignores_fields_it_does_not_know(admin_client):
    response = admin_client.post("/api/product/create", data=SEED_FORM + "&colour=red", content_type=FORM)
    assert response.status_code == 201


def test_create_takes_json_with_exact_prices(admin_client):
    body = {"name": "Cheap", "slug": "cheap", "price": "0.10", "stock": 3, "image": "c.jpg"}
    response = admin_client.post("/api/v1/products", json=body)
    assert response.status_code == 201
    assert response.json["price"] == "0.10" and response.json["stock"] == 3


@pytest.mark.parametrize(("given", "shown"), [(12.5, "12.50"), ("7", "7.00"), ("19.990", "19.99"), ("0.01", "0.01")])
def test_prices_are_kept_to_the_cent(admin_client, given, shown):
    response = admin_client.post("/api/v1/products", json={"name": "P", "slug": "p", "price": given})
    assert response.status_code == 201 and response.json["price"] == shown


def test_create_takes_form_fields_and_defaults_the_stock(make_app, admin_header):
    client = make_app(default_stock=7, currency="usd").test_client()
    response = client.post("/api/v1/products", data={"name": "F", "slug": "f", "price": "3.25"},
                           headers=admin_header)
    assert response.status_code == 201
    assert response.json["stock"] == 7 and response.json["currency"] == "USD"


def test_a_taken_slug_is_a_conflict_on_both_paths(admin_client, add_product):
    add_product("prod1")
    assert admin_client.post("/api/v1/products", json={"name": "x", "slug": "prod1", "price": 1}).status_code == 409
    response = admin_client.post("/api/product/create", data=SEED_FORM, content_type=FORM)
    assert response.status_code == 409 and response.json["error"]["code"] == "slug_taken"


def test_slugs_are_lower_cased_so_case_cannot_make_a_duplicate(admin_client, add_product):
    add_product("widget")
    response = admin_client.post("/api/v1/products", json={"name": "W", "slug": "WIDGET", "price": 1})
    assert response.status_code == 409


def test_a_product_is_found_by_id_or_slug(client, add_product):
    product = add_product("blue-widget")
    assert client.get(f"/api/v1/products/{product['id']}").json == product
    assert client.get("/api/v1/products/blue-widget").json == product
    assert client.get("/api/v1/products/Blue-Widget").json == product


@pytest.mark.parametrize("key", ["999", "no-such-thing", "9" * 40, "bad slug", "%C3%A9"])
def test_unknown_products_are_a_404(client, add_product, key):
    add_product("widget")
    response = client.get(f"/api/v1/products/{key}")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "product_not_found"


def test_v1_lists_pages_with_the_total(client, add_product):
    for n in range(5):
        add_product(f"item-{n}")
    page = client.get("/api/v1/products?page=2&per_page=2").json
    assert [p["slug"] for p in page["items"]] == ["item-2", "item-3"]
    assert (page["page"], page["per_page"], page["total"], page["pages"]) == (2, 2, 5, 3)
    assert client.get("/api/v1/products?page=9&per_page=2").json["items"] == []


@SQLITE_ONLY
@pytest.mark.parametrize("query", ["per_page=101", "per_page=0", "page=0", "page=-1", "page=x"])
def test_v1_paging_is_bounded(client, query):
    response = client.get(f"/api/v1/products?{query}")
    assert response.status_code == 422


def test_v2_has_money_objects_and_cursor_paging(client, add_product):
    for n in range(5):
        add_product(f"item-{n}", price="1.05")
    seen, cursor = [], None
    while True:
        page = client.get("/api/v2/products", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200
        seen += page.json["items"]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert [p["slug"] for p in seen] == [f"item-{n}" for n in range(5)]
    assert seen[0]["price"] == {"amount": "1.05", "currency": "EUR"}
    assert seen[0]["in_stock"] is True and "stock" not in seen[0]
    assert client.get("/api/v2/products/item-0").json == seen[0]
    assert client.get("/api/v1/products/item-0").json["price"] == "1.05"  # v1 keeps its shape


@SQLITE_ONLY
@pytest.mark.parametrize("cursor", ["garbage", "YWZ0ZXI6LTE", "!!!"])
def test_v2_refuses_cursors_it_did_not_give_out(client, cursor):
    assert client.get(f"/api/v2/products?cursor={cursor}").status_code == 422


@SQLITE_ONLY
def test_catalog_writes_need_an_admin_token(client, make_token):
    body = {"name": "A", "slug": "a", "price": "1"}
    assert client.post("/api/v1/products", json=body).status_code == 401
    anonymous_form = client.post("/api/product/create", data=SEED_FORM, content_type=FORM)
    assert anonymous_form.status_code == 401
    # The caller is checked before the body: no field errors for someone who may not write.
    assert client.post("/api/v1/products", json={"name": ""}).status_code == 401
    standard = {"Authorization": f"Bearer {make_token(1)}"}
    assert client.post("/api/v1/products", json=body, headers=standard).status_code == 403
    legacy = client.post("/api/product/create", data=SEED_FORM, content_type=FORM, headers=standard)
    assert legacy.status_code == 403
    admin = {"Authorization": f"Bearer {make_token(2, membership='admin')}"}
    assert client.post("/api/v1/products", json=body, headers=admin).status_code == 201
    assert client.get("/api/v1/products/a").status_code == 200  # reading stays open


@SQLITE_ONLY
def test_images_are_http_urls_or_relative_paths(admin_client):
    for n, image in enumerate(["product1.jpg", "img/p.png", "/static/p.png",
                               "https://cdn.example.com/p.jpg", "HTTP://example.com/p.jpg?x=1"]):
        response = admin_client.post("/api/v1/products",
                                     json={"name": "I", "slug": f"img-{n}", "price": "1", "image": image})
        assert response.status_code == 201, (image, response.json)
        assert response.json["image"] == image


@SQLITE_ONLY
def test_the_open_development_service_takes_the_seed_form_without_a_token(make_app, caplog):
    from services.product import create_app
    from services.product.catalog_access import is_loopback

    app = make_app()
    opened = create_app(app.config["SETTINGS"].__dict__ | {"testing": True}, open_catalog_writes=True)
    response = opened.test_client().post("/api/product/create", data=SEED_FORM, content_type=FORM)
    assert response.status_code == 201
    assert "catalog writes are OPEN" in caplog.text
    assert app.test_client().post("/api/product/create", data=SEED_FORM,
                                  content_type=FORM).status_code == 401
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "product")] == [False] * 4


@SQLITE_ONLY
def test_simulated_cpu_work_is_spent_on_each_product_read(make_app):
    client = make_app(simulated_cpu_ms=40).test_client()
    started = time.thread_time()  # the test client serves on this thread
    assert client.get("/api/v1/products").status_code == 200
    assert time.thread_time() - started >= 0.04


@SQLITE_ONLY
def test_simulated_delay_is_waited_on_each_product_read(make_app):
    client = make_app(simulated_delay_ms=60).test_client()
    started = time.perf_counter()
    client.get("/api/v2/products")
    assert time.perf_counter() - started >= 0.06


def test_stock_is_shown_as_available_units(client, add_product):
    product = add_product("widget", stock=4)
    assert stock_of(client, product) == 4
