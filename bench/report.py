"""The results on disk: `bench/results/latest.json` (every raw number) and `bench/README.md`.

A full run replaces both. An `--only` run replaces just the benchmarks it ran and keeps the
others from the previous latest.json (each row says when it was measured). A `--quick` run
writes `bench/results/quick.json` and `quick.md` and leaves the committed results alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.stats import BenchResult, rounded

ORDER = ("gateway", "ceiling", "proxy", "tracing", "memory", "isolation", "failfast", "breakers",
         "scaling", "integrity")
SCHEMA = 1

HOW_TO = """\
Run from the repository root (the virtualenv must be installed: `make install` or `make test`
does it):

```
make bench                                  # = .venv/bin/python -m bench (≈10-11 min)
.venv/bin/python -m bench --quick           # smoke check, < 2 min, writes results/quick.*
.venv/bin/python -m bench --only gateway,proxy
.venv/bin/python -m bench --only ceiling      # any row alone: ceiling, memory, tracing ...
.venv/bin/python -m bench --list            # the benchmark names
```

A full run takes about 10-11 minutes on a 2-core machine; past 13.5 minutes it starts no
further benchmark (those are reported as skipped), so it always ends well within 15. Every
process is started by the benchmark itself on free loopback ports (port 0 /
`port_base=0`) with its own temporary var folder, and stopped by PID at the end; nothing
touches the default ports (8080, 5000-5004, 8474), so a running demo is safe. `--keep-work`
keeps the temporary folder (experiment reports, logs, span files) for a look afterwards.
"""

METHOD = """\
- **Ratios, not absolute numbers.** The machine is shared and noisy, so every figure is a
  ratio (or a difference) against a reference measured in the same run, and within the
  same repetition wherever possible; each figure is the median of the repetitions (3 in a
  full run; `--quick` does 1 and is only a smoke check). Raw per-repetition numbers, CPU
  used per process and the load average are in `results/latest.json`.
- **Load generators.** Throughput windows use `wrk` (Debian's package; the bench installs
  it with apt-get when it is missing). What wrk cannot do is done by `bench.loadclient`, an
  asyncio keep-alive HTTP/1.1 client: one request at a time on one connection per endpoint,
  taking the compared endpoints in turn so drift hits both alike, every latency kept. The
  fault-proxy benchmark relays to `bench.responder`, a fixed-size responder in its own
  process, and compares the proxy with HAProxy in TCP mode (Debian's `haproxy`, installed
  with apt-get when missing) relaying to the same responder on the same CPU. The gateway
  is compared with nginx (Debian's `nginx`, installed with apt-get when missing; one
  process, keep-alive to its upstream) in front of the same product replica, and on its
  own core in front of the same responder. Every row names its load generator. The
  experiment benchmarks use the project's own Locust runner
  (`loadtests.runner`, FastHttpUser), as the experiments do.
- **Alternation.** Throughput windows are cut into one-second slices that alternate between
  the compared endpoints (ABCABC…), then merged per endpoint.
- **Pinning.** Micro-benchmarks pin with `taskset`/`sched_setaffinity`: the service under
  test (product, or the fault proxy) owns one CPU; the load generator and the gateway share
  the other. The experiment benchmarks run the real stack under the supervisor's per-service
  CPU quotas (cgroups, profile `experiments`: product 0.25 CPU per replica, gateway 1.0).
- **Real code, not copies.** Processes are started with the supervisor's own command lines
  (`local_stack.commands`), the stack with `LocalStack`, experiments with
  `run_experiment` and their YAML definitions (durations scaled down), the proxy with
  `python -m chaos.toxiproxy`.
