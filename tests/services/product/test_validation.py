"""Bad input to product's API: each mistake gets its own status and a JSON error body."""

from __future__ import annotations

import pytest

# Input checks happen before the database is touched: one backend is enough for them.
pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("db_backend", ["sqlite"])]
GOOD = {"name": "Widget", "slug": "widget", "price": "12.50", "stock": 5}


def test_malformed_json_is_a_400(admin_client):
    response = admin_client.post("/api/v1/products", data='{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"


def test_malformed_json_to_reservations_is_a_400(client, auth_header):
    response = client.post(
        "/api/v1/reservations", data="[{", content_type="application/json", headers=auth_header(1)
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": "-1"}, "price"),
        ({"price": "12.505"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "1e12"}, "price"),
        ({"price": "twelve"}, "price"),
        ({"price": True}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 2.5}, "stock"),
        ({"stock": "many"}, "stock"),
        ({"stock": 10**12}, "stock"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"slug": "123"}, "slug"),
        ({"slug": "a--b"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"image": "i" * 256}, "image"),
        ({"price": "0"}, "price"),
        ({"price": 0}, "price"),
        ({"price": "0.00"}, "price"),
        ({"image": "javascript:alert(1)"}, "image"),
        ({"image": "JavaScript:alert(1)"}, "image"),
        ({"image": "data:image/svg+xml;base64,PHN2Zz4="}, "image"),
        ({"image": "//evil.example/p.jpg"}, "image"),
        ({"image": "http:p.jpg"}, "image"),
        ({"image": "ftp://example.com/p.jpg"}, "image"),
        ({"image": "java\tscript:alert(1)"}, "image"),
        ({"image": "a b.jpg"}, "image"),
        ({"image": "\\\\host\\p.jpg"}, "image"),
        ({"image": "http://[::1/p.jpg"}, "image"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_product_fields_are_a_422_naming_the_field(admin_client, changes, field):
    response = admin_client.post("/api/v1/products", json={**GOOD, **changes})
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]["json_or_form"]


@pytest.mark.parametrize("missing", ["name", "slug", "price"])
def test_missing_product_fields_are_a_422(admin_client, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    assert admin_client.post("/api/v1/products", json=body).status_code == 422


def test_a_huge_body_is_a_413(admin_client):
    response = admin_client.post("/api/v1/products", json={**GOOD, "name": "n" * 300_000})
    assert response.status_code == 413
    huge_form = admin_client.post("/api/product/create", data={"name": "n" * 300_000, "slug": "s", "price": "1"})
    assert huge_form.status_code == 413


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/products", "text/plain"),
        ("/api/product/create", "application/xml"),
        ("/api/v1/reservations", "application/x-www-form-urlencoded"),
    ],
)
def test_a_wrong_content_type_is_a_415(client, auth_header, path, content_type):
    response = client.post(path, data="name=x", content_type=content_type, headers=auth_header(1))
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "body",
    [
        {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": 0}]},
        {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": -3}]},
        {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": 1.5}]},
        {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": "lots"}]},
        {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": 10_001}]},
        {"order_ref": "o-1", "lines": [{"product_id": 0, "quantity": 1}]},
        {"order_ref": "o-1", "lines": [{"product_id": 2**40, "quantity": 1}]},
        {"order_ref": "o-1", "lines": [{"product_id": 1}]},
        {"order_ref": "o-1", "lines": []},
        {"order_ref": "o-1", "lines": [{"product_id": 1, "quantity": 1}] * 51},
        {"order_ref": "o-1", "lines": "1x widget"},
        {"order_ref": "", "lines": [{"product_id": 1, "quantity": 1}]},
        {"order_ref": "has space", "lines": [{"product_id": 1, "quantity": 1}]},
        {"order_ref": "r" * 65, "lines": [{"product_id": 1, "quantity": 1}]},
        {"order_ref": 17, "lines": [{"product_id": 1, "quantity": 1}]},
        {"lines": [{"product_id": 1, "quantity": 1}]},
        {"order_ref": "o-1"},
        ["o-1"],
    ],
)
def test_invalid_reservations_are_a_422(client, auth_header, add_product, body):
    add_product("widget")
    response = client.post("/api/v1/reservations", json=body, headers=auth_header(1))
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "invalid_field"
