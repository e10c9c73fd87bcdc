"""The seed's browser page: `GET/POST /register`, validated server-side and CSRF-safe."""

from __future__ import annotations

import pytest

from services.auth.pages import CSRF_COOKIE
from tests.services.auth.conftest import PASSWORD, csrf_token_of

# The page adds form handling and CSRF over the API's domain code, whose database behaviour
# test_accounts covers on every backend; one backend is enough here.
pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("db_backend", ["sqlite"])]


def _form(client, **fields):
    page = client.get("/register")
    return {"csrf_token": csrf_token_of(page.text), **fields}


def test_the_form_page_has_fields_a_csrf_token_and_its_cookie(client):
    page = client.get("/register")
    assert page.status_code == 200 and page.mimetype == "text/html"
    for name in ("name", "email", "password", "csrf_token"):
        assert f'name="{name}"' in page.text
    cookie = client.get_cookie(CSRF_COOKIE, path="/register")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"


def test_a_valid_form_registers_a_user_who_can_log_in(client):
    form = _form(client, name="Ada", email="Ada@Example.com", password=PASSWORD)
    response = client.post("/register", data=form)
    assert response.status_code == 201
    assert "Welcome, Ada" in response.text and "ada@example.com" in response.text
    login = client.post("/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status_code == 200


def test_invalid_fields_are_shown_in_the_form_with_values_kept_and_escaped(client):
    form = _form(client, name="<script>x</script>", email="not-an-email", password="short")
    response = client.post("/register", data=form)
    assert response.status_code == 422
    assert "Not a valid email address." in response.text
    assert "Length must be between 8 and 128." in response.text
    assert 'value="not-an-email"' in response.text
    assert "<script>x</script>" not in response.text and "&lt;script&gt;" in response.text
    assert PASSWORD not in response.text and 'value="short"' not in response.text


def test_a_taken_email_is_shown_in_the_form(client, register):
    register("ada@example.com")
    response = client.post("/register", data=_form(client, name="A", email="ada@example.com", password=PASSWORD))
    assert response.status_code == 409
    assert "An account with this email already exists." in response.text


def test_a_missing_csrf_token_is_a_400_and_registers_nobody(client):
    client.get("/register")
    response = client.post("/register", data={"name": "A", "email": "a@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert "expired or did not come from this site" in response.text
    assert client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": PASSWORD}).status_code == 401


def test_a_tampered_csrf_token_is_a_400(client):
    form = _form(client, name="A", email="a@example.com", password=PASSWORD)
    form["csrf_token"] = form["csrf_token"][:-2] + ("xx" if not form["csrf_token"].endswith("xx") else "yy")
    assert client.post("/register", data=form).status_code == 400


def test_a_token_without_its_cookie_is_a_400(app, client):
    form = _form(client, name="A", email="a@example.com", password=PASSWORD)
    other_browser = app.test_client()  # a forged cross-site post carries no matching cookie
    assert other_browser.post("/register", data=form).status_code == 400


def test_a_token_from_another_form_load_is_a_400(client):
    old = _form(client, name="A", email="a@example.com", password=PASSWORD)
    client.get("/register")  # a new nonce cookie replaces the one `old` was made for
    assert client.post("/register", data=old).status_code == 400


def test_a_json_post_to_the_form_is_a_415(client):
    response = client.post("/register", json={"name": "A"})
    assert response.status_code == 415
