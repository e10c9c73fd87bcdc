"""The console's `/metrics`: the fault proxy's active faults as Prometheus gauges.

The real Toxiproxy exports bytes per proxy but not which toxics are set, so Grafana's "active
toxics" panel reads them here, from the fault proxy's API at scrape time (one request per
scrape, whoever runs the proxy).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from chaos.client import ToxiproxyClient, ToxiproxyError


class FaultCollector(Collector):
    """Toxics per proxy, type and stream; whether each proxy listens; whether the proxy API
    answered at all."""

    def __init__(self, client: ToxiproxyClient) -> None:
        self.client = client

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reachable = GaugeMetricFamily("breakwater_fault_proxy_reachable",
                                      "1 when the fault proxy's API answered this scrape")
        toxics = GaugeMetricFamily("breakwater_fault_proxy_toxics",
                                   "Toxics set on a fault-proxy listener",
                                   labels=["proxy", "type", "stream"])
        enabled = GaugeMetricFamily("breakwater_fault_proxy_enabled",
                                    "1 when the listener accepts connections, 0 when it is down",
                                    labels=["proxy"])
        try:
            proxies = self.client.proxies()
        except ToxiproxyError:
            reachable.add_metric([], 0)
            yield reachable
            return
        reachable.add_metric([], 1)
        for name, proxy in sorted(proxies.items()):
            enabled.add_metric([name], 1 if proxy.get("enabled", True) else 0)
            counts: dict[tuple[str, str], int] = {}
            for toxic in proxy.get("toxics") or []:
                key = (str(toxic.get("type")), str(toxic.get("stream")))
                counts[key] = counts.get(key, 0) + 1
            for (kind, stream), count in sorted(counts.items()):
                toxics.add_metric([name, kind, stream], count)
        yield from (reachable, toxics, enabled)


def fault_metrics(client: ToxiproxyClient) -> CollectorRegistry:
    """A registry holding the fault collector (render it with `render`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FaultCollector(client))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition."""
    return generate_latest(registry)
