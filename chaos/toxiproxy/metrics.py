"""Prometheus text exposition of the proxies' traffic."""

from __future__ import annotations

from collections.abc import Iterable

from .proxy import Proxy

_HELP = {
    "toxiproxy_proxy_received_bytes_total": ("counter", "Bytes read from the source side."),
    "toxiproxy_proxy_sent_bytes_total": ("counter", "Bytes written to the destination side."),
    "toxiproxy_proxy_connections_total": ("counter", "Client connections accepted."),
    "toxiproxy_proxy_active_connections": ("gauge", "Client connections open now."),
    "toxiproxy_proxy_enabled": ("gauge", "1 when the proxy is listening."),
    "toxiproxy_proxy_toxics": ("gauge", "Toxics configured, per stream."),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(proxies: Iterable[Proxy]) -> str:
    """Every metric for every proxy, in the Prometheus text format (version 0.0.4)."""
    samples: dict[str, list[str]] = {name: [] for name in _HELP}
    for proxy in sorted(proxies, key=lambda p: p.name):
        base = f'proxy="{_label(proxy.name)}",listener="{_label(proxy.listen)}",' \
            f'upstream="{_label(proxy.upstream)}"'
        for direction, (received, sent) in proxy.byte_counts().items():
            labels = f'{{direction="{direction}",{base}}}'
            samples["toxiproxy_proxy_received_bytes_total"].append(f"{labels} {received}")
            samples["toxiproxy_proxy_sent_bytes_total"].append(f"{labels} {sent}")
            count = len(proxy.toxics[direction])
            samples["toxiproxy_proxy_toxics"].append(f"{labels} {count}")
        samples["toxiproxy_proxy_connections_total"].append(
            f"{{{base}}} {proxy.connections_total}"
        )
        samples["toxiproxy_proxy_active_connections"].append(
            f"{{{base}}} {len(proxy.connections)}"
        )
        samples["toxiproxy_proxy_enabled"].append(f"{{{base}}} {int(proxy.enabled)}")
    lines = []
    for name, (kind, text) in _HELP.items():
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{sample}" for sample in samples[name])
    return "\n".join(lines) + "\n"