"""


def render_markdown(results: dict[str, BenchResult], meta: dict[str, Any]) -> str:
    """The README: how to run, the results table, per-benchmark notes, the method."""
    machine = meta.get("machine", {})
    lines = ["# Breakwater benchmarks", "",
             "What Breakwater costs and how it scales, measured by `python -m bench` "
             "(`make bench`).", "", HOW_TO, "## Latest results", ""]
    lines += [
        f"- date: {meta.get('finished_at', '?')} (run took {_duration(meta.get('duration_s'))},"
        f" mode `{meta.get('mode', '?')}`{_only(meta)})",
        *([f"- last full run: {meta['last_full_run'].get('finished_at')} (took "
            f"{_duration(meta['last_full_run'].get('duration_s'))}); rows say when each "
            "benchmark was measured"] if meta.get("only") and meta.get("last_full_run") else []),
        f"- machine: {machine.get('cores', '?')} cores ({machine.get('cpu_model') or 'unknown CPU'}"
        f"), {machine.get('memory_mb', '?')} MB, {machine.get('os', '?')}, Python "
        f"{machine.get('python', '?')}; load average at start "
        f"{machine.get('loadavg_at_start')}",
        f"- load generators: {'; '.join(meta.get('load_generators', [])) or '?'}"
        f" (wrk {'found' if machine.get('wrk') else 'not installed'})",
        f"- commit: {machine.get('git_commit') or '?'}; raw numbers: "
        "[`results/latest.json`](results/latest.json)", ""]
    if meta.get("mode") == "quick":
        lines += ["**`--quick`: a smoke check of every code path (one short repetition, every "
                  "experiment on one stack). These figures are not measurements.**", ""]
    lines += render_table(results)
    lines += ["", "## Notes", ""]
    for name in ordered(results):
        result = results[name]
        lines.append(f"### {result.title}")
        lines.append("")
        if result.status != "ok":
            lines.append(f"- **{result.status.upper()}**: {result.error or 'not run'}")
        if result.pinning:
            lines.append(f"- pinning: {result.pinning}")
        loads = result.raw.get("host_loadavg_1min") if isinstance(result.raw, dict) else None
        if loads:
            shown = ", ".join(f"{a} → {b}" for a, b in loads)
            lines.append(f"- host load average (1 min) at its start → end: {shown} (it counts "
                         "the benchmark's own processes too; on 2 cores, well above 2 means "
                         "processes were waiting for a CPU)")
        lines.append(f"- load generator: {result.load_generator or '—'}")
        for note in result.notes:
            lines.append(f"- {note}")
        for target in result.targets:
            if target.status in ("FAIL", "ERROR") and target.detail:
                lines.append(f"- {target.status}: {target.name} — {target.detail}")
        lines.append("")
    lines += ["## Method", "", METHOD]
    return "\n".join(lines).rstrip() + "\n"


def render_table(results: dict[str, BenchResult]) -> list[str]:
    """The Markdown table: one row per target."""
    rows = ["| # | benchmark | target | measured | result | load generator | measured at |",
            "|---|---|---|---|---|---|---|"]
    for index, name in enumerate(ordered(results), start=1):
        result = results[name]
        when = (result.measured_at or "—")[:16]
        if not result.targets:
            rows.append(f"| {index} | {result.title} | — | — | {result.status.upper()} | "
                        f"{result.load_generator or '—'} | {when} |")
            continue
        for target in result.targets:
            shown = target.target_text
            rows.append(f"| {index} | {_cell(target.name)} | {shown} | "
                        f"{target.measured_text()} | {_badge(target.status)} | "
                        f"{_short(target.load_generator or result.load_generator)} | {when} |")
    return rows


def ordered(results: dict[str, BenchResult]) -> list[str]:
    """Benchmark names in the documented order (unknown ones last)."""
    return sorted(results, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


def _badge(status: str) -> str:
    return {"PASS": "PASS", "FAIL": "**FAIL**", "ERROR": "**ERROR**", "INFO": "info",
            "SKIP": "skipped"}.get(status, status)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _short(text: str) -> str:
    """A load generator's name without its parenthesised description."""
    return _cell(re.sub(r"\s*\([^()]*\)", "", text).strip())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _only(meta: dict[str, Any]) -> str:
    only = meta.get("only")
    return f", only {', '.join(only)}" if only else ""


def last_full_run(path: Path) -> dict[str, Any] | None:
    """When the last full run (all benchmarks) behind an earlier latest.json ran, and how long
    it took; None when there was none."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if document.get("last_full_run"):
        return document["last_full_run"]
    if document.get("mode") == "full" and not document.get("only"):
        return {k: document.get(k) for k in ("started_at", "finished_at", "duration_s")}
    return None


def load_previous(path: Path) -> dict[str, BenchResult]:
    """Benchmarks of an earlier latest.json ({} when there is none or it is unreadable)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for name, data in (document.get("benchmarks") or {}).items():
        try:
            found[name] = BenchResult.from_dict(data)
        except (KeyError, TypeError):
            continue
    return found


def write(results: dict[str, BenchResult], meta: dict[str, Any], json_path: Path,
          markdown_path: Path) -> None:
    """Write the JSON and the Markdown (atomically: aside, then renamed)."""
    document = {"schema": SCHEMA, **rounded(meta),
                "benchmarks": {name: results[name].as_dict() for name in ordered(results)}}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    _write(json_path, json.dumps(document, indent=2, default=str) + "\n")
    _write(markdown_path, render_markdown(results, meta))


def _write(path: Path, text: str) -> None:
    aside = path.with_suffix(path.suffix + ".tmp")
    aside.write_text(text)
    aside.replace(path)
