"""Settings every service shares; each service subclasses with its own prefix and fields."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.settings import Settings, var_dir


@dataclasses.dataclass(frozen=True)
class ServiceSettings(Settings):
    """What every service reads from `<PREFIX>_*` (or the shared `BREAKWATER_*`)."""

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 5000

    port: int = 0
    database_url: str = ""
    max_content_length: int = 256 * 1024
    token_issuer: str = "breakwater-auth"
    token_audience: str = "breakwater"
    token_public_key: str = ""
    token_public_key_file: str = ""
    # The key set auth publishes: a JWKS file (local mode: var/keys/jwks.json, written by auth)
    # and/or auth's URL (http://auth:5000/.well-known/jwks.json); read again on an unknown kid.
    token_jwks_file: str = ""
    token_jwks_endpoint: str = ""
    resilience: bool = True
    registry_file: str = ""  # the local supervisor's registry of instances (BREAKWATER_REGISTRY_FILE)
    environment: str = "local"
    instance_id: str = ""
    log_level: str = "INFO"
    testing: bool = False

    def __post_init__(self) -> None:
        # Defaults that depend on the service or on var/ are filled in here, once.
        if not self.port:
            object.__setattr__(self, "port", self.default_port)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{var_dir() / f'{self.service_name}.db'}")
        if not self.token_public_key_file:
            object.__setattr__(self, "token_public_key_file", str(var_dir() / "keys" / "token_ed25519.pub.pem"))
        if not self.token_jwks_file:
            object.__setattr__(self, "token_jwks_file", str(var_dir() / "keys" / "jwks.json"))
        if not self.instance_id:
            object.__setattr__(self, "instance_id", self.service_name)
