"""Auth's JSON API: register, login, who am I, and the public key for verifiers."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint

from services.auth import domain, guard
from services.auth.keys import KEYS_KEY, KeyRing
from services.auth.models import User
from services.auth.schemas import (
    AccessTokenSchema,
    JwksSchema,
    LoginSchema,
    RegisterSchema,
    UserSchema,
)
from services.common.tokens import current_principal, login_required

HASHER_KEY = "auth.hasher"
BEARER = [{"bearerAuth": []}]

auth_blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens")
users_blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="The caller's account")
keys_blp = Blueprint("keys", __name__, description="Public keys for verifying access tokens")


def _extension(key: str) -> Any:
    return current_app.extensions[key]


@auth_blp.post("/register")
@auth_blp.arguments(RegisterSchema)
@auth_blp.response(201, UserSchema)
@auth_blp.alt_response(409, description="an account with this email already exists")
@auth_blp.alt_response(429, description="too many registrations from this address or for this email")
@auth_blp.alt_response(503, description="too many passwords are being hashed; retry shortly")
def register(fields: dict[str, Any]) -> User:
    """Create an account (emails are compared case-insensitively)."""
    guard.count_registration(fields["email"])
    return domain.register_user(**fields, hasher=_extension(HASHER_KEY))


@auth_blp.post("/login")
@auth_blp.arguments(LoginSchema)
@auth_blp.response(200, AccessTokenSchema)
@auth_blp.alt_response(401, description="the email or password is not correct")
@auth_blp.alt_response(429, description="too many failed logins from this address or for this account")
@auth_blp.alt_response(503, description="too many passwords are being hashed; retry shortly")
def login(fields: dict[str, Any]) -> dict[str, object]:
    """Exchange email and password for a signed access token."""
    user = guard.guarded_login(fields["email"], fields["password"], _extension(HASHER_KEY))
    ring: KeyRing = _extension(KEYS_KEY)
    return domain.issue_access_token(ring.signer(), user)


@users_blp.get("/me")
@login_required
@users_blp.response(200, UserSchema)
@users_blp.alt_response(401, description="no valid access token")
@users_blp.doc(security=BEARER)
def me() -> User:
    """The caller's name, email and membership level."""
    return domain.user_by_id(current_principal().user_id)


@keys_blp.get("/.well-known/jwks.json")
@keys_blp.response(200, JwksSchema)
def jwks() -> dict[str, object]:
    """The published key set: the current key, the next one, and for one token lifetime
    after a rotation the previous one. Verifiers pick by the token's `kid`."""
    ring: KeyRing = _extension(KEYS_KEY)
    return ring.keys().jwks()


@keys_blp.get("/api/v1/auth/public-key")
@keys_blp.response(
    200, {"type": "string"}, content_type="application/x-pem-file",
    description="the Ed25519 public key (SubjectPublicKeyInfo PEM)",
)
def public_key() -> Response:
    """The current public key as PEM, for verifiers configured with one key (prefer the key
    set at `/.well-known/jwks.json`, which also holds the next key)."""
    ring: KeyRing = _extension(KEYS_KEY)
    return Response(ring.keys().public_pem, mimetype="application/x-pem-file")
