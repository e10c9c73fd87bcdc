"""The auth service: accounts, login and signed access tokens (`python -m services.auth`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from services.auth.admin_commands import admin_cli
from services.auth.attempts import AttemptLimits, HashingSlots
from services.auth.config import AuthSettings
from services.auth.domain import PasswordHasher
from services.auth.guard import LIMITS_KEY, PROXIES_KEY
from services.auth.key_commands import keys_cli
from services.auth.keys import KEYS_KEY, KeyRing
from services.auth.models import db
from services.auth.pages import CSRF_SECRET_KEY, pages
from services.auth.routes import HASHER_KEY, auth_blp, keys_blp, users_blp
from services.auth.service_tokens import init_service_tokens, service_tokens_blp
from services.common.app import build_app, upgrade_database
from services.common.client_address import TrustedProxies
from services.common.settings import SettingsError
from services.common.tokens import EXTENSION_KEY, TokenVerifier

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The auth app; `config` overrides settings fields (tests pass a database URL, say)."""
    settings = AuthSettings.from_env(overrides=config)
    ring = KeyRing(settings)
    keys = ring.keys()
    # Auth verifies its own tokens against the keys it publishes (no file, no URL needed).
    settings = dataclasses.replace(settings, token_public_key=keys.public_pem,
                                   token_public_key_file="", token_jwks_file="", token_jwks_endpoint="")
    try:
        slots = HashingSlots(settings.max_concurrent_password_hashes,
                             settings.password_hash_wait_seconds)
        limits = AttemptLimits(
            settings.rate_limit_storage,
            register_per_client=settings.register_limit_per_client,
            register_per_account=settings.register_limit_per_account,
            login_failures_per_client=settings.login_failure_limit_per_client,
            login_failures_per_account=settings.login_failure_limit_per_account,
        )
        proxies = TrustedProxies.from_settings(settings.trusted_proxy_hops,
                                               settings.trusted_proxies)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    try:
        hasher = PasswordHasher(settings.password_hash_method, slots)
    except ValueError as exc:
        raise SettingsError(f"AUTH_PASSWORD_HASH_METHOD: {exc}") from exc
    app = build_app(
        settings, db, [auth_blp, users_blp, keys_blp, service_tokens_blp],
        migrations_dir=MIGRATIONS, api_title="Breakwater auth",
    )
    app.register_blueprint(pages)
    app.cli.add_command(admin_cli)
    app.cli.add_command(keys_cli)
    app.extensions[HASHER_KEY] = hasher
    app.extensions[LIMITS_KEY] = limits
    app.extensions[PROXIES_KEY] = proxies
    app.extensions[KEYS_KEY] = ring
    app.extensions[EXTENSION_KEY] = TokenVerifier(
        issuer=settings.token_issuer, audience=settings.token_audience,
        fetch=lambda: json.dumps(ring.keys().jwks()), reload_seconds=1.0, max_age_seconds=5.0,
    )
    init_service_tokens(app, ring.sign)
    app.extensions[CSRF_SECRET_KEY] = settings.secret_key or keys.derived_secret("auth csrf")
    if settings.auto_migrate:
        upgrade_database(app)
    return app
