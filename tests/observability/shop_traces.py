"""Two known traces written as span files, the way the shop's processes write them."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.exporters import SpanFileExporter

T0 = 1_800_000_000 * 10**9
MS = 10**6


def _tracer(folder: Path, service: str) -> tuple[TracerProvider, trace.Tracer]:
    provider = TracerProvider(resource=Resource.create(
        {"service.name": service, "service.instance.id": f"{service}-1"}))
    provider.add_span_processor(SimpleSpanProcessor(SpanFileExporter(folder, f"{service}-1")))
    return provider, provider.get_tracer(service)


def write_shop_traces(folder: Path) -> dict[str, str]:
    """A fast catalog read and a slow failed checkout; returns their trace ids by name."""
    providers = {name: _tracer(folder, name) for name in ("gateway", "product", "order", "cart")}
    tracer = {name: pair[1] for name, pair in providers.items()}

    def child(name: str, service: str, parent, start: int, kind=SpanKind.SERVER, **kw):
        return tracer[service].start_span(name, context=trace.set_span_in_context(parent),
                                          kind=kind, start_time=T0 + start * MS, **kw)

    browse = tracer["gateway"].start_span("GET /api/v1/products", kind=SpanKind.SERVER,
                                          start_time=T0)
    call = child("GET /products", "gateway", browse, 1, SpanKind.CLIENT)
    served = child("GET /products", "product", call, 2)
    served.end(T0 + 20 * MS)
    call.end(T0 + 21 * MS)
    browse.end(T0 + 22 * MS)

    checkout = tracer["gateway"].start_span("POST /api/v1/orders", kind=SpanKind.SERVER,
                                            start_time=T0 + 1000 * MS)
    order = child("POST /orders", "order", checkout, 1005)
    order.add_event("breakwater.breaker.state", {"breakwater.upstream": "cart",
                                                 "breakwater.breaker.from": "closed",
                                                 "breakwater.breaker.to": "open"},
                    timestamp=T0 + 1100 * MS)
    cart = child("GET /cart", "order", order, 1010, SpanKind.CLIENT)
    cart.set_status(Status(StatusCode.ERROR, "cart_unavailable"))
    cart.end(T0 + 1100 * MS)
    order.set_status(Status(StatusCode.ERROR))
    order.end(T0 + 1110 * MS)
    checkout.end(T0 + 1120 * MS)

    for provider, _ in providers.values():
        provider.shutdown()
    return {"browse": f"{browse.get_span_context().trace_id:032x}",
            "checkout": f"{checkout.get_span_context().trace_id:032x}"}
