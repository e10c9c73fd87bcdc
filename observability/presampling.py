"""A sampled root keeps the trace id it was decided for.

`observability.server_spans` asks the provider's sampler once per request, before any span
exists, with a trace id of its own making. `ReservedTraceIds` is the provider's id generator:
within `reserved_trace_id(id)` the next root span gets that id, so the SDK, asking the
sampler again as it starts the span, decides the same way (a trace-id ratio would otherwise be
applied twice).
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
