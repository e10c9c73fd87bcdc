"""Every request of a test, one CSV row each, for analysis by phase and fault window.

Locust's own CSVs hold totals and a 10-second rolling percentile; a hypothesis such as
"p99 during the outage within 1.25x the baseline" needs each request's time, route, status
and latency. Rows: `t` (unix start time), `method`, `name`, `group`, `status`, `ms`,
`outcome` (ok/expected/failure), `code` (the error code), `trace_id`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from loadtests.outcomes import classify, error_code, group_of

COLUMNS = ("t", "method", "name", "group", "status", "ms", "outcome", "code", "trace_id")
LOG_ENV = "BREAKWATER_REQUEST_LOG"


class RequestRecorder:
    """A Locust `request` event listener writing requests.csv."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._file)
        self._writer.writerow(COLUMNS)
        self.count = 0

    def on_request(self, request_type: str, name: str, response_time: float,
                   response: Any = None, exception: Any = None, start_time: float | None = None,
                   **_: Any) -> None:
        status = int(getattr(response, "status_code", 0) or 0)
        code = None
        if status >= 400 or status == 0:
            try:
                code = error_code(response.content) if status else None
            except Exception:  # noqa: BLE001 - a broken body is still a row
                code = None
            if status == 0 and exception is not None:
                code = type(exception).__name__
        headers = getattr(response, "headers", None) or {}
        try:
            trace_id = headers.get("X-Trace-Id") or headers.get("x-trace-id") or ""
        except Exception:  # noqa: BLE001
            trace_id = ""
        self._writer.writerow((f"{start_time or 0:.4f}", request_type, name,
                               group_of(request_type, name), status, f"{response_time:.2f}",
                               classify(status, code), code or "", trace_id))
        self.count += 1
        if self.count % 500 == 0:
            self._file.flush()

    def flush(self) -> None:
        """Write what is buffered (a worker does so when its test stops)."""
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()


def attach(environment: Any, path: str | Path | None = None) -> RequestRecorder | None:
    """Record `environment`'s requests to `path` (or $BREAKWATER_REQUEST_LOG); None if unset."""
    path = path or os.environ.get(LOG_ENV)
    if not path:
        return None
    if type(environment.runner).__name__ == "WorkerRunner":
        path = f"{path}.{os.getpid()}"  # distributed: one file per worker, merged by the master
    recorder = RequestRecorder(path)
    environment.events.request.add_listener(recorder.on_request)
    environment.events.test_stop.add_listener(lambda **_: recorder.flush())
    environment.events.quitting.add_listener(lambda **_: recorder.close())
    return recorder
