"""Service tokens: client credentials (service id + shared secret) for a short-lived token.

The token is signed with auth's usual key, for the internal audience (`breakwater-internal`),
so product and cart verify it with the public key they already have, and neither a shopper's
token can stand in for it nor it for a shopper's. Each known service has its own secret:
`BREAKWATER_<SERVICE>_SERVICE_SECRET` (or `..._SECRET_FILE`); local mode generates it in the
var folder, where the service reads the same file.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from flask import Flask, current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from services.common.errors import Unauthorized
from services.common.service_identity import (
    INTERNAL_AUDIENCE,
    KNOWN_SERVICES,
    SERVICE_SUBJECT_PREFIX,
    default_secret_file,
    load_service_secret,
)
from services.common.settings import Settings, SettingsError, var_dir

ISSUER_KEY = "auth.service_token_issuer"
log = logging.getLogger(__name__)

service_tokens_blp = Blueprint("service_tokens", __name__, url_prefix="/api/v1/auth",
                               description="Tokens for Breakwater's own services")


@dataclasses.dataclass(frozen=True)
class ServiceTokenSettings(Settings):
    """`AUTH_*` (or `BREAKWATER_*`) settings of service tokens; one secret per known service."""

    prefix: ClassVar[str] = "AUTH"

    order_service_secret: str = ""
    order_service_secret_file: str = ""
    service_token_ttl_seconds: int = 300

    def __post_init__(self) -> None:
        if not self.order_service_secret_file:
            object.__setattr__(self, "order_service_secret_file",
                               str(default_secret_file(var_dir(), "order")))
        if not 30 <= self.service_token_ttl_seconds <= 3600:
            raise SettingsError("AUTH_SERVICE_TOKEN_TTL_SECONDS must be between 30 and 3600")


class ServiceTokenIssuer:
    """Checks a service's credentials and signs its token."""

    def __init__(self, sign: Callable[[Mapping[str, Any]], str], *, issuer: str,
                 secrets: dict[str, str], ttl_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        # `sign`: auth's current key, as for every token it issues (it follows a rotation).
        self._sign = sign
        self.issuer, self.ttl_seconds, self._clock = issuer, ttl_seconds, clock
        self._secrets = {service: secret for service, secret in secrets.items() if secret}

    def issue(self, service: str, secret: str) -> dict[str, Any]:
        """The token answer for valid credentials; `Unauthorized` (the same for every cause)."""
        expected = self._secrets.get(service, "")
        # Compare even for an unknown service, so timing says nothing about which ids exist.
        if not hmac.compare_digest(expected.encode() or b"\0", secret.encode()) or not expected:
            raise Unauthorized("the service credentials are not valid",
                               code="invalid_client")
        now = int(self._clock())
        claims = {"sub": f"{SERVICE_SUBJECT_PREFIX}{service}", "svc": service, "iss": self.issuer,
                  "aud": INTERNAL_AUDIENCE, "iat": now, "nbf": now, "exp": now + self.ttl_seconds}
        token = self._sign(claims)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.ttl_seconds}


class ClientCredentialsSchema(Schema):
    """A service's id and secret."""

    client_id = fields.String(required=True, validate=validate.OneOf(KNOWN_SERVICES))
    client_secret = fields.String(required=True, load_only=True, validate=validate.Length(1, 256))


class ServiceTokenSchema(Schema):
    """A short-lived token for the internal audience."""

    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


@service_tokens_blp.post("/service-token")
@service_tokens_blp.arguments(ClientCredentialsSchema)
@service_tokens_blp.response(200, ServiceTokenSchema)
@service_tokens_blp.alt_response(401, description="the credentials are not valid")
def service_token(fields: dict[str, str]) -> dict[str, Any]:
    """Exchange a service's client credentials for a short-lived internal token."""
    issuer: ServiceTokenIssuer = current_app.extensions[ISSUER_KEY]
    return issuer.issue(fields["client_id"], fields["client_secret"])


def init_service_tokens(app: Flask, sign: Callable[[Mapping[str, Any]], str]) -> None:
    """Give auth's app the issuer behind `service_tokens_blp` (registered with the others)."""
    auth_settings = app.config["SETTINGS"]
    settings = ServiceTokenSettings.from_env()
    secret = load_service_secret("order", secret=settings.order_service_secret,
                                 secret_file=settings.order_service_secret_file,
                                 environment=auth_settings.environment)
    if not secret:
        log.warning("no service secret for order: set BREAKWATER_ORDER_SERVICE_SECRET (the same "
                    "for auth and order); until then order's reconciler cannot act")
    app.extensions[ISSUER_KEY] = ServiceTokenIssuer(
        sign, issuer=auth_settings.token_issuer, secrets={"order": secret},
        ttl_seconds=settings.service_token_ttl_seconds)
