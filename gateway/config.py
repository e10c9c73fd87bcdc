"""The gateway's settings, read from `GATEWAY_*` (or the shared `BREAKWATER_*`) variables."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.settings import Settings, var_dir

# The upstream services the gateway knows, with their local-mode default addresses.
DEFAULT_UPSTREAMS = {
    "auth": "http://127.0.0.1:5000",
    "product": "http://127.0.0.1:5002",
    "cart": "http://127.0.0.1:5003",
    "order": "http://127.0.0.1:5004",
}


@dataclasses.dataclass(frozen=True)
class GatewaySettings(Settings):
    """Every knob of the gateway; `create_app(config={...})` overrides fields by name."""

    prefix: ClassVar[str] = "GATEWAY"

    host: str = "127.0.0.1"
    port: int = 8080
    resilience: bool = True
    log_level: str = "INFO"
    instance_id: str = "gateway"

    # Where upstreams are: a comma-separated URL list, or dns://host:port; "" means "the
    # registry file if one is set, else the local-mode default" (see gateway/discovery.py).
    upstream_auth: str = ""
    upstream_product: str = ""
    upstream_cart: str = ""
    upstream_order: str = ""
    registry_file: str = ""
    registry_poll_seconds: float = 0.25
    dns_refresh_seconds: float = 5.0

    # Timeouts per route class (seconds); naive mode (resilience off) uses naive_timeout.
    connect_timeout: float = 0.5
    read_timeout: float = 2.0
    write_timeout: float = 5.0
    checkout_timeout: float = 8.0
    naive_timeout: float = 30.0

    # Bulkheads (in-flight calls per upstream): keep each well below the server's thread count.
    bulkhead_auth: int = 16
    bulkhead_product: int = 32
    bulkhead_cart: int = 16
    bulkhead_order: int = 16
    breaker_failures: int = 5
    breaker_reset_seconds: float = 5.0
    eject_seconds: float = 5.0
    retry_budget: float = 0.2
    retry_after_seconds: int = 5

    # Stale catalog fallback.
    stale_max_entries: int = 2048
    stale_max_bytes: int = 32 * 1024 * 1024
    stale_max_age_seconds: float = 600.0

    # The edge.
    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_header_count: int = 100
    login_rate_per_minute: float = 30.0
    login_burst: int = 10
    trust_forwarded: bool = False
    token_issuer: str = "breakwater-auth"
    token_audience: str = "breakwater"
    token_public_key: str = ""
    token_public_key_file: str = ""
    token_key_retry_seconds: float = 5.0

    # Server (python -m gateway and gateway/gunicorn_conf.py).
    threads: int = 64
    workers: int = 1
    keepalive_seconds: int = 75

    def __post_init__(self) -> None:
        if not self.token_public_key_file:
            default = var_dir() / "keys" / "token_ed25519.pub.pem"
            object.__setattr__(self, "token_public_key_file", str(default))

    def upstream_spec(self, service: str) -> str:
        """The configured instance spec of `service` ("" when not set explicitly)."""
        return str(getattr(self, f"upstream_{service}", ""))

    def bulkhead(self, service: str) -> int:
        """The bulkhead size of `service`."""
        return int(getattr(self, f"bulkhead_{service}", 16))
