"""Benchmark 3: what tracing costs — end-to-end reads through the gateway, traced vs not.

Three traced set-ups, each gateway in front of its own product, against the same path with
`OTEL_TRACES_EXPORTER=none` measured in the same repetition: the default (span files, the
default sampler: every request but catalog reads, those at 10 %), every request sampled
(`OTEL_TRACES_SAMPLER=always_on`, span files), and the default sampler exporting OTLP/HTTP
to a local receiver (`bench.otlp_receiver`, standing in for Jaeger). Throughput at 16
connections (wrk) and p50 at one connection (bench.loadclient, interleaved). Measurements
come from `bench.micro`.
"""

from __future__ import annotations

from typing import Any

from bench.gateway import _cpu, _fmt, _pinning, _series
from bench.stats import BenchResult, Target, median, paired_ratios, spread

NAME = "tracing"
TITLE = "Tracing overhead (default and all-sampled tracing vs tracing off, through the gateway)"
REFERENCE = "gateway/on/none"
# (traced gateway, label, target for its throughput ÷ tracing off; None: reported only)
MODES = (("gateway/on/file", "default sampler, span files", 0.9),
         ("gateway/on/all", "every request sampled (always_on), span files", 0.8),
         ("gateway/on/otlp", "default sampler, OTLP/HTTP to a local receiver", None))
NEEDS = {REFERENCE, *(key for key, _, _ in MODES), "product/none", "product/file",
         "product/all", "product/otlp"}


def evaluate(micro: dict[str, Any]) -> BenchResult:
    """The tracing targets from the shared measurements."""
    load = micro["load_generator"]
    base_rps = _series(micro, REFERENCE, "closed", "rps")
    base_seq = _series(micro, REFERENCE, "sequential", "p50_ms")
    raw: dict[str, Any] = {"reference": REFERENCE, "modes": {}}
    targets = []
    closed = micro.get("closed_generator") or load
    one_conn = micro.get("sequential_generator") or load
    for key, label, goal in MODES:
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
        targets.append(Target(NAME, f"throughput with tracing ({label}) ÷ tracing off",
                              ">=" if goal else "", goal, unit="x",
                              load_generator=closed).judge(
            figures["throughput_ratio"],
            f"{figures['traced_rps']:.0f} vs {figures['untraced_rps']:.0f} req/s; per rep "
            f"{_fmt(ratios)}; product alone (direct, traced ÷ untraced) "
            f"{_fmt([figures['product_alone_throughput_ratio']])}"))
        targets.append(Target(NAME, f"added p50 at 1 connection from tracing ({label})", "",
                              None, unit="ms", load_generator=one_conn).judge(
            figures["added_p50_1conn_ms"]))
    speed = _speed(micro)
    if speed:
        raw["machine_speed"] = speed
        targets.append(Target(NAME, "machine speed spread during these measurements (a fixed CPU "
                              "workload on product's core: slowest ÷ fastest)", "", None,
                              unit="x", load_generator="bench.common.cpu_speed_ms").judge(
            speed["slowest_over_fastest"],
            f"{speed['fastest_ms']}-{speed['slowest_ms']} ms over {speed['probes']} probes; "
            "untraced gateway's throughput per rep "
            + ", ".join(f"{rps:.0f}" for rps in speed["reference_rps"] if rps) + " req/s"))
    raw["profile"] = micro.get("tracing_profile")
    raw["measurements"] = {k: v for k, v in micro["endpoints"].items() if k in NEEDS}
    raw["otlp_receiver"] = micro.get("otlp_receiver")
    raw["span_files_bytes"] = micro.get("span_files_bytes")
    return BenchResult(NAME, TITLE, targets, raw=raw, load_generator=load,
                       pinning=_pinning(micro), notes=_notes(raw))


def _speed(micro: dict[str, Any]) -> dict[str, Any] | None:
    """How much the machine's own speed moved while the endpoints were measured: the same
    workload timed after every slice (`bench.micro`), the bench's spread's likeliest cause."""
    probes = [ms for key in NEEDS for rep in micro["endpoints"].get(key, [])
              for ms in rep.get("speed_probe_ms") or []]
    if not probes:
        return None
    return {"probes": len(probes), "fastest_ms": min(probes), "slowest_ms": max(probes),
            "slowest_over_fastest": round(max(probes) / min(probes), 3),
            "reference_rps": _series(micro, REFERENCE, "closed", "rps")}


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
    otel = {k: v for k, v in areas.items() if "OpenTelemetry" in k or "spans" in k}
    return [
        f"Product in-process (Flask test client; CPU of all its threads per read): tracing off "
        f"{cpu['none']} ms; {spans} spans made but exported nowhere {cpu['noop']} ms "
        f"(+{cpu['noop'] - cpu['none']:.2f} ms: creating the spans, their attributes and "
        f"context); span files {cpu.get('file')} ms; OTLP/HTTP {cpu.get('otlp')} ms (JSON or "
        "protobuf encoding and the writes/posts run on the export thread, under the same GIL). "
        "Profiled request-thread time in OpenTelemetry per read (ms, cProfile-inflated): "
        + ", ".join(f"{k} {v}" for k, v in otel.items()) + ". What remains is making spans "
        "(the lean server span and statement span, observability.server_spans and "
        ".statements), not exporting them; with the default sampler most catalog reads make "
        "none."]
