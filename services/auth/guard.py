"""What auth checks about the caller before it spends a password hash: who is calling (behind
trusted proxies), and whether they may try again yet (see `services.auth.attempts`)."""

from __future__ import annotations

from flask import current_app, request

from services.auth import domain
from services.auth.attempts import AttemptLimits
from services.auth.models import MEMBERSHIP_ADMIN, User
from services.common.client_address import TrustedProxies, client_address, forwarded_proto
from services.common.errors import Unauthorized
from services.common.tokens import current_principal

LIMITS_KEY, PROXIES_KEY = "auth.attempt_limits", "auth.trusted_proxies"


def _limits() -> AttemptLimits:
    return current_app.extensions[LIMITS_KEY]


def _proxies() -> TrustedProxies:
    return current_app.extensions[PROXIES_KEY]


def caller_address() -> str:
    """The client's address: the peer, or what the trusted proxies say it is."""
    return client_address(request.environ, _proxies())


def caller_used_https() -> bool:
    """Whether the client reached the outermost trusted proxy (or auth itself) over HTTPS."""
    return forwarded_proto(request.environ, _proxies()) == "https"


def _caller_is_admin() -> bool:
    if not request.headers.get("Authorization"):
        return False
    try:
        return current_principal().membership == MEMBERSHIP_ADMIN
    except Unauthorized:
        return False


def count_registration(email: str) -> None:
    """Count a registration attempt (429 when spent); an admin's token lifts the limits (the
    seed registers its shoppers with one, again on every run)."""
    if not _caller_is_admin():
        _limits().register_attempt(caller_address(), email)


def guarded_login(email: str, password: str, hasher: domain.PasswordHasher) -> User:
    """`domain.authenticate` behind the failed-login limits of the client and the account."""
    client = caller_address()
    _limits().check_login(client, email)
    try:
        return domain.authenticate(email, password, hasher=hasher)
    except Unauthorized:
        _limits().login_failed(client, email)
        raise
