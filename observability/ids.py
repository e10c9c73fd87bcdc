"""Span and trace ids: random, except the trace id a sampling decision was already taken for.

`TracedWSGI` asks the sampler before the WSGI instrumentation makes a server span (see
`observability.tracing.Presampler`). For a sampled root it then reserves the trace id it asked
about, and the instrumentation's span is given that id, so the sampler, asked again by the
SDK, decides the same way (a trace-id ratio would otherwise be applied twice).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

_RESERVED: ContextVar[int] = ContextVar("breakwater_reserved_trace_id", default=0)


class ReservedTraceIds(RandomIdGenerator):
    """Random ids; the next trace id is the reserved one when there is one (used once)."""

    def generate_trace_id(self) -> int:
        """The reserved trace id of this context, once; a random one otherwise."""
        reserved = _RESERVED.get()
        if reserved:
            _RESERVED.set(0)
            return reserved
        return super().generate_trace_id()


@contextlib.contextmanager
def reserved_trace_id(trace_id: int) -> Iterator[None]:
    """Make `trace_id` the next root's trace id within the block (0: reserve nothing)."""
    if not trace_id:
        yield
        return
    token = _RESERVED.set(trace_id)
    try:
        yield
    finally:
        _RESERVED.reset(token)
