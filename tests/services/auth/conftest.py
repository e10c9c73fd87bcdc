"""Fixtures of the auth suite: an app on a fresh, migrated database and its test client."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.auth import create_app
from services.auth.models import db

CHEAP_SCRYPT = "scrypt:1024:8:1"  # real scrypt, test-sized cost
PASSWORD = "correct horse"


@pytest.fixture
def make_app(
    database_url_for: Callable[[str], str], key_files: tuple[Path, Path]
) -> Iterator[Callable[..., Flask]]:
    """`make_app(**settings)` → an auth app on a migrated database of the current backend."""
    apps: list[Flask] = []
    url = database_url_for("auth")

    def make(**overrides: object) -> Flask:
        config = {
            "database_url": url,
            "token_private_key_file": str(key_files[0]),
            "password_hash_method": CHEAP_SCRYPT,
            "testing": True,
            **overrides,
        }
        app = create_app(config)
        with app.app_context():
            flask_migrate.upgrade()
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The auth app with default test settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app`."""
    return app.test_client()


@pytest.fixture
def register(client: FlaskClient) -> Callable[..., dict]:
    """`register(email, name=…, password=…)` → the created user (asserts 201)."""

    def create(email: str = "ada@example.com", *, name: str = "Ada", password: str = PASSWORD) -> dict:
        response = client.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "name": name}
        )
        assert response.status_code == 201, response.json
        return response.json

    return create


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., str]:
    """`login(email, password)` → an access token (asserts 200)."""

    def token_for(email: str = "ada@example.com", password: str = PASSWORD) -> str:
        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.json
        return response.json["access_token"]

    return token_for


def csrf_token_of(html: str) -> str:
    """The hidden CSRF field's value in a rendered register form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form has no CSRF field"
    return match.group(1)
