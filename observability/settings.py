"""What tracing reads from the environment, in one object per process.

The standard OpenTelemetry variables choose the exporter (`OTEL_TRACES_EXPORTER`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SDK_DISABLED`);
Breakwater's own say where span files go and how large they may grow. Sampling
(`OTEL_TRACES_SAMPLER[_ARG]`) and batching (`OTEL_BSP_*`) are read by the SDK itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

EXPORTER_OTLP = "otlp"
EXPORTER_FILE = "file"
EXPORTER_CONSOLE = "console"
EXPORTER_NONE = "none"
EXPORTERS = (EXPORTER_OTLP, EXPORTER_FILE, EXPORTER_CONSOLE, EXPORTER_NONE)
DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"


@dataclass(frozen=True)
class TracingSettings:
    """The exporter to use and where it sends spans."""

    exporter: str = EXPORTER_FILE
    otlp_traces_endpoint: str = ""
    traces_dir: Path = Path("var/traces")
    file_max_bytes: int = 16 * 1024 * 1024
    file_backups: int = 2
    environment: str = "local"
    jaeger_url: str = ""

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded at all."""
        return self.exporter != EXPORTER_NONE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TracingSettings:
        """Read the settings; an unknown `OTEL_TRACES_EXPORTER` is an error, not a silent default."""
        env = os.environ if environ is None else environ
        traces_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        base_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not traces_endpoint and base_endpoint:
            traces_endpoint = base_endpoint.rstrip("/") + "/v1/traces"
        # The SDK's own spelling lists exporters comma-separated; the first one decides here.
        requested = env.get("OTEL_TRACES_EXPORTER", "").split(",")[0].strip().lower()
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            requested = EXPORTER_NONE
        if not requested:
            requested = EXPORTER_OTLP if traces_endpoint else EXPORTER_FILE
        if requested not in EXPORTERS:
            raise ValueError(f"OTEL_TRACES_EXPORTER={requested!r} is not supported here; "
                             f"use one of: {', '.join(EXPORTERS)}")
        if requested == EXPORTER_OTLP and not traces_endpoint:
            traces_endpoint = DEFAULT_OTLP_ENDPOINT + "/v1/traces"
        # The same folder as every process's state (BREAKWATER_VAR_DIR, else ./var): read here
        # directly, because observability sits beneath the services and imports none of them.
        var_dir = Path(env.get("BREAKWATER_VAR_DIR") or "var").absolute()
        return cls(
            exporter=requested,
            otlp_traces_endpoint=traces_endpoint,
            traces_dir=Path(env.get("BREAKWATER_TRACES_DIR") or var_dir / "traces"),
            file_max_bytes=int(env.get("BREAKWATER_TRACES_MAX_BYTES") or cls.file_max_bytes),
            file_backups=int(env.get("BREAKWATER_TRACES_BACKUPS") or cls.file_backups),
            environment=env.get("BREAKWATER_ENVIRONMENT") or cls.environment,
            jaeger_url=env.get("BREAKWATER_JAEGER_URL", "").strip(),
        )
