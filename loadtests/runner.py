"""Run a Locust test headless, as a library, and keep everything it measured.

    spec = LoadSpec(scenario="flash-sale", shape="flash-sale", users=80, out_dir="reports/x")
    result = run_load_in_subprocess(spec)      # from programs that must stay free of gevent
    result = run_load(spec)                     # in a process that may be monkey-patched

Writes into `out_dir`: `locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`,
`locust_exceptions.csv`, `locust.html`, `requests.csv` (every request, see
`loadtests.recorder`), `orders.jsonl` (checkout attempts) and `load.json` (the summary, with
offered against achieved rate in open-loop mode). A live line shows elapsed time, users,
requests a second, p95 and failures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from loadtests.distributed import MAX_WORKERS
from loadtests.profiles import Profile, build_profile
from loadtests.scenarios import SCENARIOS
from loadtests.scenarios import scenario as find_scenario

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class LoadSpec:
    """Everything a load run needs; JSON-able so a child process can run it."""

    scenario: str = "mixed"
    out_dir: str = "reports/load"
    host: str = "http://127.0.0.1:8080"
    shape: str | None = None
    users: int | None = None
    duration: float | None = None
    spawn_rate: float | None = None
    rate: float | None = None
    shape_params: dict[str, Any] = field(default_factory=dict)
    scale: float = 1.0
    tokens_file: str | None = None
    seed_file: str | None = None
    hot_slug: str | None = None
    progress: bool = True
    grace_s: float = 15.0
    # `breakwater load --web`: Locust's own web UI on 127.0.0.1:web_port beside the run, its
    # address written to web_announce (the console links to it) while it runs.
    web_port: int | None = None
    web_announce: str | None = None
    # Locust's distributed mode on this host: 0 runs the users in the one process; N > 0 runs
    # a master and N worker processes (see loadtests.distributed).
    workers: int = 0

    def profile(self) -> Profile:
        """The load profile this spec asks for."""
        scenario = find_scenario(self.scenario)
        shape = self.shape or scenario.default_shape
        open_loop = self.rate is not None or shape == "rate"
        if open_loop != (scenario.default_shape == "rate"):
            paced = ", ".join(s.name for s in SCENARIOS.values() if s.default_shape == "rate")
            raise ValueError(
                f"scenario {self.scenario!r} is closed loop (its users send as fast as answers "
                f"come): use --rate and the rate shape with an open-loop scenario ({paced})"
                if open_loop else
                f"scenario {self.scenario!r} is open loop: give it --rate RPS")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 0..{MAX_WORKERS}, got {self.workers}")
        return build_profile(shape, users=self.users, duration=self.duration,
                             spawn_rate=self.spawn_rate, rate=self.rate, scale=self.scale,
                             **self.shape_params)


def user_classes(scenario_name: str) -> list[Any]:
    """The locustfile's user classes of a scenario, weighted (imports Locust)."""
    from loadtests import locustfile

    classes = []
    for name, weight in find_scenario(scenario_name).users.items():
        user_class = getattr(locustfile, name)
        if not getattr(user_class, "fixed_count", 0):
            user_class.weight = weight
        classes.append(user_class)
    return classes


def _environment_for(spec: LoadSpec, profile: Profile) -> dict[str, str]:
    out = Path(spec.out_dir)
    env = {"BREAKWATER_REQUEST_LOG": str(out / "requests.csv"),
           "BREAKWATER_ORDER_LOG": str(out / "orders.jsonl"), "BREAKWATER_HOST": spec.host}
    if spec.tokens_file:
        env["BREAKWATER_TOKENS_FILE"] = spec.tokens_file
    if spec.seed_file:
        env["BREAKWATER_SEED_FILE"] = spec.seed_file
    if spec.hot_slug:
        env["BREAKWATER_HOT_SLUG"] = spec.hot_slug
    if profile.rate:
        env["BREAKWATER_RATE"] = str(profile.rate)
        env["BREAKWATER_RATE_USERS"] = str(profile.peak_users)
    return env


