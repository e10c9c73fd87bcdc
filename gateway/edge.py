"""What the edge checks before any upstream is called: headers, token, login rate."""

from __future__ import annotations

import json
import logging
import math
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from services.common.client_address import TrustedProxies, client_address
from services.common.errors import ApiError, DependencyUnavailable, RateLimited, Unauthorized
from services.common.tokens import Principal, TokenVerifier, bearer_token, key_id

log = logging.getLogger("breakwater.gateway.edge")

MAX_FIELD_BYTES = 8000
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


def request_id(environ: Mapping[str, Any]) -> str:
    """The client's `X-Request-Id` when it is short and plain, else a new one: 128 random
    bits as 32 hex digits, like a uuid4's hex. They name a request in logs and need not be
    secret, so they come from `random` (re-seeded in every forked worker), not from the
    system's entropy: that call was the single largest cost of a proxied read's own work."""
    given = environ.get("HTTP_X_REQUEST_ID")
    if given and _SANE_REQUEST_ID.fullmatch(given):
        return given
    return f"{random.getrandbits(128):032x}"


def forwarded_client(peer: str, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client's address: `peer`, or, behind `trusted_hops` trusted proxies, the address
    the outermost trusted proxy saw, counted from the right of `X-Forwarded-For` (the rule
    auth applies too: `services.common.client_address`)."""
    if trusted_hops <= 0:  # the peer itself (what `client_address` answers, without its work)
        return peer or "unknown"
    environ = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded_for or ""}
    return client_address(environ, TrustedProxies(hops=trusted_hops))


def client_ip(environ: Mapping[str, Any], trust_forwarded: bool, trusted_hops: int = 1) -> str:
    """The caller's address; behind trusted proxies, counted from the right of
    `X-Forwarded-For` (never the leftmost entry, which the client controls)."""
    return forwarded_client(environ.get("REMOTE_ADDR") or "unknown",
                            environ.get("HTTP_X_FORWARDED_FOR"),
                            trusted_hops if trust_forwarded else 0)


def check_header_limits(environ: Mapping[str, Any], max_bytes: int, max_count: int) -> None:
    """431 when the request carries too many or too large headers."""
    sizes = [len(key) + len(value) for key, value in environ.items() if key[:5] == "HTTP_"]
    # One field past what the services' servers take (gunicorn: 8190) would be refused there
    # in their own format; refuse it here, as JSON.
    if len(sizes) > max_count or sum(sizes) > max_bytes or max(sizes, default=0) > MAX_FIELD_BYTES:
        raise ApiError(
            f"the request headers are too large (at most {max_count} headers, {max_bytes} bytes, "
            f"{MAX_FIELD_BYTES} bytes in one)",
            code="headers_too_large",
            status=431,
        )


class LoginRateLimiter:
    """A token bucket per client IP: `burst` attempts at once, refilled at `per_minute`."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_clients, self._clock = (
            per_minute / 60.0,
            burst,
            max_clients,
            clock,
        )
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Spend one token of `client`'s bucket, or raise 429 with the seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        if not allowed:
            wait = math.ceil((1.0 - tokens) / self.rate) if self.rate > 0 else 60
            raise RateLimited(
                "too many login attempts from this address; wait before trying again",
                details={"retry_after_seconds": wait},
                retry_after=max(1, wait),
            )


KeyFetcher = Callable[[], list[tuple[str | None, str]]]


