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
    # Rotation (docs/KEY_ROTATION.md): the next key, published ahead of its turn, and the
    # public half of the key before the last rotation. Files beside the key file otherwise.
    token_next_private_key: str = ""
    token_previous_public_key: str = ""
    token_ttl_seconds: int = 900
    # werkzeug's method string, e.g. "scrypt" or "scrypt:16384:8:1"; tests pass cheap parameters.
    password_hash_method: str = "scrypt"
    # Limits auth keeps itself (see services.auth.attempts); "memory://" or "redis://host:6379/0".
    rate_limit_storage: str = "memory://"
    register_limit_per_client: str = "10/minute;50/hour"
    register_limit_per_account: str = "3/minute;10/hour"
    login_failure_limit_per_client: str = "20/minute;100/hour"
    login_failure_limit_per_account: str = "5/minute;20/hour"
    # scrypt takes ~32 MiB a hash: at most this many at once, a request waits this long for one.
    max_concurrent_password_hashes: int = 4
    password_hash_wait_seconds: float = 2.0
    # Proxies in front of auth (the gateway is one): the client address is read from the right
    # of X-Forwarded-For, this many hops in; optionally only from peers in these networks.
    trusted_proxy_hops: int = 0
    trusted_proxies: tuple[str, ...] = ()
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
