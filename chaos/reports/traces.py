"""The slowest and the failed requests of a run, as links to their traces.

With Jaeger configured (`JAEGER_URL` or `BREAKWATER_JAEGER_URL`) a link opens the trace in
its UI. Otherwise the traces are read from the local span files (observability.spans) and
exported into the report folder as Jaeger JSON (`traces/<id>.json`, which Jaeger's UI opens
with "JSON File") and a text waterfall (`traces/<id>.txt`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.experiments.measurements import Request


def jaeger_url() -> str:
    """The Jaeger UI address from the environment ("" when none)."""
    return (os.environ.get("JAEGER_URL") or os.environ.get("BREAKWATER_JAEGER_URL") or "").rstrip("/")


def pick_requests(requests: Sequence[Request], slowest: int = 10,
                  failed: int = 10) -> dict[str, list[Request]]:
    """The `slowest` requests and the first `failed` failures that carry a trace id."""
    traced = [r for r in requests if r.trace_id]
    return {
        "slowest": sorted(traced, key=lambda r: r.ms, reverse=True)[:slowest],
        "failed": [r for r in traced if r.outcome == "failure"][:failed],
    }


def trace_links(requests: Sequence[Request], run_dir: Path, *,
                traces_dir: Path | None = None, slowest: int = 10, failed: int = 10
                ) -> dict[str, list[dict[str, Any]]]:
    """{"slowest": [...], "failed": [...]}: each entry a request with a `link` (or None)."""
    picked = pick_requests(requests, slowest, failed)
    wanted = {r.trace_id for rows in picked.values() for r in rows}
    jaeger = jaeger_url()
    exported: dict[str, str] = {}
    if wanted and not jaeger and traces_dir is not None:
        exported = export_traces(wanted, traces_dir, run_dir / "traces")
    result: dict[str, list[dict[str, Any]]] = {}
    for kind, rows in picked.items():
        result[kind] = [{
            "t": round(r.t, 3), "method": r.method, "name": r.name, "group": r.group,
            "status": r.status, "ms": r.ms, "code": r.code, "trace_id": r.trace_id,
            "link": (f"{jaeger}/trace/{r.trace_id}" if jaeger else exported.get(r.trace_id)),
        } for r in rows]
    return result


def export_traces(trace_ids: set[str], traces_dir: Path, out: Path) -> dict[str, str]:
    """Write the traces found in the span files; trace id → relative file path."""
    from observability.render import waterfall
    from observability.spans import SpanFiles, group_traces, read_span_file, to_jaeger_json

    files = SpanFiles(traces_dir).files()
    if not files:
        return {}
    spans = []
    for path in files:
        spans.extend(s for s in read_span_file(path) if s.trace_id in trace_ids)
    exported = {}
    for trace in group_traces(spans):
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{trace.trace_id}.json").write_text(json.dumps(to_jaeger_json([trace])))
        with contextlib.suppress(Exception):  # the JSON export is what matters
            (out / f"{trace.trace_id}.txt").write_text(waterfall(trace))
        exported[trace.trace_id] = f"traces/{trace.trace_id}.json"
    return exported
