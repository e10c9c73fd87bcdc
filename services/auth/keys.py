"""The token signing key: from the environment, from a file, or generated once in local mode."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.auth.config import AuthSettings
from services.common.settings import SettingsError
from services.common.tokens import ensure_keypair


@dataclass(frozen=True)
class SigningKeys:
    """Auth's Ed25519 key pair as PEM text."""

    private_pem: str
    public_pem: str

    def derived_secret(self, purpose: str) -> str:
        """A secret for `purpose` derived from the private key, stable across restarts."""
        return hmac.new(self.private_pem.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def load_signing_keys(settings: AuthSettings) -> SigningKeys:
    """The key pair auth signs with; generated beside the key file in local mode if missing."""
    private_pem = settings.token_private_key.replace("\\n", "\n").strip()
    if not private_pem:
        path = Path(settings.token_private_key_file)
        if not path.exists():
            if settings.environment != "local":
                raise SettingsError(
                    f"no token signing key: {path} does not exist; set AUTH_TOKEN_PRIVATE_KEY "
                    "or AUTH_TOKEN_PRIVATE_KEY_FILE (keys are generated only in local mode)"
                )
            ensure_keypair(path, settings.token_public_key_beside_private)
        private_pem = path.read_text().strip()
    try:
        key = serialization.load_pem_private_key(private_pem.encode() + b"\n", password=None)
    except ValueError as exc:
        raise SettingsError(f"the token signing key is not a readable PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError("the token signing key must be an Ed25519 key (tokens use EdDSA)")
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return SigningKeys(private_pem=private_pem + "\n", public_pem=public_pem)