class EdgeAuth:
    """Verifies access tokens at the edge, with the auth public key cached per key id.

    Keys come from `GATEWAY_TOKEN_PUBLIC_KEY`, the public key file, or auth itself (the
    fetcher). Auth's key set is asked again on an unknown key id and once the keys are
    `max_age_seconds` old; a key auth no longer publishes is dropped then. When auth cannot
    be asked the keys already known are kept, so an auth outage does not log anybody out.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        public_pem: str = "",
        public_key_file: str = "",
        fetch_keys: KeyFetcher | None = None,
        retry_seconds: float = 5.0,
        max_age_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer, self.audience = issuer, audience
        self._public_pem, self._public_key_file, self._fetch = (
            public_pem,
            public_key_file,
            fetch_keys,
        )
        self._retry_seconds, self._clock = retry_seconds, clock
        self._verifiers: dict[str, TokenVerifier] = {}
        self._next_load = self._fetched_at = float("-inf")
        self._max_age = max_age_seconds
        self._lock = threading.Lock()

    def verify(self, authorization: str | None) -> Principal:
        """The principal of the bearer token, or `Unauthorized` (503 if no key can be had)."""
        token = bearer_token(authorization)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(
                f"the access token is invalid ({exc}); log in again", code="invalid_token"
            ) from exc
        if self._fetch is not None and self._clock() - self._fetched_at >= self._max_age:
            self._load_keys(kid, refresh=True)
        verifier = self._verifiers.get(kid) if kid else None
        if verifier is None:
            self._load_keys(kid)
            verifier = self._verifiers.get(kid) if kid else None
        if verifier is not None:
            return verifier.verify(token)
        if not self._verifiers:
            raise DependencyUnavailable(
                "the gateway has no token public key yet (auth unreachable and none "
                "configured): set GATEWAY_TOKEN_PUBLIC_KEY_FILE or start auth",
                code="token_key_unavailable",
                retry_after=max(1, math.ceil(self._retry_seconds)),
            )
        # No key id, or one we cannot name: try every key we hold (there are one or two).
        error: Unauthorized | None = None
        for candidate in list(self._verifiers.values()):
            try:
                return candidate.verify(token)
            except Unauthorized as exc:
                error = exc
        assert error is not None
        raise error

    def known_key_ids(self) -> list[str]:
        """The key ids this edge can verify now."""
        return sorted(self._verifiers)

    def _load_keys(self, wanted: str | None, *, refresh: bool = False) -> None:
        """Read the configured keys, then ask auth if the wanted one is still unknown (or the
        keys are due a refresh); keys auth no longer publishes are dropped."""
        with self._lock:
            if self._clock() < self._next_load or (self._has(wanted) and not refresh):
                return
            self._next_load = self._clock() + self._retry_seconds
            configured = self._configured_pems()
            for pem in configured:
                self._add(pem)
            if (refresh or not self._has(wanted)) and self._fetch is not None:
                try:
                    published = self._fetch()
                except Exception as exc:  # noqa: BLE001 - auth down: keep the keys we have
                    log.warning("cannot fetch the token public key from auth: %s", exc)
                    return
                self._fetched_at = self._clock()
                if published:
                    keep = {kid or key_id(pem) for kid, pem in published}
                    keep |= {key_id(pem) for pem in configured}
                    for gone in sorted(set(self._verifiers) - keep):
                        del self._verifiers[gone]
                        log.info("token public key %s dropped: auth no longer publishes it", gone)
                    for kid, pem in published:
                        self._add(pem, kid)

    def _has(self, kid: str | None) -> bool:
        return kid in self._verifiers if kid else bool(self._verifiers)

    def _configured_pems(self) -> list[str]:
        pems = [self._public_pem] if self._public_pem.strip() else []
        path = Path(self._public_key_file) if self._public_key_file else None
        if path is not None and path.is_file():
            pems.append(path.read_text())
        return pems

    def _add(self, pem: str, kid: str | None = None) -> None:
        kid = kid or key_id(pem)
        if kid not in self._verifiers:
            self._verifiers[kid] = TokenVerifier(
                issuer=self.issuer, audience=self.audience, public_pem=pem
            )
            log.info("token public key %s loaded", kid)


def pems_from_jwks(document: Any) -> list[tuple[str | None, str]]:
    """The Ed25519 keys of a JWKS document as (key id, PEM text)."""
    pems = []
    for jwk in (document or {}).get("keys", []):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        key = jwt.algorithms.OKPAlgorithm.from_jwk(jwk)
        pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        pems.append((jwk.get("kid"), pem))
    return pems


def pems_from_public_key_response(data: bytes) -> list[tuple[str | None, str]]:
    """The PEM of `/api/v1/auth/public-key`: raw PEM text or JSON holding it."""
    text = data.decode("utf-8", "replace")
    if text.lstrip().startswith("-----BEGIN"):
        return [(None, text)]
    try:
        document = json.loads(text)
    except ValueError:
        return []
    if isinstance(document, dict):
        for field in ("public_key", "public_key_pem", "pem", "key"):
            value = document.get(field)
            if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
                return [(document.get("kid"), value)]
        if "keys" in document:
            return pems_from_jwks(document)
    return []
