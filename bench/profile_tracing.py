"""Where tracing's cost goes in product: CPU per read with spans off, made, and exported.

    python -m bench.profile_tracing --variant noop --db sqlite:///... --out FILE

One child process per variant (tracing is set up once per process): `none`
(OTEL_TRACES_EXPORTER=none), `noop` (every span made — server and statement spans, the SDK,
the batch processor — but exported to a no-op exporter), `file` (span files) and `otlp` (to the
benchmark's local receiver). Each serves `--requests` product reads through Flask's test
client and reports CPU per request from `time.process_time()`, which counts every thread of
the process (the batch processor's export thread included), and spans per request; `noop`
adds a cProfile of the request thread by area.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import pinned
from bench.micro import READ_PATH

VARIANTS = ("none", "noop", "file", "otlp")
AREAS = (("server spans (observability/server_spans.py)", "observability/server_spans"),
         ("statement spans (observability/statements.py)", "observability/statements"),
         ("OpenTelemetry SDK (spans, attributes, processor)", "opentelemetry/sdk"),
         ("OpenTelemetry API / context / propagation", "opentelemetry"),
         ("Breakwater tracing glue", "observability/"),
         ("SQLAlchemy", "sqlalchemy"), ("Flask / Werkzeug", "flask"),
         ("Flask / Werkzeug", "werkzeug"), ("product service", "services/"))


class CountingExporter:
    """Wraps an exporter (or none) and counts the spans handed to it."""

    def __init__(self, inner: Any = None) -> None:
        self.inner, self.spans = inner, 0

    def export(self, spans: Sequence[Any]) -> Any:
        """Count, then pass on (SUCCESS when there is nothing to pass to)."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.spans += len(spans)
        return self.inner.export(spans) if self.inner else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        if self.inner:
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held here."""
        return True


def _area(filename: str) -> str:
    for label, needle in AREAS:
        if needle in filename:
            return label
    return "other (Python runtime, builtins, stdlib)"


def measure(variant: str, count: int) -> dict[str, Any]:
    """Serve `count` reads with one tracing variant; CPU and spans per request."""
    from observability.settings import TracingSettings
    from observability.tracing import exporter_factory, force_flush, init_tracing

    exporter = None
    if variant != "none":
        settings = TracingSettings.from_env()
        inner = None if variant == "noop" else exporter_factory(settings, "product-profile")()
        exporter = CountingExporter(inner)
        init_tracing("product", instance_id="product-profile", exporter=exporter)  # type: ignore[arg-type]
    from services.product import create_app

    client = create_app().test_client()
    for _ in range(50):
        client.get(READ_PATH)
    force_flush()
    counted = exporter.spans if exporter else 0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        client.get(READ_PATH)
    force_flush()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result: dict[str, Any] = {
        "variant": variant, "requests": count,
        "cpu_ms_per_request": round(cpu * 1000 / count, 3),
        "wall_ms_per_request": round(wall * 1000 / count, 3),
        "spans_per_request": round(((exporter.spans if exporter else 0) - counted) / count, 2)}
    if variant == "noop":
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            client.get(READ_PATH)
        profiler.disable()
        areas: dict[str, float] = {}
        for key, row in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
            areas[_area(key[0])] = areas.get(_area(key[0]), 0.0) + row[2]
        result["request_thread_areas_ms"] = {
            k: round(v * 1000 / count, 3) for k, v in sorted(areas.items(), key=lambda kv: -kv[1])}
    return result


def run_profiles(db_url: str, var: Path, otlp: str | None, *, requests_count: int = 500,
                 cpu: int | None = None, timeout: float = 120.0) -> dict[str, Any]:
    """Every variant in its own child process; their JSON by variant."""
    results: dict[str, Any] = {}
    for variant in VARIANTS:
        if variant == "otlp" and not otlp:
            continue
        out = var / f"tracing-profile-{variant}.json"
        out.unlink(missing_ok=True)
        env = {**os.environ, "PRODUCT_DATABASE_URL": db_url, "BREAKWATER_VAR_DIR": str(var),
               "PRODUCT_AUTO_MIGRATE": "off", "PRODUCT_LOG_LEVEL": "WARNING",
               "BREAKWATER_TRACES_DIR": str(var / "traces-profile"),
               "OTEL_TRACES_EXPORTER": {"none": "none", "noop": "none"}.get(variant, variant)}
        if variant == "otlp":
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp or ""
        command = pinned(cpu, [sys.executable, "-m", "bench.profile_tracing", "--variant",
                               variant, "--requests", str(requests_count), "--out", str(out)])
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=Path(__file__).resolve().parents[1])
        if done.returncode != 0 or not out.exists():
            results[variant] = {"error": f"exit {done.returncode}: {done.stderr[-600:]}"}
            continue
        results[variant] = json.loads(out.read_text())
    return results


def main(argv: list[str] | None = None) -> int:
    """Measure one variant and write its JSON to --out."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_tracing")
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    Path(args.out).write_text(json.dumps(measure(args.variant, args.requests), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
