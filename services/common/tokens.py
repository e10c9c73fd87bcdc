"""Access tokens: auth signs them with an Ed25519 private key; every service verifies them.

Verification needs only the public key, so a service reached directly is still protected and
an auth outage does not log anybody out.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app, g, request

from services.common.errors import DependencyUnavailable, Unauthorized

ALGORITHM = "EdDSA"
EXTENSION_KEY = "breakwater.token_verifier"


def generate_keypair() -> tuple[str, str]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


def ensure_keypair(private_path: Path, public_path: Path) -> None:
    """Write a key pair to the two paths unless the private key already exists.

    Each file appears whole (written aside, then renamed) and the public key first, so a
    process that sees the private key can always read both, even while workers race.
    """
    if private_path.exists():
        return
    private_pem, public_pem = generate_keypair()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(public_path, public_pem, 0o644)
    _write_atomically(private_path, private_pem, 0o600)


def _write_atomically(path: Path, text: str, mode: int) -> None:
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(aside, path)


def key_id(public_pem: str) -> str:
    """A short stable id of a public key (the `kid` header), from its SHA-256."""
    digest = hashlib.sha256(public_pem.strip().encode()).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")


def public_jwk(public_pem: str) -> dict[str, Any]:
    """The public key as a JWK, for `/.well-known/jwks.json`."""
    key = serialization.load_pem_public_key(public_pem.encode())
    jwk = jwt.algorithms.OKPAlgorithm.to_jwk(key, as_dict=True)
    return {**jwk, "kid": key_id(public_pem), "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    user_id: int
    email: str
    name: str
    membership: str
    claims: dict[str, Any]


class TokenSigner:
    """Issues signed access tokens with an expiry, issuer and audience."""

    def __init__(
        self,
        private_pem: str,
        public_pem: str,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        self._kid = key_id(public_pem)
        self.issuer, self.audience, self.ttl_seconds, self._clock = issuer, audience, ttl_seconds, clock

    def issue(self, user_id: int, email: str, name: str, membership: str) -> tuple[str, int]:
        """A token for this user and its lifetime in seconds."""
        now = int(self._clock())
        claims = {
            "sub": str(user_id),
            "email": email,
            "name": name,
            "membership": membership,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})
        return token, self.ttl_seconds


class TokenVerifier:
    """Checks signature, expiry, issuer and audience of an access token.

    The public key comes as PEM text or from a file read on first use, so a service may start
    before auth has written its keys.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        public_pem: str = "",
        public_key_file: str = "",
        leeway_seconds: int = 5,
    ) -> None:
        self.issuer, self.audience, self.leeway = issuer, audience, leeway_seconds
        self._public_pem, self._public_key_file = public_pem, public_key_file
        self._key: Any = None

    def _public_key(self) -> Any:
        if self._key is None:
            pem = self._public_pem
            if not pem and self._public_key_file and Path(self._public_key_file).exists():
                pem = Path(self._public_key_file).read_text()
            if not pem:
                raise DependencyUnavailable(
                    "no token public key is configured: set BREAKWATER_TOKEN_PUBLIC_KEY or "
                    "BREAKWATER_TOKEN_PUBLIC_KEY_FILE, or start auth once to generate var/keys",
                    code="token_key_unavailable",
                )
            self._key = serialization.load_pem_public_key(pem.encode())
        return self._key

    def claims(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """The claims of a token signed by auth for `audience` (default: this verifier's);
        raises PyJWT's `InvalidTokenError` when it is not one."""
        return jwt.decode(
            token,
            self._public_key(),
            algorithms=[ALGORITHM],
            issuer=self.issuer,
            audience=audience or self.audience,
            leeway=self.leeway,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; `Unauthorized` saying what is wrong otherwise."""
        try:
            claims = self.claims(token)
            return Principal(
                user_id=int(claims["sub"]),
                email=str(claims.get("email", "")),
                name=str(claims.get("name", "")),
                membership=str(claims.get("membership", "standard")),
                claims=claims,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the access token has expired; log in again", code="token_expired") from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise Unauthorized(
                f"the access token is invalid ({exc}); log in again", code="invalid_token"
            ) from exc


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header, or `Unauthorized`."""
    if not authorization:
        raise Unauthorized(
            "this endpoint needs an access token: send 'Authorization: Bearer <token>' "
            "(POST /api/v1/auth/login gives one)",
            code="missing_token",
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'", code="invalid_token")
    return token.strip()


def current_principal() -> Principal:
    """The caller of this request, verified from its bearer token (cached on `g`)."""
    principal = g.get("principal")
    if principal is None:
        verifier: TokenVerifier = current_app.extensions[EXTENSION_KEY]
        principal = verifier.verify(bearer_token(request.headers.get("Authorization")))
        g.principal = principal
    return principal


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reject the request with 401 unless it carries a valid access token."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_principal()
        return view(*args, **kwargs)

    wrapper._breakwater_auth = True  # type: ignore[attr-defined]  # read by the OpenAPI docs
    return wrapper
