"""Breakwater's default sampler: every write, checkout and other request whole; catalog reads
at a ratio.

Catalog reads (GET/HEAD under `/api/v1/products`, `/api/v2/products`) are most of a shop's
traffic and the least interesting to trace one by one, so only a share of them is sampled
(`BREAKWATER_TRACES_CATALOG_RATIO`, default 0.1); every other request — logins, cart changes,
checkouts, reservations, anything not a catalog read — is sampled, except background polls: a
database statement or HTTP call with no request or task span above it (a reconciler's or a
sweeper's periodic query) starts no trace. The decision is made once,
where a trace starts (the gateway's server span, or a service's when called directly), and
every later span follows its parent (`ParentBased`), so a trace is whole or absent, never
partial.

An unsampled request still has a trace id: it is propagated downstream, returned as
`X-Trace-Id` and written into every log line, and the services' and gateway's Prometheus
counters count it like any other. Only its spans are not recorded.

The standard variables still win: when `OTEL_TRACES_SAMPLER` is set, the SDK's sampler (with
`OTEL_TRACES_SAMPLER_ARG`) is used instead, and `always_on` samples everything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

RATIO_VARIABLE = "BREAKWATER_TRACES_CATALOG_RATIO"
DEFAULT_CATALOG_RATIO = 0.1
CATALOG_PREFIXES = ("/api/v1/products", "/api/v2/products")
READ_METHODS = frozenset({"GET", "HEAD"})
# Old and stable HTTP semantic conventions: the instrumentations pass one set or both.
_METHOD_KEYS = ("http.request.method", "http.method")
_PATH_KEYS = ("url.path", "http.target")
# ...or only the whole URL (the WSGI middleware's old conventions send `http.url` when the
# request names its host).
_URL_KEYS = ("url.full", "http.url")


def parse_ratio(text: str | None, *, variable: str = RATIO_VARIABLE) -> float:
    """The ratio in `text` (default when empty); ValueError naming the variable otherwise."""
    if text is None or not text.strip():
        return DEFAULT_CATALOG_RATIO
    try:
        ratio = float(text)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{variable}={text!r} is not a ratio; give a number from 0 (no catalog "
                         "read traced) to 1 (every catalog read traced), e.g. 0.1")
    return ratio


def is_catalog_read(attributes: Attributes, prefixes: Sequence[str] = CATALOG_PREFIXES) -> bool:
    """Whether a server span's start attributes describe a read of the product catalog."""
    if not attributes:
        return False
    method = next((attributes[k] for k in _METHOD_KEYS if k in attributes), None)
    if method not in READ_METHODS:
        return False
    path = next((attributes[k] for k in _PATH_KEYS if k in attributes), None)
    if path is None:
        url = next((attributes[k] for k in _URL_KEYS if k in attributes), None)
        path = urlsplit(url).path if isinstance(url, str) else None
    if not isinstance(path, str):
        return False
    path = path.split("?", 1)[0]
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


class CatalogReadSampler(Sampler):
    """Root sampler: catalog reads by trace-id ratio, everything else always."""

    def __init__(self, ratio: float = DEFAULT_CATALOG_RATIO,
                 prefixes: Sequence[str] = CATALOG_PREFIXES) -> None:
        self.ratio = ratio
        self.prefixes = tuple(prefixes)
        self._reads = TraceIdRatioBased(ratio)

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        """Sample a catalog read at the ratio, background polling never, anything else always."""
        if kind == SpanKind.CLIENT:
            # A database statement or HTTP call that starts a trace was made outside any
            # request or task span: a reconciler's or sweeper's poll every few seconds, which
            # would fill the trace list with one-span traces. Work they do find gets its own
            # span (the reconciler's "reconcile order"), and its calls follow that.
            return ALWAYS_OFF.should_sample(parent_context, trace_id, name, kind, attributes,
                                            links, trace_state)
        chosen = self._reads if is_catalog_read(attributes, self.prefixes) else ALWAYS_ON
        return chosen.should_sample(parent_context, trace_id, name, kind, attributes, links,
                                    trace_state)

    def get_description(self) -> str:
        """How this sampler shows in logs and tests."""
        return f"BreakwaterCatalogReads{{{self.ratio}}}"


def default_sampler(ratio: float = DEFAULT_CATALOG_RATIO) -> Sampler:
    """Breakwater's default: parent-based, catalog reads at `ratio` where a trace starts."""
    return ParentBased(CatalogReadSampler(ratio))


def choose_sampler(ratio: float = DEFAULT_CATALOG_RATIO,
                   environ: Mapping[str, str] | None = None) -> Sampler | None:
    """The sampler for a tracer provider: None (the SDK reads `OTEL_TRACES_SAMPLER[_ARG]`
    itself) when that variable is set, else Breakwater's default."""
    env: Mapping[str, Any] = os.environ if environ is None else environ
    if str(env.get("OTEL_TRACES_SAMPLER") or "").strip():
        return None
    return default_sampler(ratio)
