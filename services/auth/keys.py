"""Auth's signing keys: the current key signs, the next one is published ahead of its turn.

Keys come from the environment (PEM text: `AUTH_TOKEN_PRIVATE_KEY`, `AUTH_TOKEN_NEXT_PRIVATE_KEY`,
`AUTH_TOKEN_PREVIOUS_PUBLIC_KEY`) or from files beside `AUTH_TOKEN_PRIVATE_KEY_FILE`:

    token_ed25519.pem                 the current private key (signs every token)
    token_ed25519.pub.pem             its public half (for verifiers configured with one PEM)
    token_ed25519.next.pem            the next private key (published, signs nothing yet)
    token_ed25519.previous.pub.pem    the key before the last rotation, published until the
                                      tokens it signed have expired
    jwks.json                         the published key set, as `/.well-known/jwks.json`

In local mode missing keys are generated. `rotate_keys` (the `flask --app services.auth keys
rotate` command) promotes next to current and makes a new next; running auth processes see
the new files within a second (`KeyRing`), verifiers on their next unknown `kid`.
`sign_with_current_key(claims)` is how anything in auth signs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app

from services.auth.config import AuthSettings
from services.common.settings import SettingsError
from services.common.tokens import (
    TokenSigner,
    ensure_keypair,
    generate_keypair,
    key_id,
    public_jwk,
    write_atomically,
)

KEYS_KEY = "auth.keys"
CHECK_SECONDS = 1.0
RETIRED_GRACE_SECONDS = 60  # beyond the token lifetime, for clocks and slow requests

log = logging.getLogger("breakwater.auth.keys")


@dataclass(frozen=True)
class KeyFiles:
    """Where file-kept keys live, all beside the current private key."""

    current: Path

    def _beside(self, name: str) -> Path:
        return self.current.with_name(name)

    @property
    def public(self) -> Path:
        return self._beside(self.current.name.removesuffix(".pem") + ".pub.pem")

    @property
    def next(self) -> Path:
        return self._beside(self.current.name.removesuffix(".pem") + ".next.pem")

    @property
    def previous_public(self) -> Path:
        return self._beside(self.current.name.removesuffix(".pem") + ".previous.pub.pem")

    @property
    def jwks(self) -> Path:
        return self._beside("jwks.json")

    def stamp(self) -> tuple[float, ...]:
        """Modification times of the key files: a change means a rotation happened."""
        return tuple(p.stat().st_mtime if p.exists() else 0.0
                     for p in (self.current, self.next, self.previous_public))


@dataclass(frozen=True)
class SigningKeys:
    """One view of auth's keys: the current pair, and the other public keys it publishes."""

    private_pem: str
    public_pem: str
    next_public_pem: str = ""
    previous_public_pem: str = ""

    @property
    def kid(self) -> str:
        """The current key's id (the `kid` of every token signed now)."""
        return key_id(self.public_pem)

    def published_pems(self) -> list[str]:
        """Current, next and (while its tokens may live) previous public key."""
        return [pem for pem in (self.public_pem, self.next_public_pem, self.previous_public_pem)
                if pem]

    def jwks(self) -> dict[str, Any]:
        """The key set as a JWKS document."""
        return {"keys": [public_jwk(pem) for pem in self.published_pems()]}

    def derived_secret(self, purpose: str) -> str:
        """A secret for `purpose` derived from the private key, stable across restarts."""
        return hmac.new(self.private_pem.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def _private_key(pem: str, what: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.strip().encode() + b"\n", password=None)
    except ValueError as exc:
        raise SettingsError(f"the {what} is not a readable PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"the {what} must be an Ed25519 key (tokens use EdDSA)")
    return key


def _public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").strip()


def load_signing_keys(settings: AuthSettings, *, now: float | None = None) -> SigningKeys:
    """Auth's keys as configured now; in local mode missing key files are generated."""
    private_pem = _unescape(settings.token_private_key)
    files = KeyFiles(Path(settings.token_private_key_file))
    from_files = not private_pem
    if from_files:
        if not files.current.exists():
            if settings.environment != "local":
                raise SettingsError(
                    f"no token signing key: {files.current} does not exist; set "
                    "AUTH_TOKEN_PRIVATE_KEY or AUTH_TOKEN_PRIVATE_KEY_FILE (keys are generated "
                    "only in local mode)"
                )
            ensure_keypair(files.current, files.public)
        private_pem = files.current.read_text().strip()
    current = _private_key(private_pem, "token signing key")
    next_pem = _unescape(settings.token_next_private_key)
    if not next_pem and from_files:
        if not files.next.exists() and settings.environment == "local":
            write_atomically(files.next, generate_keypair()[0], 0o600)
        if files.next.exists():
            next_pem = files.next.read_text().strip()
    next_public = _public_pem(_private_key(next_pem, "next token signing key")) if next_pem else ""
    previous = _unescape(settings.token_previous_public_key)
    if not previous and from_files and files.previous_public.exists():
        age = (time.time() if now is None else now) - files.previous_public.stat().st_mtime
        if age < settings.token_ttl_seconds + RETIRED_GRACE_SECONDS:
            previous = files.previous_public.read_text().strip()
    keys = SigningKeys(private_pem=private_pem + "\n", public_pem=_public_pem(current),
                       next_public_pem=next_public, previous_public_pem=previous and previous + "\n")
    if from_files:
        _publish_files(files, keys)
    return keys


def _publish_files(files: KeyFiles, keys: SigningKeys) -> None:
    """Keep the public PEM and the JWKS file beside the keys in step (best effort)."""
    try:
        if not files.public.exists() or files.public.read_text() != keys.public_pem:
            write_atomically(files.public, keys.public_pem, 0o644)
        document = json.dumps(keys.jwks(), indent=2)
        if not files.jwks.exists() or files.jwks.read_text() != document:
            write_atomically(files.jwks, document, 0o644)
    except OSError as exc:
        log.warning("cannot write the published keys beside %s: %s", files.current, exc)


class KeyRing:
    """Auth's keys while it runs: re-read (at most once a second) when their files change, so
    every process and replica signs with the new current key soon after a rotation."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings, self._clock = settings, clock
        self._files = None if settings.token_private_key else KeyFiles(
            Path(settings.token_private_key_file))
        self._keys = load_signing_keys(settings)
        self._stamp = self._files.stamp() if self._files else ()
        self._checked = clock()
        self._signer = self._make_signer(self._keys)
        self._lock = threading.Lock()

    def _make_signer(self, keys: SigningKeys) -> TokenSigner:
        return TokenSigner(keys.private_pem, keys.public_pem, issuer=self._settings.token_issuer,
                           audience=self._settings.token_audience,
                           ttl_seconds=self._settings.token_ttl_seconds)

    def keys(self) -> SigningKeys:
        """The keys now (reloaded when the files changed)."""
        if self._files is not None and self._clock() - self._checked >= CHECK_SECONDS:
            with self._lock:
                self._checked = self._clock()
                stamp = self._files.stamp()
                retired = self._keys.previous_public_pem and not self._previous_still_published()
                if stamp != self._stamp or retired:
                    self._keys = load_signing_keys(self._settings)
                    self._stamp, self._signer = stamp, self._make_signer(self._keys)
                    log.info("token keys reloaded: current %s", self._keys.kid)
        return self._keys

    def _previous_still_published(self) -> bool:
        assert self._files is not None
        path = self._files.previous_public
        age = time.time() - path.stat().st_mtime if path.exists() else float("inf")
        return age < self._settings.token_ttl_seconds + RETIRED_GRACE_SECONDS

    def signer(self) -> TokenSigner:
        """The signer of the current key."""
        self.keys()
        return self._signer

    def sign(self, claims: Mapping[str, Any]) -> str:
        """`claims` signed with the current key (its `kid` in the header)."""
        return self.signer().sign(claims)


def sign_with_current_key(claims: Mapping[str, Any]) -> str:
    """Sign `claims` with auth's current key, as every token auth issues is signed (inside
    auth's app context; the claims are the caller's: iss, aud, sub, exp …)."""
    ring: KeyRing = current_app.extensions[KEYS_KEY]
    return ring.sign(claims)


def rotate_keys(settings: AuthSettings) -> tuple[str, str, str]:
    """Promote the next key to current and make a new next key (file-kept keys only).

    Returns (retired kid, new current kid, new next kid). The retired public key stays
    published for one token lifetime, so tokens it signed keep working until they expire.
    """
    if settings.token_private_key:
        raise SettingsError(
            "the keys come from AUTH_TOKEN_PRIVATE_KEY: rotate by setting AUTH_TOKEN_PRIVATE_KEY "
            "to the next key, AUTH_TOKEN_NEXT_PRIVATE_KEY to a new one and "
            "AUTH_TOKEN_PREVIOUS_PUBLIC_KEY to the old public key, then restart auth "
            "(docs/KEY_ROTATION.md)")
    files = KeyFiles(Path(settings.token_private_key_file))
    if not files.current.exists():
        raise SettingsError(f"no current key at {files.current}: nothing to rotate")
    old = _private_key(files.current.read_text(), "token signing key")
    if files.next.exists():
        promoted_pem = files.next.read_text()
        _private_key(promoted_pem, "next token signing key")
    else:
        log.warning("no next key was published: verifiers learn the new key on first sight")
        promoted_pem = generate_keypair()[0]
    new_next_pem = generate_keypair()[0]
    # Order matters: the old public key stays published, then the promoted key signs, then a
    # new next key is published; a process reading between two steps still sees a valid set.
    write_atomically(files.previous_public, _public_pem(old), 0o644)
    write_atomically(files.current, promoted_pem, 0o600)
    write_atomically(files.next, new_next_pem, 0o600)
    keys = load_signing_keys(settings)
    return (key_id(_public_pem(old)), keys.kid,
            key_id(_public_pem(_private_key(new_next_pem, "next token signing key"))))
