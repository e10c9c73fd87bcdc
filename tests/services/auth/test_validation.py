"""Bad input to the JSON API: each mistake gets its own status and a JSON error body."""

from __future__ import annotations

import pytest

from tests.services.auth.conftest import PASSWORD

# Input checks happen before the database is touched: one backend is enough for them.
pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("db_backend", ["sqlite"])]
GOOD = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}


def test_malformed_json_is_a_400(client):
    response = client.post(
        "/api/v1/auth/register", data='{"email": "ada@', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": 5}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a b@example.com"}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"password": ["list"]}, "password"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"name": None}, "name"),
        ({"email": None}, "email"),
        ({"role": "admin"}, "role"),
    ],
)
def test_invalid_fields_are_a_422_naming_the_field(client, changes, field):
    response = client.post("/api/v1/auth/register", json={**GOOD, **changes})
    assert response.status_code == 422
    assert field in response.json["error"]["details"]["fields"]["json"]


@pytest.mark.parametrize("missing", ["email", "password", "name"])
def test_missing_fields_are_a_422(client, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    response = client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert missing in response.json["error"]["details"]["fields"]["json"]


def test_a_body_that_is_not_an_object_is_a_422(client):
    assert client.post("/api/v1/auth/login", json=["ada@example.com", PASSWORD]).status_code == 422


def test_a_huge_body_is_a_413(client):
    response = client.post("/api/v1/auth/register", json={**GOOD, "name": "n" * 300_000})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_a_form_post_to_the_json_api_is_a_415(client):
    response = client.post("/api/v1/auth/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"


def test_an_unknown_path_is_a_json_404(client):
    response = client.get("/api/v1/users/nobody")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
