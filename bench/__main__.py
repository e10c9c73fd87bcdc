"""`python -m bench`: measure what Breakwater costs and how it scales.

    python -m bench                  # everything, medians of 3 (≈10-11 min on 2 cores)
    python -m bench --quick          # one short repetition of everything (< 2 min)
    python -m bench --only gateway,proxy

Writes bench/results/latest.json (every raw number) and the table in bench/README.md
(`--quick` writes bench/results/quick.json and quick.md instead). Everything runs on
127.0.0.1, on free ports, in a temporary var folder, and is stopped before the end.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.common import RESULTS, Context, RunSettings, load_average, machine
from bench.nginx import NginxMissing, ensure_nginx
from bench.stats import BenchResult
from bench.wrk import WrkMissing, ensure_wrk

BENCHMARKS = {
    "gateway": "gateway overhead: through the gateway and through nginx vs direct to product",
    "ceiling": "the gateway's ceiling on one core beside nginx's, trivial upstream",
    "proxy": "fault-proxy overhead vs direct, latency-toxic accuracy",
    "tracing": "default and all-sampled tracing (span files, OTLP) vs tracing off",
    "memory": "resident memory of the whole local stack",
    "isolation": "catalog p99 during cart outage / cart latency vs baseline",
    "failfast": "cart call latency while its breaker is open",
    "breakers": "a hung replica rejoins after healing; a half-failing replica trips",
    "scaling": "flash-sale throughput with 1, 2, 3 product replicas",
    "integrity": "flash-sale units sold vs stock, checkout throughput",
}


def parse_only(text: str | None) -> list[str]:
    """The benchmark names of `--only a,b` (all when empty); ValueError on an unknown one."""
    if not text:
        return list(BENCHMARKS)
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(BENCHMARKS)} (see --list)")
    return [n for n in BENCHMARKS if n in names]


class Run:
    """The selected benchmarks, in an order that restarts the stack as little as possible."""

    def __init__(self, ctx: Context, selected: list[str]) -> None:
        self.ctx, self.selected = ctx, selected
        self.results: dict[str, BenchResult] = {}
        self._pool: Any = None
        self._isolation: Any = None
        self._spent: dict[str, float] = {}

    def pool(self) -> Any:
        if self._pool is None:
            from bench.stacks import StackPool

            self._pool = StackPool(self.ctx)
        return self._pool

    def steps(self) -> list[tuple[str, list[str], Callable[[], None]]]:
        """(label, benchmarks it produces, action) in running order."""
        chosen = set(self.selected)
        steps: list[tuple[str, list[str], Callable[[], None]]] = []
        micro = [n for n in ("gateway", "tracing") if n in chosen]
        if micro:
            steps.append(("gateway/tracing measurements", micro, lambda: self._micro(micro)))
        if "ceiling" in chosen:
            steps.append(("gateway ceiling beside nginx", ["ceiling"], self._ceiling))
        if "proxy" in chosen:
            steps.append(("fault proxy", ["proxy"], self._proxy))
        if "isolation" in chosen:
            steps.append(("isolation, resilience on", ["isolation"],
                          lambda: self._isolation_phase(True)))
        if "failfast" in chosen:
            steps.append(("fail-fast", ["failfast"], self._failfast))
        if "breakers" in chosen:
            steps.append(("breaker semantics", ["breakers"], self._breakers))
        if "integrity" in chosen:
            steps.append(("flash-sale integrity", ["integrity"], self._integrity))
        if "memory" in chosen:  # on the stack already running, if one is: no extra start
            steps.append(("local stack memory", ["memory"], self._memory))
        if "isolation" in chosen and self.ctx.settings.isolation_resilience_off:
            steps.append(("isolation, resilience off", ["isolation"], self._isolation_off))
        if "scaling" in chosen:
            steps.append(("scaling", ["scaling"], self._scaling))
        return steps

    def _micro(self, names: list[str]) -> None:
        from bench import gateway, micro, tracing

        needs: set[str] = set()
        for name in names:
            needs |= {"gateway": gateway.NEEDS, "tracing": tracing.NEEDS}[name]
        measured = micro.measure(self.ctx, needs)
        for name in names:
            module = {"gateway": gateway, "tracing": tracing}[name]
            self.results[name] = module.evaluate(measured)

    def _ceiling(self) -> None:
        from bench import ceiling

        self.results["ceiling"] = ceiling.run(self.ctx)

    def _memory(self) -> None:
        from bench import memory

        self.results["memory"] = memory.run(self.ctx, self.pool())

    def _proxy(self) -> None:
        from bench import proxy

        self.results["proxy"] = proxy.run(self.ctx)

    def _isolation_phase(self, resilience: bool) -> None:
        from bench.isolation import Isolation

        if self._isolation is None:
            self._isolation = Isolation(self.ctx)
        try:
            self._isolation.phase(self.pool(), resilience)
        finally:
            self.results["isolation"] = self._isolation.result()

    def _isolation_off(self) -> None:
        if self.ctx.settings.isolation_resilience_off:
            self._isolation_phase(False)

    def _failfast(self) -> None:
        from bench import failfast

        outage = self._isolation.runs.get("cart-outage/on") if self._isolation else None
        self.results["failfast"] = failfast.run(self.ctx, self.pool(), outage)

    def _breakers(self) -> None:
        from bench import breakers

        self.results["breakers"] = breakers.run(self.ctx, self.pool())

    def _integrity(self) -> None:
        from bench import integrity

        self.results["integrity"] = integrity.run(self.ctx, self.pool())

    def _scaling(self) -> None:
        from bench import scaling

        self.results["scaling"] = scaling.run(self.ctx, self.pool())

    def preload(self) -> None:
        """Read the experiment definitions the selection needs once, now (see
        bench.stacks.definition); a missing one is reported by its benchmark later."""
        from bench.stacks import definition

        wanted = {"isolation": self.ctx.settings.isolation_experiments,
                  "failfast": self.ctx.settings.isolation_experiments[:1],
                  "breakers": self.ctx.settings.isolation_experiments[:1],
                  "integrity": ("flash-sale-integrity",), "scaling": ("product-scaling",)}
        for bench_name, names in wanted.items():
            if bench_name in self.selected:
                for name in names:
                    try:
                        definition(name)
                    except RuntimeError as exc:
                        self.ctx.log(f"warning: {exc}")

    def execute(self) -> None:
        """Run every step; a failing step is recorded as ERROR and the others still run."""
        self.preload()
        for label, names, action in self.steps():
            if self.ctx.over_budget():
                self.ctx.log(f"SKIP {label}: the time budget "
                             f"({self.ctx.settings.budget_s:.0f} s) is used up")
                for name in names:
                    if name in self.results:  # partly measured: keep it, say what is missing
                        self.results[name].notes.append(f"{label}: skipped, time budget used up")
                        continue
                    self.results[name] = BenchResult(
                        name, BENCHMARKS[name], status="skipped",
                        error="time budget used up before it could start; run it alone with "
                              f"--only {name}")
                continue
            self.ctx.log(f"== {label}")
            began, load_before = time.monotonic(), load_average()
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not stop all
                self.ctx.log(f"ERROR in {label}: {exc}")
                with contextlib.suppress(OSError):
                    traceback.print_exc()
                for name in names:
                    if name in self.results and self.results[name].targets:
                        self.results[name].notes.append(f"ERROR in {label}: {exc}")
                        continue
                    self.results[name] = BenchResult(
                        name, BENCHMARKS[name], status="error",
                        error=f"{type(exc).__name__}: {str(exc)[:600]} — rerun with "
                              f"`python -m bench --only {name} --keep-work` and read the "
                              "logs under the kept folder")
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            for name in names:
                self._spent[name] = self._spent.get(name, 0.0) + time.monotonic() - began
                if name in self.results:
                    result = self.results[name]
                    result.measured_at, result.mode = stamp, self.ctx.settings.mode
                    result.duration_s = round(self._spent[name], 1)
                    result.raw.setdefault("host_loadavg_1min", []).append(
                        [load_before, load_average()])
            self.ctx.log(f"   {label} done in {time.monotonic() - began:.0f} s")

    def close(self) -> None:
        """Stop the stack if one runs."""
        if self._pool is not None:
            self.ctx.log("stopping the stack")
            self._pool.close()


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmarks, write the results; 1 when a benchmark broke."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short repetition (< 2 min)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="run a subset (see --list)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep the temporary folder (reports, logs, span files)")
    args = parser.parse_args(argv)
    if args.list:
        for name, text in BENCHMARKS.items():
            print(f"{name:<10} {text}")
        return 0
    try:
        selected = parse_only(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    settings = RunSettings.quick() if args.quick else RunSettings.full()
    try:
        ensure_wrk()
        if {"gateway", "ceiling"} & set(selected):
            ensure_nginx()
    except (WrkMissing, NginxMissing) as exc:
        print(f"python -m bench: error: {exc}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="breakwater-bench-"))
    ctx = Context(settings, work)
    started_at = time.strftime("%Y-%m-%d %H:%M:%S")
    facts = machine()
    ctx.log(f"bench ({settings.mode}): {', '.join(selected)} on {facts['cores']} cores; "
            f"work folder {work}; wrk at {facts['wrk']}")
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)
    run = Run(ctx, selected)
    interrupted = False
    try:
        run.execute()
    except KeyboardInterrupt:
        interrupted = True
        ctx.log("interrupted: stopping everything that was started")
    finally:
        run.close()
        if args.keep_work:
            ctx.log(f"kept the work folder {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if interrupted:
        return 130
    return _write(ctx, run, selected, args, started_at, facts)


def _write(ctx: Context, run: Run, selected: list[str], args: argparse.Namespace,
           started_at: str, facts: dict[str, Any]) -> int:
    finished_at = time.strftime("%Y-%m-%d %H:%M:%S")
    meta = {"started_at": started_at, "finished_at": finished_at,
            "duration_s": round(ctx.elapsed(), 1), "mode": ctx.settings.mode,
            "only": selected if args.only else None, "machine": facts,
            "settings": ctx.settings.as_dict(),
            "log": ctx.lines}
    results = dict(run.results)
    for result in results.values():
        if result.measured_at is None:
            result.measured_at = finished_at
    if args.quick:
        json_path, md_path = RESULTS / "quick.json", RESULTS / "quick.md"
    else:
        json_path, md_path = RESULTS / "latest.json", RESULTS.parent / "README.md"
        if args.only:
            results = {**report.load_previous(json_path), **results}
            meta["last_full_run"] = report.last_full_run(json_path)
    meta["load_generators"] = sorted({r.load_generator for r in results.values()
                                      if r.load_generator})
    report.write(results, meta, json_path, md_path)
    with contextlib.suppress(OSError):
        print()
        print("\n".join(report.render_table(results)))
    ctx.log(f"wrote {json_path} and {md_path} ({ctx.elapsed():.0f} s in all)")
    broken = [r.name for r in run.results.values() if r.status == "error"]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
