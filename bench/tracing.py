"""Benchmark 3: what full tracing costs — end-to-end reads through the gateway, traced vs not.

Full tracing: every request sampled; gateway and product each record their spans (server,
HTTP client, SQL) and export them with OpenTelemetry's batch processor — once to a local
OTLP/HTTP receiver (`bench.otlp_receiver`, standing in for Jaeger), once to span files
(`var/traces`). Reference: the same path with `OTEL_TRACES_EXPORTER=none`, measured in the
same repetition. Measurements come from `bench.micro`.
"""

from __future__ import annotations

from typing import Any

from bench.gateway import _cpu, _fmt, _pinning, _series
from bench.stats import BenchResult, Target, median, paired_ratios, spread

NAME = "tracing"
TITLE = "Tracing overhead (full tracing vs tracing off, through the gateway)"
REFERENCE = "gateway/on/none"
MODES = (("gateway/on/otlp", "OTLP/HTTP to a local receiver"),
         ("gateway/on/file", "span files"))
NEEDS = {REFERENCE, *(key for key, _ in MODES), "product/none", "product/file", "product/otlp"}


def evaluate(micro: dict[str, Any]) -> BenchResult:
    """The tracing targets from the shared measurements."""
    load = micro["load_generator"]
    base_rps = _series(micro, REFERENCE, "closed", "rps")
    base_seq = _series(micro, REFERENCE, "sequential", "p50_ms")
    raw: dict[str, Any] = {"reference": REFERENCE, "modes": {}}
    targets = []
    for key, label in MODES:
        rps = _series(micro, key, "closed", "rps")
        ratios = paired_ratios(rps, base_rps)
        seq = _series(micro, key, "sequential", "p50_ms")
        added = [None if a is None or b is None else a - b for a, b in zip(seq, base_seq, strict=True)]
        product_key = "product/" + key.rsplit("/", 1)[1]
        direct_ratio = paired_ratios(_series(micro, product_key, "closed", "rps"),
                                     _series(micro, "product/none", "closed", "rps"))
        figures = {
            "throughput_ratio": median(ratios), "throughput_ratio_reps": ratios,
            "throughput_ratio_spread": spread(ratios), "traced_rps": median(rps),
            "untraced_rps": median(base_rps), "added_p50_1conn_ms": median(added),
            "product_alone_throughput_ratio": median(direct_ratio),
            "cpu_ms_per_request": {
                "gateway": _cpu(micro, key, "gateway"),
                "gateway_untraced": _cpu(micro, REFERENCE, "gateway"),
                "product": _cpu(micro, key, "product"),
                "product_untraced": _cpu(micro, REFERENCE, "product")},
        }
        raw["modes"][key] = figures
        targets.append(Target(NAME, f"throughput with full tracing ({label}) ÷ tracing off",
                              ">=", 0.8, unit="x", load_generator=load).judge(
            figures["throughput_ratio"],
            f"{figures['traced_rps']:.0f} vs {figures['untraced_rps']:.0f} req/s; per rep "
            f"{_fmt(ratios)}; product alone (direct, traced ÷ untraced) "
            f"{_fmt([figures['product_alone_throughput_ratio']])}"))
        targets.append(Target(NAME, f"added p50 at 1 connection from tracing ({label})", "",
                              None, unit="ms", load_generator=load).judge(
            figures["added_p50_1conn_ms"]))
    raw["profile"] = micro.get("tracing_profile")
    raw["measurements"] = {k: v for k, v in micro["endpoints"].items() if k in NEEDS}
    raw["otlp_receiver"] = micro.get("otlp_receiver")
    raw["span_files_bytes"] = micro.get("span_files_bytes")
    return BenchResult(NAME, TITLE, targets, raw=raw, load_generator=load,
                       pinning=_pinning(micro), notes=_notes(raw))


def _notes(raw: dict[str, Any]) -> list[str]:
    notes = []
    received = raw.get("otlp_receiver") or {}
    if received:
        notes.append(f"Evidence tracing was on: the OTLP receiver got {received.get('spans')} "
                     f"spans in {received.get('requests')} exports; span files "
                     f"{raw.get('span_files_bytes')} bytes.")
    for key, figures in raw["modes"].items():
        cpu = figures["cpu_ms_per_request"]
        if cpu.get("product") and cpu.get("product_untraced"):
            notes.append(
                f"{key}: product CPU {cpu['product_untraced']} → {cpu['product']} ms/request, "
                f"gateway {cpu['gateway_untraced']} → {cpu['gateway']} ms/request with tracing; "
                "product (pinned to its own core) is the bottleneck, so its extra CPU per "
                "request sets the throughput ratio.")
    notes.extend(_profile_notes(raw.get("profile") or {}))
    return notes


def _profile_notes(profile: dict[str, Any]) -> list[str]:
    """What the in-process tracing profile of product (bench.profile_tracing) says."""
    cpu = {k: v.get("cpu_ms_per_request") for k, v in profile.items() if isinstance(v, dict)}
    if not (cpu.get("none") and cpu.get("noop")):
        return []
    noop = profile.get("noop") or {}
    spans = noop.get("spans_per_request")
    areas = noop.get("request_thread_areas_ms") or {}
    otel = {k: v for k, v in areas.items() if "OpenTelemetry" in k or "instrumentation" in k}
    return [
        f"Product in-process (Flask test client; CPU of all its threads per read): tracing off "
        f"{cpu['none']} ms; {spans} spans made but exported nowhere {cpu['noop']} ms "
        f"(+{cpu['noop'] - cpu['none']:.2f} ms: creating the spans, their attributes and "
        f"context); span files {cpu.get('file')} ms; OTLP/HTTP {cpu.get('otlp')} ms (JSON or "
        "protobuf encoding and the writes/posts run on the export thread, under the same GIL). "
        "Profiled request-thread time in OpenTelemetry per read (ms, cProfile-inflated): "
        + ", ".join(f"{k} {v}" for k, v in otel.items()) + ". So most of the cost is making "
        "spans at all (three per read: the Flask server span and SQLAlchemy's connect and "
        "SELECT spans), not exporting "
        "them; under gunicorn, with the per-request work of the worker on top, it roughly "
        "doubles product's CPU per read, and product is the bottleneck."]