def run_load(spec: LoadSpec, stream: TextIO | None = None) -> dict[str, Any]:
    """Run the test in this process (imports Locust, which monkey-patches with gevent)."""
    profile = spec.profile()
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.update(_environment_for(spec, profile))
    stream = stream or sys.stdout

    import gevent
    import locust
    from locust.env import Environment
    from locust.html import get_html_report
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter, stats_history

    from loadtests.distributed import WorkerProcesses, merge_request_logs
    from loadtests.shapes import ProfileShape

    shape = ProfileShape(profile)
    env = Environment(user_classes=user_classes(spec.scenario), shape_class=shape,
                      host=spec.host, events=locust.events, stop_timeout=5)
    workers = None
    if spec.workers:
        runner = env.create_master_runner(master_bind_host="127.0.0.1", master_bind_port=0)
        workers = WorkerProcesses(dataclasses.asdict(spec), out, spec.workers,
                                  runner.server.port).start()
    else:
        runner = env.create_local_runner()
    web_ui = start_web_ui(env, spec, stream)
    env.events.init.fire(environment=env, runner=runner, web_ui=web_ui)
    writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(out / "locust"), full_history=True)
    greenlets = [gevent.spawn(writer), gevent.spawn(stats_history, runner)]
    try:
        if workers is not None:
            workers.wait_connected(runner)
        started = time.time()
        shape.reset_time()
        runner.start_shape()
        (out / "started").write_text(repr(started))
        deadline = time.monotonic() + profile.duration + spec.grace_s
        while runner.state not in ("stopped", "stopping") and time.monotonic() < deadline:
            gevent.sleep(1.0)
            if spec.progress:
                stream.write(progress_line(runner, time.time() - started) + "\n")
                stream.flush()
        if workers is not None:
            # The workers' last statistics arrive with their "stopped" message.
            settle = time.monotonic() + 10
            while runner.state != "stopped" and time.monotonic() < settle:
                gevent.sleep(0.1)
    finally:
        if workers is not None:
            # Each worker sends its last statistics as it quits; the master's own quit()
            # waits for them, so it comes after the workers are gone.
            workers.send_quit(runner)
            workers.wait_exited()
        runner.quit()
        env.events.quitting.fire(environment=env, reverse=True)
        for greenlet in greenlets:
            greenlet.kill(block=False)
        finished = time.time()
        writer.close_files()
        stop_web_ui(web_ui, spec)
        merged: dict[str, int] = {}
        if workers is not None:
            merged = merge_request_logs(out / "requests.csv",
                                        [out / f"requests.csv.{pid}" for pid in workers.pids])
        (out / "locust.html").write_text(get_html_report(env, show_download_link=False))
    result = summarise(runner.stats, profile, started, finished, spec)
    if workers is not None:
        result["workers"] = {"count": spec.workers, "master_pid": os.getpid(),
                             "requests": {pid: merged.get(f"requests.csv.{pid}", 0)
                                          for pid in workers.pids}}
    (out / "load.json").write_text(json.dumps(result, indent=2))
    return result


def start_web_ui(env: Any, spec: LoadSpec, stream: TextIO) -> Any:
    """Locust's web UI beside the run when `spec.web_port` is set (library mode), announced
    in `spec.web_announce`; None otherwise."""
    if spec.web_port is None:
        return None
    web_ui = env.create_web_ui(host="127.0.0.1", port=spec.web_port)
    _wait_listening(web_ui)
    url = f"http://127.0.0.1:{spec.web_port}"
    if spec.web_announce:
        announce = Path(spec.web_announce)
        announce.parent.mkdir(parents=True, exist_ok=True)
        announce.write_text(json.dumps({"url": url, "pid": os.getpid(),
                                        "scenario": spec.scenario, "out_dir": spec.out_dir}))
    stream.write(f"Locust web UI: {url}\n")
    stream.flush()
    return web_ui


def _wait_listening(web_ui: Any, timeout: float = 10.0) -> None:
    """Locust binds the web UI in a greenlet of its own: let it run until the socket listens,
    so the address is never announced before it answers."""
    import gevent

    deadline = time.monotonic() + timeout
    while not getattr(getattr(web_ui, "server", None), "started", False):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Locust's web UI did not start listening within {timeout:.0f} s "
                               "(is its port free?)")
        gevent.sleep(0.01)


def stop_web_ui(web_ui: Any, spec: LoadSpec) -> None:
    """Stop the web UI and withdraw its announcement (only if it is still this run's)."""
    if web_ui is None:
        return
    web_ui.stop()
    if spec.web_announce:
        announce = Path(spec.web_announce)
        try:
            if json.loads(announce.read_text()).get("pid") == os.getpid():
                announce.unlink()
        except (OSError, ValueError):
            pass


def progress_line(runner: Any, elapsed: float) -> str:
    """`  12s users 40  rps 183.2  p95 41 ms  failures 0 (0.0%)`."""
    total = runner.stats.total
    p95 = total.get_current_response_time_percentile(0.95) or 0
    fails = total.num_failures
    share = 100.0 * fails / total.num_requests if total.num_requests else 0.0
    return (f"  {elapsed:5.0f}s  users {runner.user_count:4d}  rps {total.current_rps:7.1f}  "
            f"p95 {p95:6.0f} ms  failures {fails} ({share:.1f}%)")


