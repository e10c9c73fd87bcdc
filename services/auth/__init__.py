"""The auth service: accounts, login and signed access tokens (`python -m services.auth`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flask_migrate
from flask import Flask

from services.auth.config import AuthSettings
from services.auth.domain import PasswordHasher
from services.auth.keys import load_signing_keys
from services.auth.models import db
from services.auth.pages import CSRF_SECRET_KEY, pages
from services.auth.routes import HASHER_KEY, KEYS_KEY, SIGNER_KEY, auth_blp, keys_blp, users_blp
from services.auth.service_tokens import init_service_tokens, service_tokens_blp
from services.common.app import build_app
from services.common.settings import SettingsError
from services.common.tokens import TokenSigner

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The auth app; `config` overrides settings fields (tests pass a database URL, say)."""
    settings = AuthSettings.from_env(overrides=config)
    keys = load_signing_keys(settings)
    # Auth verifies its own tokens with the public half of the key it signs with.
    settings = dataclasses.replace(settings, token_public_key=keys.public_pem)
    try:
        hasher = PasswordHasher(settings.password_hash_method)
    except ValueError as exc:
        raise SettingsError(f"AUTH_PASSWORD_HASH_METHOD: {exc}") from exc
    app = build_app(
        settings, db, [auth_blp, users_blp, keys_blp, service_tokens_blp],
        migrations_dir=MIGRATIONS, api_title="Breakwater auth",
    )
    app.register_blueprint(pages)
    app.extensions[HASHER_KEY] = hasher
    app.extensions[KEYS_KEY] = keys
    app.extensions[SIGNER_KEY] = TokenSigner(
        keys.private_pem, keys.public_pem, issuer=settings.token_issuer,
        audience=settings.token_audience, ttl_seconds=settings.token_ttl_seconds,
    )
    init_service_tokens(app, private_pem=keys.private_pem, public_pem=keys.public_pem)
    app.extensions[CSRF_SECRET_KEY] = settings.secret_key or keys.derived_secret("auth csrf")
    if settings.auto_migrate:
        with app.app_context():
            flask_migrate.upgrade()
            # No pooled connection may outlive the migration into forked gunicorn workers.
            db.engine.dispose()
    return app
