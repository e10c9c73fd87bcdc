"""Where the gateway's time goes: its WSGI app in-process under cProfile, against real product.

    python -m bench.profile_gateway --product http://127.0.0.1:PORT --var DIR --out FILE

No py-spy or pyinstrument in the virtualenv, so this uses the standard library's cProfile.
It runs in a child process (the gateway configures logging and tracing for the whole
process), calls the gateway app directly (no gunicorn) for `--requests` product reads and
writes JSON: wall and CPU time per call without the profiler, then profiled own-time per
area (gateway, resilient client, urllib3, http.client, waiting on the socket ...) and the
top functions. Comparing its CPU per call with the gunicorn worker's CPU per request (from
/proc) shows what gunicorn's gthread worker itself costs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import CLOSED_UPSTREAM, pinned
from bench.micro import READ_PATH

AREAS = (  # (label, substring of the profiled function's file or name), first match wins
    ("waiting for product's answer (socket recv)", "recv_into"),
    ("socket send (kernel loopback work)", "sendall"),
    ("gateway (routing, edge checks, reply)", "/gateway/"),
    ("resilient client (breaker, bulkhead, retry budget)", "/services/common/"),
    ("tracing", "opentelemetry"),
    ("metrics (prometheus_client)", "prometheus_client"),
    ("urllib3", "urllib3"),
    ("http.client + email header parsing (stdlib)", "http/client.py"),
    ("http.client + email header parsing (stdlib)", "/email/"),
    ("logging", "/logging/"),
)


def _environ() -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": READ_PATH, "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "HTTP_HOST": "127.0.0.1",
            "HTTP_ACCEPT": "application/json", "REMOTE_ADDR": "127.0.0.1"}


def _area(key: tuple[str, int, str]) -> str:
    text = f"{key[0]}:{key[2]}"
    for label, needle in AREAS:
        if needle in text:
            return label
    return "other (Python runtime, builtins)"


def profile(product_url: str, count: int) -> dict[str, Any]:
    """Profile `count` calls of the gateway app (resilience on, tracing off)."""
    from gateway import create_app

    app = create_app()
    statuses: list[str] = []

    def call() -> None:
        body = app(_environ(), lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)

    for _ in range(50):
        call()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    rows = []
    for key, (_cc, calls, tottime, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        area = _area(key)
        areas[area] = areas.get(area, 0.0) + tottime
        rows.append((tottime, calls, f"{Path(key[0]).name}:{key[1]}({key[2]})", area))
    rows.sort(reverse=True)
    return {
        "requests": count, "statuses": sorted(set(statuses)),
        "wall_ms_per_call": round(wall * 1000 / count, 3),
        "cpu_ms_per_call": round(cpu * 1000 / count, 3),
        "profiled_ms_per_call": round(total * 1000 / count, 3),
        "areas_ms_per_call": {k: round(v * 1000 / count, 3)
                              for k, v in sorted(areas.items(), key=lambda kv: -kv[1])},
        "top_functions": [{"function": name, "area": area, "calls": calls,
                           "own_ms_per_request": round(t * 1000 / count, 4)}
                          for t, calls, name, area in rows[:15]],
        "note": "cProfile inflates small-function costs about 2x; use the areas for shares",
    }


def run_profile(product_url: str, var: Path, *, requests_count: int = 400,
                cpu: int | None = None, timeout: float = 90.0) -> dict[str, Any]:
    """Run the profile in a child process (pinned to `cpu`) and return its JSON."""
    out = var / "gateway-profile.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "GATEWAY_UPSTREAM_PRODUCT": product_url, "OTEL_TRACES_EXPORTER": "none",
           "BREAKWATER_VAR_DIR": str(var), "GATEWAY_RESILIENCE": "on",
           "GATEWAY_LOG_LEVEL": "WARNING",
           **{f"GATEWAY_UPSTREAM_{s}": CLOSED_UPSTREAM for s in ("AUTH", "CART", "ORDER")}}
    env.pop("GATEWAY_REGISTRY_FILE", None)
    command = pinned(cpu, [sys.executable, "-m", "bench.profile_gateway", "--product",
                           product_url, "--requests", str(requests_count), "--out", str(out)])
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"the gateway profile failed (exit {done.returncode}): "
                           f"{done.stderr[-800:]}")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    """Profile and write the JSON to --out."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_gateway")
    parser.add_argument("--product", required=True)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if not args.product.startswith("http://127.0.0.1:"):
        parser.error("--product must be a loopback URL (http://127.0.0.1:PORT)")
    Path(args.out).write_text(json.dumps(profile(args.product, args.requests), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
