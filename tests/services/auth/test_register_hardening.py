"""`/register` against a hostile browser or user: CSP and no framing, nosniff, a Secure cookie
behind a TLS-terminating trusted proxy, common passwords and hidden characters refused."""

from __future__ import annotations

import re

import pytest

from services.auth.pages import CSRF_COOKIE
from services.auth.schemas import common_passwords
from tests.services.auth.conftest import PASSWORD, csrf_token_of

pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("db_backend", ["sqlite"])]
HIDDEN = ["Ada\u202eevil", "Ada\u200b", "\u2066Ada\u2069", "Ada\ufeff", "A\u0000da", "A\u2028da",
          "\u3164", "Ada\U000e0041", "Ada\ue000"]


def _form(client, **fields):
    page = client.get("/register")
    return {"csrf_token": csrf_token_of(page.text), **fields}


def test_every_page_answer_forbids_framing_and_sniffing(client):
    for response in (client.get("/register"),
                     client.post("/register", data=_form(client, name="A", email="x", password="p")),
                     client.post("/register", data={"name": "A"})):
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_inline_style_carries_the_nonce_the_policy_names(client):
    page = client.get("/register")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    assert f'<style nonce="{nonce}">' in page.text
    assert nonce not in client.get("/register").headers["Content-Security-Policy"]  # fresh each time


@pytest.mark.parametrize(("hops", "proto", "secure"), [
    (1, "https", True),    # the trusted gateway says the client used HTTPS
    (0, "https", False),   # nobody trusted: a client's own header changes nothing
    (1, "http", False),
])
def test_the_cookie_is_secure_when_the_trusted_proxy_says_https(make_app, hops, proto, secure):
    client = make_app(trusted_proxy_hops=hops).test_client()
    client.get("/register", headers={"X-Forwarded-Proto": proto, "X-Forwarded-For": "203.0.113.5"})
    cookie = client.get_cookie(CSRF_COOKIE, path="/register")
    assert cookie is not None and cookie.secure is secure


@pytest.mark.parametrize("password", ["password", "Password", "PASSWORD1", "qwerty123",
                                      "iloveyou", "breakwater", "12345678"])
def test_common_passwords_are_refused_by_api_and_page(client, password):
    api = client.post("/api/v1/auth/register",
                      json={"email": "a@example.com", "password": password, "name": "A"})
    assert api.status_code == 422
    assert "common" in str(api.json["error"]["details"]["fields"]["json"]["password"])
    page = client.post("/register", data=_form(client, name="A", email="a@example.com",
                                              password=password))
    assert page.status_code == 422 and "most common" in page.text


def test_the_list_is_a_few_hundred_and_leaves_good_passwords_alone(client):
    assert 300 <= len(common_passwords()) <= 5000
    response = client.post("/api/v1/auth/register",
                           json={"email": "a@example.com", "password": PASSWORD, "name": "A"})
    assert response.status_code == 201


@pytest.mark.parametrize("name", HIDDEN)
def test_names_with_bidi_control_or_invisible_characters_are_refused(client, name):
    api = client.post("/api/v1/auth/register",
                      json={"email": "a@example.com", "password": PASSWORD, "name": name})
    assert api.status_code == 422, name.encode("unicode_escape")
    assert "name" in api.json["error"]["details"]["fields"]["json"]
    page = client.post("/register", data=_form(client, name=name, email="a@example.com",
                                              password=PASSWORD))
    assert page.status_code in (400, 422)  # 400: a NUL the form parser itself refuses


@pytest.mark.parametrize("name", ["Zoë Ångström", "李小龍", "محمد", "Jean-Luc O'Neill", "Ада"])
def test_ordinary_names_in_any_script_are_kept(client, name):
    api = client.post("/api/v1/auth/register",
                      json={"email": f"{abs(hash(name))}@example.com", "password": PASSWORD,
                            "name": name})
    assert api.status_code == 201 and api.json["name"] == name


def test_an_email_with_hidden_characters_is_refused(client):
    response = client.post("/api/v1/auth/register",
                           json={"email": "ada\u200b@example.com", "password": PASSWORD, "name": "A"})
    assert response.status_code == 422


def test_a_rate_limited_page_post_answers_a_page_with_retry_after(make_app):
    client = make_app(register_limit_per_client="1/minute").test_client()
    first = client.post("/register", data=_form(client, name="A", email="a@example.com",
                                               password=PASSWORD))
    assert first.status_code == 201
    second = client.post("/register", data=_form(client, name="B", email="b@example.com",
                                                password=PASSWORD))
    assert second.status_code == 429 and second.mimetype == "text/html"
    assert int(second.headers["Retry-After"]) >= 1 and "wait" in second.text
