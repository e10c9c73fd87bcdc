"""The registry file the gateway discovers instances from (`var/registry.json`).

Format (read by `gateway.discovery.Registry`, re-read when the file changes)::

    {"version": 1, "updated_at": "…Z", "stack_id": "…",
     "services": {"product": [{"url": "http://127.0.0.1:25002", "id": "product-1",
                               "direct": "http://127.0.0.1:5002"}, …], …}}

`url` is the instance's fault-proxy listener (what every caller uses); `direct` is the
process itself, for people debugging around the proxy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local_stack.state import StackState, utc_now, write_json_atomic

CALLEES = ("auth", "product", "cart", "order")


def registry_document(state: StackState) -> dict[str, Any]:
    """The registry content describing `state`'s service instances."""
    services: dict[str, list[dict[str, str]]] = {}
    for service in CALLEES:
        services[service] = [
            {"url": i.proxy.url if i.proxy else i.url, "id": i.name, "direct": i.url}
            for i in state.of_service(service)
        ]
    return {"version": 1, "updated_at": utc_now(), "stack_id": state.stack_id,
            "services": services}


def write_registry(state: StackState, path: str | Path | None = None) -> Path:
    """Write (atomically) the registry of `state` to `path` or the state's registry file."""
    target = Path(path or state.registry_file)
    write_json_atomic(target, registry_document(state))
    return target


def caller_urls(state: StackState, service: str) -> str:
    """The comma-separated proxy URLs of `service`, for `CART_PRODUCT_URL` and friends."""
    return ",".join(i.proxy.url if i.proxy else i.url for i in state.of_service(service))
