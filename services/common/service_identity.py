"""Service identity: tokens auth issues to services, and the guard on service-only endpoints.

A service proves who it is with a secret it shares with auth (client credentials) and gets a
short-lived token signed with auth's usual key, for the internal audience: every service
verifies it with the public key it already has, and a shopper's token (another audience) is
never accepted in its place, nor a service token where a shopper's is expected. The user on
whose behalf a service acts travels in `X-Breakwater-Acting-User`.

- order side: `ServiceTokenSource` obtains, caches and refreshes the token;
- product and cart side: `@service_required("order")` and `acting_user_id()`.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request

from services.common.errors import BadRequest, DependencyUnavailable, Forbidden, Unauthorized
from services.common.tokens import EXTENSION_KEY, TokenVerifier, bearer_token

if TYPE_CHECKING:
    from services.common.client import ResilientClient

INTERNAL_AUDIENCE = "breakwater-internal"
ACTING_USER_HEADER = "X-Breakwater-Acting-User"
SERVICE_TOKEN_PATH = "/api/v1/auth/service-token"
SERVICE_SUBJECT_PREFIX = "service:"
MAX_USER_ID = 2**63 - 1
# Services that may ask auth for a token; each has its own secret.
KNOWN_SERVICES = ("order",)

log = logging.getLogger(__name__)


def default_secret_file(var_dir: Path, service: str) -> Path:
    """Where local mode keeps a service's secret: `<var>/keys/<service>_service.secret`."""
    return var_dir / "keys" / f"{service}_service.secret"


def load_service_secret(service: str, *, secret: str, secret_file: str, environment: str) -> str:
    """The shared secret of `service`: given as text, else read from its file; generated into
    the file (once, whoever comes first) in local mode; "" when none is configured."""
    if secret.strip():
        return secret.strip()
    if not secret_file:
        return ""
    path = Path(secret_file)
    if not path.exists() and environment == "local":
        _create_secret_file(path)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _create_secret_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(32))
    try:
        os.link(aside, path)  # fails if another process made it first: theirs wins, whole
    except FileExistsError:
        pass
    finally:
        aside.unlink(missing_ok=True)


# --- the calling side ----------------------------------------------------------------------

class ServiceTokenSource:
    """This service's token from auth, fetched when first needed and refreshed before expiry."""

    def __init__(self, client: ResilientClient, service: str, secret: str, *, upstream: str = "auth",
                 clock: Callable[[], float] = time.time, refresh_margin: float = 30.0) -> None:
        self.client, self.service, self.upstream = client, service, upstream
        self._secret, self._clock, self._margin = secret, clock, refresh_margin
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def token(self) -> str:
        """A token valid for at least the refresh margin (fetched from auth when not)."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin:
                self._token, lifetime = self._fetch()
                self._expires_at = self._clock() + lifetime
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (a service refused it, e.g. after a key rotation)."""
        with self._lock:
            self._token = None

    def headers(self, acting_user: int) -> dict[str, str]:
        """Authorization and acting-user headers of a call made on behalf of `acting_user`."""
        return {"Authorization": f"Bearer {self.token()}", ACTING_USER_HEADER: str(acting_user)}

    def _fetch(self) -> tuple[str, float]:
        if not self._secret:
            raise DependencyUnavailable(
                f"the {self.service} service has no service secret: set "
                f"BREAKWATER_{self.service.upper()}_SERVICE_SECRET (the same value for auth and "
                f"{self.service}); local mode generates one in the var folder",
                code="service_identity_unavailable")
        response = self.client.request(
            self.upstream, "POST", SERVICE_TOKEN_PATH, idempotent=True,
            json={"client_id": self.service, "client_secret": self._secret},
            headers={"Accept": "application/json"})
        if response.status != 200:
            raise DependencyUnavailable(
                f"auth refused the {self.service} service's credentials ({response.status}): "
                f"check that BREAKWATER_{self.service.upper()}_SERVICE_SECRET is the same for auth "
                f"and {self.service}", code="service_identity_refused")
        try:
            body = response.json()
            return str(body["access_token"]), float(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DependencyUnavailable("auth sent a service token this service cannot read",
                                        code="service_identity_unavailable") from exc


# --- the called side -----------------------------------------------------------------------

@dataclass(frozen=True)
class ServicePrincipal:
    """A verified service caller and the user it acts for."""

    service: str
    acting_user: int
    claims: dict[str, Any]


def verify_service_token(verifier: TokenVerifier, token: str, allowed: tuple[str, ...]) -> str:
    """The service a valid internal token speaks for: 401 for an invalid token, 403 for a
    shopper's token or a service not in `allowed`."""
    try:
        claims = verifier.decode(token, audience=INTERNAL_AUDIENCE)
    except Unauthorized as exc:
        if exc.code == "token_expired":
            raise Unauthorized("the service token has expired; fetch a new one",
                               code="token_expired") from exc
        try:
            verifier.decode(token)
        except Unauthorized:
            raise Unauthorized(f"the service token is invalid ({exc.message})",
                               code="invalid_token") from exc
        raise Forbidden("this endpoint is for Breakwater's services only; a shopper's token is "
                        "not accepted here", code="service_only") from exc
    subject = str(claims.get("sub", ""))
    service = str(claims.get("svc", ""))
    if subject != f"{SERVICE_SUBJECT_PREFIX}{service}" or service not in allowed:
        raise Forbidden(f"only the {' or '.join(allowed)} service may call this endpoint",
                        code="service_not_allowed", details={"service": service})
    return service


def _acting_user(raw: str | None) -> int:
    if raw is None or not raw.strip().isdigit() or not 1 <= int(raw.strip()) <= MAX_USER_ID:
        raise BadRequest(f"send the user this call acts for in {ACTING_USER_HEADER} (a positive "
                         "integer)", code="acting_user_required")
    return int(raw.strip())


def service_required(*allowed: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Accept the request only from one of `allowed` services, acting for a named user."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            verifier: TokenVerifier = current_app.extensions[EXTENSION_KEY]
            token = bearer_token(request.headers.get("Authorization"))
            service = verify_service_token(verifier, token, allowed)
            g.service_principal = ServicePrincipal(
                service, _acting_user(request.headers.get(ACTING_USER_HEADER)), {})
            return view(*args, **kwargs)

        wrapper._breakwater_auth = True  # type: ignore[attr-defined]  # read by the OpenAPI docs
        return wrapper

    return decorate


def current_service() -> ServicePrincipal:
    """The verified service caller of this request (inside a `service_required` view)."""
    principal = g.get("service_principal")
    if principal is None:
        raise Unauthorized("this endpoint needs a service token", code="missing_token")
    return principal


def acting_user_id() -> int:
    """The user the calling service acts for."""
    return current_service().acting_user