def summarise(stats: Any, profile: Profile, started: float, finished: float,
              spec: LoadSpec) -> dict[str, Any]:
    """Totals per request name, and offered against achieved rate."""
    elapsed = max(finished - started, 1e-9)
    routes = {}
    for (name, method), entry in sorted(stats.entries.items()):
        routes[f"{method} {name}"] = {
            "requests": entry.num_requests, "failures": entry.num_failures,
            "rps": entry.num_requests / elapsed,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99)}
    total = stats.total
    achieved = total.num_requests / elapsed
    steady = [p for p in profile.phases() if p.name != "warmup"]
    return {
        "scenario": spec.scenario, "host": spec.host, "profile": profile.describe(),
        "mode": "open-loop" if profile.open_loop else "closed-loop",
        "started": started, "finished": finished, "elapsed_s": elapsed,
        "requests": total.num_requests, "failures": total.num_failures,
        "achieved_rate": achieved, "offered_rate": profile.rate,
        "offered_window_s": sum(p.end - p.start for p in steady),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
        "p99_ms": total.get_response_time_percentile(0.99),
        "routes": routes,
    }


class LoadProcess:
    """A load run in a child Python process (gevent stays out of the caller)."""

    def __init__(self, spec: LoadSpec, *, echo: bool = True, cpu_list: str | None = None) -> None:
        # The child runs in this process's working directory, so relative paths (the run
        # folder, ./var) mean the same in both, whatever way Breakwater was installed.
        self.out = Path(spec.out_dir).absolute()
        self.spec = dataclasses.replace(spec, out_dir=str(self.out))
        self.echo, self.cpu_list = echo, cpu_list
        self.child: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.last_line = ""

    def start(self) -> LoadProcess:
        """Spawn the child; returns at once."""
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in ("started", "load.json"):
            (self.out / stale).unlink(missing_ok=True)
        spec_path = self.out / "load-spec.json"
        spec_path.write_text(json.dumps(dataclasses.asdict(self.spec)))
        command = [sys.executable, "-m", "loadtests.runner", str(spec_path)]
        if self.cpu_list and shutil.which("taskset"):
            command = ["taskset", "-c", self.cpu_list, *command]
        env = {**os.environ,
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self._log = open(self.out / "locust.log", "w")  # noqa: SIM115 - closed in wait()
        self.child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                      stderr=self._log, text=True)
        self._reader = threading.Thread(target=self._relay, daemon=True)
        self._reader.start()
        return self

    def _relay(self) -> None:
        assert self.child is not None and self.child.stdout is not None
        tty = sys.stdout.isatty()
        for count, line in enumerate(self.child.stdout):
            self.last_line = line.rstrip("\n")
            if not self.echo:
                continue
            if tty:
                sys.stdout.write("\r" + self.last_line[:110].ljust(110))
            elif count % 5 == 0:
                sys.stdout.write(self.last_line + "\n")
            sys.stdout.flush()
        if self.echo and tty:
            sys.stdout.write("\n")

    def wait_started(self, timeout: float = 60.0) -> float:
        """The unix time the load began (the child writes it once Locust is running)."""
        deadline = time.monotonic() + timeout
        marker = self.out / "started"
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text().strip():
                return float(marker.read_text())
            if self.child is not None and self.child.poll() is not None:
                raise RuntimeError(f"the load generator exited early:\n{self._log_tail()}")
            time.sleep(0.02)
        raise TimeoutError("the load generator did not start within "
                           f"{timeout:.0f} s:\n{self._log_tail()}")

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the child to finish; its load.json."""
        assert self.child is not None
        timeout = timeout or self.spec.profile().duration + self.spec.grace_s + 60
        try:
            self.child.wait(timeout=timeout)
        finally:
            self.stop()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.child.returncode != 0:
            raise RuntimeError(f"the load generator exited with {self.child.returncode}:\n"
                               f"{self._log_tail()}")
        return json.loads((self.out / "load.json").read_text())

    def stop(self) -> None:
        """End the child if it still runs (SIGTERM, then SIGKILL)."""
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait(timeout=5)
        if getattr(self, "_log", None) is not None and not self._log.closed:
            self._log.close()

    def _log_tail(self) -> str:
        try:
            return (self.out / "locust.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def run_load_in_subprocess(spec: LoadSpec, *, echo: bool = True,
                           timeout: float | None = None, cpu_list: str | None = None
                           ) -> dict[str, Any]:
    """Run the test in a child Python process and wait for its summary."""
    process = LoadProcess(spec, echo=echo, cpu_list=cpu_list).start()
    try:
        return process.wait(timeout)
    except BaseException:
        process.stop()
        raise


def main(argv: list[str] | None = None) -> int:
    """`python -m loadtests.runner SPEC.json`: run a spec written by the parent;
    `python -m loadtests.runner --worker HOST:PORT SPEC.json`: one worker of a distributed run."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        from loadtests.distributed import run_worker

        return run_worker(LoadSpec(**json.loads(Path(argv[2]).read_text())), argv[1])
    spec = LoadSpec(**json.loads(Path(argv[0]).read_text()))
    run_load(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
