"""The gateway's upstream sources: an explicit `GATEWAY_UPSTREAM_<SERVICE>`, else the registry
file, else the local default. The sources themselves live in `services.common.discovery`.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config import DEFAULT_UPSTREAMS, GatewaySettings
from services.common.discovery import (  # noqa: F401 - re-exported for the gateway's callers
    DnsSource,
    InstanceSource,
    Registry,
    StaticSource,
    describe,
    parse_registry,
    source_from_spec,
)


def build_sources(settings: GatewaySettings, services: Sequence[str]) -> dict[str, InstanceSource]:
    """One source per upstream: the explicit setting, else the registry file, else the default."""
    registry = (
        Registry(settings.registry_file, poll=settings.registry_poll_seconds)
        if settings.registry_file
        else None
    )
    sources: dict[str, InstanceSource] = {}
    for service in services:
        spec = settings.upstream_spec(service)
        if spec:
            sources[service] = source_from_spec(spec, dns_refresh=settings.dns_refresh_seconds)
        elif registry is not None:
            sources[service] = registry.source(service)
        else:
            sources[service] = StaticSource([DEFAULT_UPSTREAMS[service]])
    return sources
