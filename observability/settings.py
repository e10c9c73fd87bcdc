"""What tracing reads from the environment, in one object per process.

The standard OpenTelemetry variables choose the exporter (`OTEL_TRACES_EXPORTER`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SDK_DISABLED`) and
its protocol (`OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`: http/protobuf, http/json or grpc);
Breakwater's own say where span files go and how large they may grow. Sampling
(`OTEL_TRACES_SAMPLER[_ARG]`), batching (`OTEL_BSP_*`) and the resource (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`) are the SDK's; both win over Breakwater's defaults, which differ
from the SDK's in two places. Without `OTEL_TRACES_SAMPLER`, catalog reads are sampled at
`BREAKWATER_TRACES_CATALOG_RATIO` (default 0.1) and everything else always (see
`observability.sampling`). In local mode (`BREAKWATER_ENVIRONMENT=local`, the default)
spans are exported after 200 ms rather than 5 s, so `breakwater traces` sees a request's
whole trace a moment after its answer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from observability.sampling import DEFAULT_CATALOG_RATIO, RATIO_VARIABLE, parse_ratio

EXPORTER_OTLP = "otlp"
EXPORTER_FILE = "file"
EXPORTER_CONSOLE = "console"
EXPORTER_NONE = "none"
EXPORTERS = (EXPORTER_OTLP, EXPORTER_FILE, EXPORTER_CONSOLE, EXPORTER_NONE)
DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"
DEFAULT_OTLP_GRPC_ENDPOINT = "http://localhost:4317"
PROTOCOL_PROTOBUF = "http/protobuf"
PROTOCOL_JSON = "http/json"
PROTOCOL_GRPC = "grpc"
PROTOCOLS = (PROTOCOL_PROTOBUF, PROTOCOL_JSON, PROTOCOL_GRPC)
LOCAL_ENVIRONMENT = "local"
LOCAL_SCHEDULE_DELAY_MS = 200


class TracingConfigError(ValueError):
    """A tracing variable names an exporter or protocol Breakwater cannot use; says which."""


@dataclass(frozen=True)
class TracingSettings:
    """The exporter to use and where it sends spans."""

    exporter: str = EXPORTER_FILE
    otlp_traces_endpoint: str = ""
    traces_dir: Path = Path("var/traces")
    file_max_bytes: int = 16 * 1024 * 1024
    file_backups: int = 2
    environment: str = LOCAL_ENVIRONMENT
    jaeger_url: str = ""
    otlp_protocol: str = PROTOCOL_PROTOBUF
    otlp_headers: str = ""
    # The batch processor's delay; None leaves it to the SDK (OTEL_BSP_SCHEDULE_DELAY, 5 s).
    schedule_delay_ms: int | None = None
    # Share of catalog reads sampled by the default sampler (BREAKWATER_TRACES_CATALOG_RATIO).
    catalog_ratio: float = DEFAULT_CATALOG_RATIO

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded at all."""
        return self.exporter != EXPORTER_NONE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TracingSettings:
        """Read the settings; an unknown exporter or protocol is an error, not a silent default."""
        env = os.environ if environ is None else environ
        protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "").strip()
                    or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
                    or PROTOCOL_PROTOBUF).lower()
        if protocol not in PROTOCOLS:
            raise TracingConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not an OTLP "
                                     f"protocol; use one of: {', '.join(PROTOCOLS)}")
        traces_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        base_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not traces_endpoint and base_endpoint:
            # Over HTTP the signal's path is added to the base URL; gRPC has no paths.
            traces_endpoint = (base_endpoint if protocol == PROTOCOL_GRPC
                               else base_endpoint.rstrip("/") + "/v1/traces")
        # The SDK's own spelling lists exporters comma-separated; the first one decides here.
        requested = env.get("OTEL_TRACES_EXPORTER", "").split(",")[0].strip().lower()
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            requested = EXPORTER_NONE
        if not requested:
            requested = EXPORTER_OTLP if traces_endpoint else EXPORTER_FILE
        if requested not in EXPORTERS:
            raise TracingConfigError(f"OTEL_TRACES_EXPORTER={requested!r} is not supported "
                                     f"here; use one of: {', '.join(EXPORTERS)}")
        if requested == EXPORTER_OTLP and not traces_endpoint:
            traces_endpoint = (DEFAULT_OTLP_GRPC_ENDPOINT if protocol == PROTOCOL_GRPC
                               else DEFAULT_OTLP_ENDPOINT + "/v1/traces")
        # The same folder as every process's state (BREAKWATER_VAR_DIR, else ./var): read here
        # directly, because observability sits beneath the services and imports none of them.
        var_dir = Path(env.get("BREAKWATER_VAR_DIR") or "var").absolute()
        environment = env.get("BREAKWATER_ENVIRONMENT") or cls.environment
        delay = env.get("OTEL_BSP_SCHEDULE_DELAY", "").strip()
        try:
            catalog_ratio = parse_ratio(env.get(RATIO_VARIABLE))
        except ValueError as exc:
            raise TracingConfigError(str(exc)) from None
        return cls(
            exporter=requested,
            otlp_traces_endpoint=traces_endpoint,
            traces_dir=Path(env.get("BREAKWATER_TRACES_DIR") or var_dir / "traces"),
            file_max_bytes=int(env.get("BREAKWATER_TRACES_MAX_BYTES") or cls.file_max_bytes),
            file_backups=int(env.get("BREAKWATER_TRACES_BACKUPS") or cls.file_backups),
            environment=environment,
            jaeger_url=env.get("BREAKWATER_JAEGER_URL", "").strip(),
            otlp_protocol=protocol,
            otlp_headers=(env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                          or env.get("OTEL_EXPORTER_OTLP_HEADERS") or ""),
            schedule_delay_ms=(None if delay or environment != LOCAL_ENVIRONMENT
                               else LOCAL_SCHEDULE_DELAY_MS),
            catalog_ratio=catalog_ratio,
        )
