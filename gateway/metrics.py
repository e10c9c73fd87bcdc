"""The gateway's Prometheus metrics, and the listener that turns client events into them.

Per-replica series use the label `replica` (not `instance`, which Prometheus sets itself).
Counters are exposed with `_total`; a breaker's state is one series per state with the label
`state` (1 for the current one, 0 for the others), as kube-state-metrics does, so a query says
`breakwater_gateway_breaker_state{state="open"} == 1` rather than decoding a number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.client import ResilientClient

log = logging.getLogger("breakwater.gateway")

BREAKER_STATES = ("closed", "half-open", "open")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)


class GatewayMetrics:
    """Counters and histograms the hot path updates, in the gateway's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "breakwater_gateway_requests",
            "Requests answered by the gateway",
            ["group", "upstream", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "breakwater_gateway_request_seconds",
            "Time to answer a request at the gateway",
            ["group", "upstream"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "breakwater_gateway_fallbacks",
            "Responses served from the stale catalog cache",
            ["group", "upstream"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "breakwater_gateway_rate_limited",
            "Requests refused by the login rate limit",
            ["group"],
            registry=self.registry,
        )
        self.admission_refused = Counter(
            "breakwater_gateway_admission_refused",
            "Requests refused at once because their route group was at its admission limit",
            ["group"],
            registry=self.registry,
        )
        self.upstream_events = Counter(
            "breakwater_gateway_upstream_events",
            "What the resilient client did: rejected, retried, ejected, failure",
            ["upstream", "event", "reason"],
            registry=self.registry,
        )
        self.breaker_transitions = Counter(
            "breakwater_gateway_breaker_transitions",
            "Circuit breaker state changes",
            ["upstream", "replica", "to"],
            registry=self.registry,
        )
        self.ejections = Counter(
            "breakwater_gateway_ejections",
            "Replicas taken out of rotation after failing",
            ["upstream", "replica"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, ...], Any] = {}

    def observe(self, group: str, upstream: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (label children cached: this runs on every request)."""
        key = (group, upstream, method, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (
                self.requests.labels(*key),
                self.latency.labels(group, upstream),
            )
        child[0].inc()
        child[1].observe(seconds)

    def watch(self, client: ResilientClient) -> None:
        """Export breaker states, bulkheads and in-flight calls of `client` on every scrape."""
        self.registry.register(ClientStateCollector(client))

    def render(self) -> bytes:
        """The Prometheus text exposition of every gateway metric."""
        return generate_latest(self.registry)


class ClientStateCollector(Collector):
    """Reads the client's snapshot at scrape time, so gauges are never stale."""

    def __init__(self, client: ResilientClient) -> None:
        self.client = client

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        breaker = GaugeMetricFamily(
            "breakwater_gateway_breaker_state",
            "Breaker state per replica: 1 on the series of its current state, 0 on the others",
            labels=["upstream", "replica", "state"],
        )
        outstanding = GaugeMetricFamily(
            "breakwater_gateway_replica_in_flight",
            "Calls in flight per replica",
            labels=["upstream", "replica"],
        )
        in_use = GaugeMetricFamily(
            "breakwater_gateway_bulkhead_in_use",
            "Bulkhead slots in use per upstream",
            labels=["upstream"],
        )
        limit = GaugeMetricFamily(
            "breakwater_gateway_bulkhead_limit", "Bulkhead size per upstream", labels=["upstream"]
        )
        rejected = CounterMetricFamily(
            "breakwater_gateway_bulkhead_rejected",
            "Calls refused by a full bulkhead",
            labels=["upstream"],
        )
        replicas = GaugeMetricFamily(
            "breakwater_gateway_replicas", "Replicas known per upstream", labels=["upstream"]
        )
        failure_rate = GaugeMetricFamily(
            "breakwater_gateway_breaker_failure_rate",
            "Share of failed calls in the breaker's window per replica",
            labels=["upstream", "replica"],
        )
        slow_rate = GaugeMetricFamily(
            "breakwater_gateway_breaker_slow_call_rate",
            "Share of slow calls in the breaker's window per replica",
            labels=["upstream", "replica"],
        )
        next_trial = GaugeMetricFamily(
            "breakwater_gateway_breaker_next_trial_seconds",
            "Seconds until an open breaker's trial (0 when due; absent when closed)",
            labels=["upstream", "replica"],
        )
        for name, upstream in self.client.snapshot()["upstreams"].items():
            bulkhead = upstream["bulkhead"]
            in_use.add_metric([name], bulkhead["in_use"])
            limit.add_metric([name], bulkhead["limit"])
            rejected.add_metric([name], bulkhead["rejected"])
            replicas.add_metric([name], len(upstream["instances"]))
            for instance in upstream["instances"]:
                for state in BREAKER_STATES:
                    breaker.add_metric([name, instance["url"], state],
                                       1 if instance["breaker"] == state else 0)
                outstanding.add_metric([name, instance["url"]], instance["outstanding"])
                failure_rate.add_metric([name, instance["url"]], instance["failure_rate"])
                slow_rate.add_metric([name, instance["url"]], instance["slow_call_rate"])
                if instance["next_trial_in"] is not None:
                    next_trial.add_metric([name, instance["url"]], instance["next_trial_in"])
        yield from (breaker, outstanding, in_use, limit, rejected, replicas, failure_rate, slow_rate,
                    next_trial)


class ClientEventRecorder:
    """A `ResilientClient` listener: counts and logs what the client does."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics
        self.client: ResilientClient | None = None

    def event(self, name: str, **fields: Any) -> None:
        upstream = fields.get("service") or self._upstream_of(fields.get("instance"))
        replica = fields.get("instance") or ""
        if name == "breaker_state_change":
            self.metrics.breaker_transitions.labels(upstream, replica, fields.get("new", "")).inc()
            return  # the client logs breaker changes itself
        if name == "ejected":
            self.metrics.ejections.labels(upstream, replica).inc()
            log.warning(
                "replica %s of %s ejected for %ss",
                replica,
                upstream,
                fields.get("seconds"),
                extra={"fields": {"upstream": upstream, "replica": replica}},
            )
        reason = str(fields.get("reason") or "")
        self.metrics.upstream_events.labels(upstream, name, reason).inc()

    def _upstream_of(self, url: str | None) -> str:
        # The client's `failure` event names the replica only.
        if self.client is not None and url:
            for name, upstream in list(self.client.upstreams.items()):
                if upstream.instance(url) is not None:
                    return name
        return "unknown"
