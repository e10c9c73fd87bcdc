"""The console's settings, read from `CONSOLE_*` (or the shared `BREAKWATER_*`) variables.

The console is configured by addresses only, so the same process watches a local stack, a
compose project or a Kubernetes namespace: the gateway's admin address (its upstream view and
`/metrics`), the fault proxy's API, Jaeger's query API or a folder of span files, and the file
a running experiment reports its progress to.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from services.common.settings import Settings, var_dir

DEFAULT_PORT = 8090
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@dataclasses.dataclass(frozen=True)
class ConsoleSettings(Settings):
    """Every knob of the console; `create_app(ConsoleSettings(...))` in tests."""

    prefix: ClassVar[str] = "CONSOLE"

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # The gateway's operational views (`/gateway/upstreams`, `/metrics`).
    gateway_admin_url: str = "http://127.0.0.1:8081"
    # The fault proxy's control API; "" means TOXIPROXY_URL or http://127.0.0.1:8474.
    toxiproxy_url: str = ""
    # Jaeger's query service; when set, traces come from it instead of span files.
    jaeger_url: str = ""
    # Jaeger's UI as a browser reaches it, when that differs (compose: http://localhost:16686).
    jaeger_link: str = ""
    # Span files (local mode); "" means <var>/traces.
    traces_dir: str = ""
    # The running experiment's progress file; "" means <var>/experiment-progress.json.
    experiment_progress: str = ""
    # Written by `breakwater load --web` while Locust's web UI runs; "" means <var>/load-web.json.
    load_web_file: str = ""
    # Locust's web UI when it runs elsewhere (compose: http://localhost:8089).
    locust_url: str = ""
    # How often the sources are read while someone watches (seconds).
    poll_seconds: float = 1.0
    traces_seconds: float = 4.0
    # Host names the page may be reached by, besides the loopback names (DNS rebinding guard).
    allowed_hosts: tuple[str, ...] = ()
    threads: int = 16
    max_streams: int = 8

    def resolved_traces_dir(self) -> Path:
        """The span-file folder to read."""
        return Path(self.traces_dir) if self.traces_dir else var_dir() / "traces"

    def resolved_progress_file(self) -> Path:
        """The experiment progress file to read."""
        return (Path(self.experiment_progress) if self.experiment_progress
                else var_dir() / "experiment-progress.json")

    def resolved_load_web_file(self) -> Path:
        """Where `breakwater load --web` announces Locust's web UI."""
        return Path(self.load_web_file) if self.load_web_file else var_dir() / "load-web.json"

    def host_names(self) -> frozenset[str]:
        """Host names (without port) a request may carry in its Host header."""
        return frozenset((*LOOPBACK_NAMES, *(h.lower() for h in self.allowed_hosts)))
