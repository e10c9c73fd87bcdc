"""Settings of the auth service, read from `AUTH_*` (or the shared `BREAKWATER_*`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from services.common.config import ServiceSettings
from services.common.settings import var_dir


@dataclasses.dataclass(frozen=True)
class AuthSettings(ServiceSettings):
    """Auth's own fields: the signing keys, token lifetime, password hashing, limits."""

    prefix: ClassVar[str] = "AUTH"
    service_name: ClassVar[str] = "auth"
    default_port: ClassVar[int] = 5000

    token_private_key: str = ""
    token_private_key_file: str = ""
    token_ttl_seconds: int = 3600
    # werkzeug's method string, e.g. "scrypt" or "scrypt:16384:8:1"; tests pass cheap parameters.
    password_hash_method: str = "scrypt"
    secret_key: str = ""
    csrf_max_age_seconds: int = 3600
    # None means "not set": `python -m services.auth` migrates then, gunicorn does not.
    auto_migrate: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.token_private_key_file:
            default = var_dir() / "keys" / "token_ed25519.pem"
            object.__setattr__(self, "token_private_key_file", str(default))

    @property
    def token_public_key_beside_private(self) -> Path:
        """Where local mode writes the public half: `token_ed25519.pub.pem` next to the key."""
        private = Path(self.token_private_key_file)
        return private.with_name(private.name.removesuffix(".pem") + ".pub.pem")
