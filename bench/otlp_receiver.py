"""A local OTLP/HTTP trace receiver for the tracing benchmark (stands in for Jaeger).

    python -m bench.otlp_receiver [--port 0] [--max-seconds 900]

Accepts `POST /v1/traces` (protobuf, as the OpenTelemetry SDK's OTLP/HTTP exporter sends it),
counts requests, bytes and spans, and answers 200 with an empty ExportTraceServiceResponse.
`GET /stats` returns the counts as JSON. Prints `listening on 127.0.0.1:PORT` once ready and
exits by itself after `--max-seconds`, so it can never be left running. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_lock = threading.Lock()
_stats: dict[str, int] = {"requests": 0, "bytes": 0, "spans": 0, "decode_errors": 0}


def count_spans(body: bytes) -> int:
    """The number of spans in an OTLP ExportTraceServiceRequest (protobuf)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return sum(len(scope.spans) for resource in request.resource_spans
               for scope in resource.scope_spans)


class Handler(BaseHTTPRequestHandler):
    """OTLP/HTTP traces in, counts out."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        """Receive one export."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            spans = count_spans(body)
            failed = 0
        except Exception:  # noqa: BLE001 - a bad body is counted, not fatal
            spans, failed = 0, 1
        with _lock:
            _stats["requests"] += 1
            _stats["bytes"] += len(body)
            _stats["spans"] += spans
            _stats["decode_errors"] += failed
        self._answer(200, b"", "application/x-protobuf")

    def do_GET(self) -> None:  # noqa: N802
        """`/stats`: the counts so far."""
        with _lock:
            body = json.dumps(_stats).encode()
        self._answer(200 if self.path == "/stats" else 404, body, "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: no line per request."""


def main(argv: list[str] | None = None) -> int:
    """Serve until `--max-seconds` pass (or SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_receiver")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    timer = threading.Timer(args.max_seconds, server.shutdown)
    timer.daemon = True
    timer.start()
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
