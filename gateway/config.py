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

    # Time: connect and read timeouts of one attempt (reads; a write's attempt gets its whole
    # budget). Each route group's budget is in the route table (gateway/routes.py), tuned here
    # with "<group>.<read_budget|write_budget|admission>=<n>,..." (e.g. "orders.write_budget=10").
    connect_timeout: float = 0.5
    read_timeout: float = 2.0
    route_overrides: str = ""
    naive_timeout: float = 30.0

    # Bulkheads (in-flight calls per upstream): keep each well below the server's thread count.
    bulkhead_auth: int = 16
    bulkhead_product: int = 32
    bulkhead_cart: int = 16
    bulkhead_order: int = 16
    # Breakers, per replica: open on a failure rate or slow-call rate over a window of calls
    # (or seconds) once it holds the minimum, or on a run of failures; one trial after the reset.
    breaker_failures: int = 5
    breaker_failure_rate: float = 0.5
    breaker_slow_call_rate: float = 1.0
    breaker_slow_call_seconds: float = 1.5
    breaker_window: str = "count"
    breaker_window_size: int = 20
    breaker_minimum_calls: int = 10
    breaker_reset_seconds: float = 5.0
    eject_seconds: float = 5.0
    retry_budget: float = 0.2
    retry_after_seconds: int = 5
    # Any UpstreamPolicy field for one upstream, e.g. GATEWAY_POLICY_PRODUCT="minimum_calls=20".
    policy_auth: str = ""
    policy_product: str = ""
    policy_cart: str = ""
    policy_order: str = ""

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

    # The admin port: /gateway/upstreams, /metrics, /healthz, /readyz; never the public port.
    admin_host: str = "127.0.0.1"
    admin_port: int = 8081

    # Server (`python -m gateway`: Granian with the buffering front, see docs/SERVING.md).
    threads: int = 64
    workers: int = 1
    # Headers must arrive within this (it is also the idle keep-alive time, as in Granian).
    header_timeout_seconds: float = 60.0
    # The whole body must arrive within this once the headers are in; else 408.
    body_timeout_seconds: float = 10.0
    # Bodiless reads of public routes answered on the front's event loop, taking no thread
    # (off: every request on the threads, as before; see gateway/front.py).
    loop_reads: bool = True
    # Requests in progress (body being read, waiting for or holding a thread) per client address.
    max_requests_per_client: int = 256
    access_log: bool = False
    # Worker restarts: after this many seconds (0: never) or past this resident size (0: never).
    workers_lifetime_seconds: int = 0
    workers_max_rss_mb: int = 0
    # Proxies in front whose X-Forwarded-For hop is trusted (with GATEWAY_TRUST_FORWARDED=on).
    trusted_hops: int = 1

    def __post_init__(self) -> None:
        if not self.token_public_key_file:
            default = var_dir() / "keys" / "token_ed25519.pub.pem"
            object.__setattr__(self, "token_public_key_file", str(default))

    def upstream_spec(self, service: str) -> str:
        """The configured instance spec of `service` ("" when not set explicitly)."""
        return str(getattr(self, f"upstream_{service}", ""))

    def policy_overrides(self, service: str) -> str:
        """The `field=value,...` policy overrides of `service` ("" when none)."""
        return str(getattr(self, f"policy_{service}", ""))

    def bulkhead(self, service: str) -> int:
        """The bulkhead size of `service`."""
        return int(getattr(self, f"bulkhead_{service}", 16))
