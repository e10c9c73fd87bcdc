"""Wires the gateway: settings, discovery, the resilient client, the edge and the admin app."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.admission import Admission
from gateway.config import GatewaySettings
from gateway.discovery import build_sources, describe
from gateway.edge import (
    EdgeAuth,
    LoginRateLimiter,
    pems_from_jwks,
    pems_from_public_key_response,
    request_id,
)
from gateway.fallback import StaleCache
from gateway.metrics import ClientEventRecorder, GatewayMetrics
from gateway.proxy import GatewayProxy
from gateway.routes import UPSTREAMS, describe_route, tuned_routes
from observability.resilience import TracingListener
from observability.tracing import init_tracing, traced_wsgi
from services.common.client import ResilientClient, UpstreamPolicy
from services.common.errors import register_error_handlers
from services.common.logs import configure_logging
from services.common.settings import SettingsError

log = logging.getLogger("breakwater.gateway")

KEY_FETCH_TIMEOUT = (0.5, 2.0)


def create_app(config: Mapping[str, Any] | None = None) -> GatewayProxy:
    """The gateway as a WSGI application; `config` overrides settings fields by name."""
    settings = GatewaySettings.from_env(config)
    configure_logging("gateway", settings.instance_id, settings.log_level)
    try:
        routes = tuned_routes(settings.route_overrides)
    except ValueError as exc:
        raise SettingsError(f"GATEWAY_ROUTE_OVERRIDES: {exc}") from exc
    metrics = GatewayMetrics()
    recorder = ClientEventRecorder(metrics)
    init_tracing("gateway", instance_id=settings.instance_id)
    client = ResilientClient(resilience=settings.resilience, listeners=[recorder, TracingListener()])
    recorder.client = client
    sources = build_sources(settings, UPSTREAMS)
    for service, source in sources.items():
        client.add_upstream(service, source, upstream_policy(settings, service))
    metrics.watch(client)
    stale_cache = StaleCache(
        max_entries=settings.stale_max_entries,
        max_bytes=settings.stale_max_bytes,
        max_age=settings.stale_max_age_seconds,
    )
    edge_auth = EdgeAuth(
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        public_pem=settings.token_public_key,
        public_key_file=settings.token_public_key_file,
        fetch_keys=lambda: fetch_auth_keys(client),
        retry_seconds=settings.token_key_retry_seconds,
    )
    admission = Admission(routes)
    admin = create_admin_app(settings, client, sources, metrics, stale_cache, edge_auth, admission)
    proxy = GatewayProxy(
        settings,
        client,
        routes=routes,
        admission=admission,
        edge_auth=edge_auth,
        login_limiter=LoginRateLimiter(settings.login_rate_per_minute, settings.login_burst),
        stale_cache=stale_cache,
        metrics=metrics,
        admin=admin.wsgi_app,
    )
    log.info(
        "gateway ready to route",
        extra={
            "fields": {
                "resilience": settings.resilience,
                "admin": f"{settings.admin_host}:{settings.admin_port}",
                "upstreams": {name: describe(source) for name, source in sources.items()},
            }
        },
    )
    return traced_wsgi(proxy)


def upstream_policy(settings: GatewaySettings, service: str) -> UpstreamPolicy:
    """The client policy of one upstream: the settings, then that upstream's own overrides."""
    bulkhead = settings.bulkhead(service)
    policy = UpstreamPolicy(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_concurrent=bulkhead,
        failure_threshold=settings.breaker_failures,
        failure_rate_threshold=settings.breaker_failure_rate,
        slow_call_rate_threshold=settings.breaker_slow_call_rate,
        slow_call_seconds=settings.breaker_slow_call_seconds,
        window=settings.breaker_window,
        window_size=settings.breaker_window_size,
        minimum_calls=settings.breaker_minimum_calls,
        reset_timeout=settings.breaker_reset_seconds,
        retry_budget=settings.retry_budget,
        eject_seconds=settings.eject_seconds,
        pool_maxsize=bulkhead,
        retry_after=settings.retry_after_seconds,
        naive_timeout=settings.naive_timeout,
    )
    try:
        return policy.with_overrides(settings.policy_overrides(service))
    except ValueError as exc:
        raise SettingsError(f"GATEWAY_POLICY_{service.upper()}: {exc}") from exc


def fetch_auth_keys(client: ResilientClient) -> list[tuple[str | None, str]]:
    """The token public keys auth publishes (JWKS first, then its public-key endpoint)."""
    response = client.request(
        "auth", "GET", "/.well-known/jwks.json", timeout=KEY_FETCH_TIMEOUT, raise_for_status=False
    )
    keys = pems_from_jwks(response.json()) if response.status == 200 else []
    if not keys:
        response = client.request(
            "auth",
            "GET",
            "/api/v1/auth/public-key",
            timeout=KEY_FETCH_TIMEOUT,
            raise_for_status=False,
        )
        keys = pems_from_public_key_response(response.data) if response.status == 200 else []
    return keys


def create_admin_app(
    settings: GatewaySettings,
    client: ResilientClient,
    sources: Mapping[str, Any],
    metrics: GatewayMetrics,
    stale_cache: StaleCache,
    edge_auth: EdgeAuth,
    admission: Admission,
) -> Flask:
    """The admin port's Flask app: `/healthz`, `/readyz`, `/metrics`, `/gateway/upstreams`
    (the public port answers only the two probes through it)."""
    app = Flask("gateway")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_error_handlers(app)

    @app.after_request
    def _request_id(response: Response) -> Response:
        response.headers.setdefault("X-Request-Id", request_id(request.environ))
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service="gateway", instance=settings.instance_id)

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        known = {name: len(source()) for name, source in sources.items()}
        ready = all(known.values())
        checks = {
            name: {"ok": count > 0, "detail": f"{count} instance(s) known"}
            for name, count in known.items()
        }
        return jsonify(
            status="ready" if ready else "not_ready", checks=checks
        ), 200 if ready else 503

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.get("/gateway/upstreams")
    def upstreams() -> Response:
        snapshot = client.snapshot()
        for name, upstream in snapshot["upstreams"].items():
            upstream["discovery"] = describe(sources[name]) if name in sources else "custom"
        snapshot["stale_cache"] = stale_cache.stats()
        snapshot["token_keys"] = edge_auth.known_key_ids()
        in_flight = admission.snapshot()
        snapshot["routes"] = [
            {**describe_route(r), **in_flight.get(r.group, {})} for r in admission.routes
        ]
        return jsonify(snapshot)

    return app
