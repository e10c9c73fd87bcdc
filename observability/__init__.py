"""Breakwater's observability: tracing set-up, span files, and reading traces back.

- `observability.tracing`: `init_tracing`, `traced_wsgi`, `instrument_sqlalchemy`,
  `trace_id_headers`, gunicorn hooks `post_fork`/`worker_exit`.
- `observability.server_spans`: `ServerSpans`, the lean server span of a sampled request (and
  the sampling decision before it); `observability.statements`: `trace_engine`, the lean
  span of a SQL statement.
- `observability.resilience`: `TracingListener`, `mark_fallback`, `record_experiment_span`,
  `experiment_span`.
- `observability.spans`: `SpanFiles`, `JaegerQuery`, `Trace`, `Span`, `to_jaeger_json`.
- `observability.render`: `trace_table`, `waterfall`.

Layer: observability, beneath everything: every process imports it, and it imports nothing of
Breakwater's (no service, no experiment, no plotting). Submodules are imported on use, so
`import observability` costs nothing.
"""
