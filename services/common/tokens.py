"""Access tokens: auth signs them with an Ed25519 private key; every service verifies them.

Verification needs only the public keys auth publishes (its current and next key, and for one
token lifetime after a rotation the previous one), chosen by the token's `kid`, so a service
reached directly is still protected and an auth outage does not log anybody out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
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
PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----[^-]+-----END PUBLIC KEY-----")

log = logging.getLogger("breakwater.tokens")


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
    write_atomically(public_path, public_pem, 0o644)
    write_atomically(private_path, private_pem, 0o600)


def write_atomically(path: Path, text: str, mode: int) -> None:
    """Write `text` to `path` so readers see the old file or the new one, never a part."""
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
    """Issues signed access tokens with an expiry, issuer and audience, and the key's `kid`."""

    def __init__(
        self,
        private_pem: str,
        public_pem: str,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        self.kid = key_id(public_pem)
        self.issuer, self.audience, self.ttl_seconds, self._clock = issuer, audience, ttl_seconds, clock

    def sign(self, claims: Mapping[str, Any]) -> str:
        """`claims` as a compact JWS signed with this key (EdDSA, `kid` in the header)."""
        return jwt.encode(dict(claims), self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

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
        return self.sign(claims), self.ttl_seconds


def public_keys_of(text: str) -> dict[str, Any]:
    """The Ed25519 public keys in `text` by key id: one or more PEM blocks, or a JWKS document."""
    text = text.strip()
    keys: dict[str, Any] = {}
    if text.startswith("{"):
        document = json.loads(text)
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue
            key = jwt.algorithms.OKPAlgorithm.from_jwk(jwk)
            pem = key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            keys[str(jwk.get("kid") or key_id(pem))] = key
        return keys
    for block in PEM_BLOCK.findall(text):
        keys[key_id(block)] = serialization.load_pem_public_key(block.encode())
    return keys


KeyFetcher = Callable[[], str]


class TokenVerifier:
    """Checks signature, expiry, issuer and audience of an access token, by its `kid`.

    Keys come from the published key set: PEM text, a PEM or JWKS file, a JWKS URL (auth's
    `/.well-known/jwks.json`), or a callable. They are read on first use (a service may start
    before auth has written its keys), again when a token names a key not known yet (at most
    once per `reload_seconds`, so made-up key ids cannot make it read in a loop), and again
    once they are `max_age_seconds` old, so a key auth no longer publishes is dropped. When no
    source can be read, the keys already known are kept: an auth outage logs nobody out.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        public_pem: str = "",
        public_key_file: str = "",
        jwks_file: str = "",
        jwks_url: str = "",
        fetch: KeyFetcher | None = None,
        leeway_seconds: int = 5,
        reload_seconds: float = 10.0,
        max_age_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer, self.audience, self.leeway = issuer, audience, leeway_seconds
        self._public_pem, self._files = public_pem, [f for f in (public_key_file, jwks_file) if f]
        self._jwks_url, self._fetch = jwks_url, fetch
        self.reload_seconds, self.max_age_seconds, self._clock = reload_seconds, max_age_seconds, clock
        self._keys: dict[str, Any] = {}
        self._loaded_at = self._tried_at = float("-inf")
        self._lock = threading.Lock()

    def key_ids(self) -> list[str]:
        """The key ids this verifier accepts now."""
        return sorted(self._keys)

    def _read_sources(self, *, remote: bool = True) -> dict[str, Any] | None:
        """Every key the sources publish now (the URL and fetcher too when `remote`); None
        when none of them could be read."""
        found: dict[str, Any] = {}
        read_any = False
        texts: list[str] = [self._public_pem] if self._public_pem.strip() else []
        for name in self._files:
            path = Path(name)
            if path.is_file():
                texts.append(path.read_text())
        if self._jwks_url and remote:
            import requests  # only a verifier fed by a JWKS endpoint needs it

            try:
                response = requests.get(self._jwks_url, timeout=(0.5, 2.0))
                if response.status_code == 200:
                    texts.append(response.text)
                else:
                    log.warning("the key set at %s answered %s", self._jwks_url, response.status_code)
            except requests.RequestException as exc:
                log.warning("cannot fetch the key set from %s: %s", self._jwks_url, exc)
        if self._fetch is not None and remote:
            try:
                texts.append(self._fetch())
            except Exception as exc:  # noqa: BLE001 - a source that fails keeps the known keys
                log.warning("cannot read the token key set: %s", exc)
        for text in texts:
            try:
                found.update(public_keys_of(text))
                read_any = True
            except (ValueError, TypeError) as exc:
                log.warning("an unreadable token key source was skipped: %s", exc)
        return found if read_any else None

    def _reload(self, *, wanted: str | None) -> None:
        with self._lock:
            now = self._clock()
            fresh = now - self._loaded_at < self.max_age_seconds
            if (wanted is None or wanted in self._keys) and fresh:
                return  # another thread reloaded meanwhile
            # Made-up key ids, or auth away, must not make every request read the sources;
            # before any key is known, files (cheap) are read every time, auth once a second.
            remote = now - self._tried_at >= (self.reload_seconds if self._keys else 1.0)
            if not remote and self._keys:
                return
            if remote:
                self._tried_at = now
            keys = self._read_sources(remote=remote)
            if keys:
                dropped = sorted(set(self._keys) - set(keys))
                if dropped:
                    log.info("token keys no longer published, dropped: %s", ", ".join(dropped))
                self._keys, self._loaded_at = keys, now

    def _candidates(self, kid: str | None) -> list[Any]:
        if self._clock() - self._loaded_at >= self.max_age_seconds or (kid and kid not in self._keys):
            self._reload(wanted=kid)
        if not self._keys:
            raise DependencyUnavailable(
                "no token public key is configured: set BREAKWATER_TOKEN_PUBLIC_KEY, "
                "BREAKWATER_TOKEN_PUBLIC_KEY_FILE or BREAKWATER_TOKEN_JWKS_ENDPOINT, or start auth "
                "once to generate var/keys",
                code="token_key_unavailable",
            )
        if kid is None:
            return list(self._keys.values())
        if kid not in self._keys:
            raise Unauthorized(
                f"the access token is signed by a key that is not published (kid {kid[:32]!r}); "
                "log in again", code="invalid_token")
        return [self._keys[kid]]

    def decode(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """The claims of a token signed by a published key, checked for expiry, issuer and
        audience (this verifier's unless another is named); `Unauthorized` otherwise."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            candidates = self._candidates(kid if isinstance(kid, str) else None)
            error: Exception | None = None
            for key in candidates:
                try:
                    return jwt.decode(
                        token,
                        key,
                        algorithms=[ALGORITHM],
                        issuer=self.issuer,
                        audience=audience or self.audience,
                        leeway=self.leeway,
                        options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                    )
                except jwt.InvalidSignatureError as exc:
                    error = exc
            raise error or jwt.InvalidSignatureError("no key verifies the signature")
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the access token has expired; log in again", code="token_expired") from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise Unauthorized(
                f"the access token is invalid ({exc}); log in again", code="invalid_token"
            ) from exc

    def verify(self, token: str) -> Principal:
        """The principal of a valid user token; `Unauthorized` saying what is wrong otherwise."""
        claims = self.decode(token)
        try:
            user_id = int(claims["sub"])
        except ValueError as exc:
            raise Unauthorized("the access token does not name a user; log in again",
                               code="invalid_token") from exc
        return Principal(
            user_id=user_id,
            email=str(claims.get("email", "")),
            name=str(claims.get("name", "")),
            membership=str(claims.get("membership", "standard")),
            claims=claims,
        )


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
