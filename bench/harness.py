"""Real Breakwater processes for the micro-benchmarks: product and gateway, pinned to CPUs.

Product and the gateway are started exactly as the supervisor starts them (its
`commands` module: the same gunicorn command lines, environment and migrations), on free
loopback ports, in their own process groups, with a private var folder. The gateway is
pointed straight at product (`GATEWAY_UPSTREAM_PRODUCT`) so that what is measured is the
gateway alone; its other upstreams point at a closed loopback port (it never calls them).
`stop()` stops exactly the process groups started here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from local_stack import commands, databases
from local_stack.ports import free_port
from local_stack.processes import (
    group_alive,
    group_members,
    launch,
    log_tail,
    stop_groups,
)
from services.common.settings import project_root

CLOSED_UPSTREAM = "http://127.0.0.1:9"  # nothing listens on the discard port: refused at once
TRACING_MODES = ("none", "file", "all", "otlp")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def stop_process(process: subprocess.Popen, timeout: float = 5) -> None:
    """Stop one process started here (SIGTERM, SIGKILL after `timeout`), waiting for it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by every live process of group `pgid` (or by
    the process `pgid` alone when it leads no group)."""
    total = 0
    for pid in group_members(pgid) or [pgid]:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def move_group(pgid: int, cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of every process of group `pgid` (or of the
    process `pgid` alone when it leads no group)."""
    for pid in group_members(pgid) or [pgid]:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)


def pinned(cpu: int | None, command: list[str]) -> list[str]:
    """`command` run on one CPU (taskset), or unchanged when `cpu` is None."""
    if cpu is None or not shutil.which("taskset"):
        return command
    return ["taskset", "-c", str(cpu), *command]


def tracing_environment(mode: str, var: Path, otlp_endpoint: str | None) -> dict[str, str]:
    """The OTEL_* variables of one tracing mode: `none`; `file`, span files with the default
    sampler (every request but catalog reads, those at 10 %); `all`, span files with every
    request sampled (`OTEL_TRACES_SAMPLER=always_on`); `otlp`, the default sampler exporting
    to a local OTLP receiver."""
    if mode not in TRACING_MODES:
        raise ValueError(f"unknown tracing mode {mode!r}; use one of {TRACING_MODES}")
    if mode == "none":
        return {"OTEL_TRACES_EXPORTER": "none"}
    if mode in ("file", "all"):
        return {"OTEL_TRACES_EXPORTER": "file", "BREAKWATER_TRACES_DIR": str(var / "traces"),
                **({"OTEL_TRACES_SAMPLER": "always_on"} if mode == "all" else {})}
    if not otlp_endpoint:
        raise ValueError("tracing mode otlp needs the receiver's endpoint")
    return {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint}


# Each gateway's admin address by its public URL: `/gateway/upstreams` is on the admin port.
ADMIN_URLS: dict[str, str] = {}


def admin_url(gateway: str) -> str:
    """The admin address of the gateway at `gateway` (itself when none is known)."""
    return ADMIN_URLS.get(gateway.rstrip("/"), gateway)


@dataclass
class Server:
    """One started process group and where it answers."""

    name: str
    url: str
    pid: int
    log: Path
    ready_path: str = "/healthz"


class Harness:
    """Starts product, gateway and OTLP-receiver processes in `var` and stops them again."""

    def __init__(self, var: Path, log: Callable[[str], None] = print) -> None:
        self.var = Path(var)
        self.log = log
        self.servers: dict[str, Server] = {}
        self._receiver: subprocess.Popen[str] | None = None
        self.extra: list[subprocess.Popen] = []  # other processes to stop (nginx)
        self.var.mkdir(parents=True, exist_ok=True)
        (self.var / "logs").mkdir(exist_ok=True)
        from services.common.tokens import ensure_keypair

        self.keys = (self.var / "keys" / "token_ed25519.pem",
                     self.var / "keys" / "token_ed25519.pub.pem")
        ensure_keypair(*self.keys)
        self.registry = self.var / "registry.json"  # never written: upstreams are explicit
        self.db_url = databases.database_url(databases.SQLITE, "product", self.var)
        self._migrated = False

    def admin_header(self) -> dict[str, str]:
        """An admin's Authorization header, signed with this harness's own key (catalog writes
        need an admin; the benchmark's product has no auth service beside it)."""
        from services.common.tokens import TokenSigner

        signer = TokenSigner(self.keys[0].read_text(), self.keys[1].read_text(),
                             issuer="breakwater-auth", audience="breakwater")
        return {"Authorization": f"Bearer {signer.issue(1, 'bench@example.com', 'Bench', 'admin')[0]}"}

    def _base_env(self, resilience: bool, tracing: str, otlp: str | None) -> dict[str, str]:
        env = commands.base_environment(self.var, self.keys, self.registry, resilience)
        for key in [k for k in env if k.startswith(("OTEL_", "BREAKWATER_TRACES_"))]:
            del env[key]
        env.update(tracing_environment(tracing, self.var, otlp))
        return env

    def migrate(self) -> None:
        """Create product's database with its migrations (once)."""
        if self._migrated:
            return
        env = commands.migrate_environment(self._base_env(True, "none", None), "product",
                                           self.db_url)
        result = subprocess.run(commands.migrate_command("product"), cwd=project_root(), env=env,
                                capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            raise RuntimeError("product's migrations failed (exit "
                               f"{result.returncode}):\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
        self._migrated = True

    def start_product(self, name: str, *, tracing: str = "none", cpu: int | None = None,
                      otlp: str | None = None, wait: bool = True) -> Server:
        """A product instance (gunicorn gthread 1x8, as the supervisor runs it); `wait=False`
        returns at once (then `wait_ready`)."""
        self.migrate()
        port = free_port()
        env = commands.service_environment(self._base_env(True, tracing, otlp), "product", name,
                                           port, self.db_url, {}, True)
        return self._launch(name, pinned(cpu, commands.service_command("product", port)), env,
                            f"http://127.0.0.1:{port}", "/readyz", wait)

    def start_gateway(self, name: str, product_url: str, *, tracing: str = "none",
                      resilience: bool = True, cpu: int | None = None,
                      otlp: str | None = None, wait: bool = True,
                      extra_env: dict[str, str] | None = None) -> Server:
        """A gateway (`python -m gateway`) routing product to `product_url`;
        `extra_env` sets more of its settings (`GATEWAY_*`)."""
        port, admin_port = free_port(), free_port()
        ADMIN_URLS[f"http://127.0.0.1:{port}"] = f"http://127.0.0.1:{admin_port}"
        env = commands.gateway_environment(self._base_env(resilience, tracing, otlp), port,
                                           self.registry, resilience, admin_port=admin_port)
        env.update({"GATEWAY_UPSTREAM_PRODUCT": product_url, "GATEWAY_INSTANCE_ID": name,
                    **{f"GATEWAY_UPSTREAM_{s}": CLOSED_UPSTREAM for s in ("AUTH", "CART", "ORDER")},
                    **(extra_env or {})})
        return self._launch(name, pinned(cpu, commands.gateway_command()), env,
                            f"http://127.0.0.1:{port}", "/healthz", wait)

    def start_floor(self, name: str, product_url: str, *, cpu: int | None = None,
                    wait: bool = True) -> Server:
        """The least RSGI proxy (`bench.rsgi_floor`) on Granian, in front of `product_url`."""
        port = free_port()
        env = {**os.environ, "BENCH_FLOOR_UPSTREAM": product_url.removeprefix("http://")}
        command = [sys.executable, "-m", "granian", "--interface", "rsgi", "--factory",
                   "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                   "bench.rsgi_floor:make"]
        return self._launch(name, pinned(cpu, command), env, f"http://127.0.0.1:{port}",
                            "/readyz", wait)

    def start_asyncio_floor(self, name: str, product_url: str, *, cpu: int | None = None,
                            wait: bool = True) -> Server:
        """The least Python proxy without Granian (`bench.asyncio_floor`), in front of
        `product_url`."""
        port = free_port()
        command = [sys.executable, "-m", "bench.asyncio_floor", "--port", str(port),
                   "--upstream", product_url.removeprefix("http://")]
        return self._launch(name, pinned(cpu, command), dict(os.environ),
                            f"http://127.0.0.1:{port}", "/readyz", wait)

    def start_receiver(self, cpu: int | None = None, max_seconds: float = 900.0) -> str:
        """The local OTLP/HTTP receiver; its base URL (OTEL_EXPORTER_OTLP_ENDPOINT)."""
        command = pinned(cpu, [sys.executable, "-m", "bench.otlp_receiver", "--port", "0",
                               "--max-seconds", str(max_seconds)])
        self._receiver = subprocess.Popen(command, cwd=project_root(), stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
        line = self._receiver.stdout.readline() if self._receiver.stdout else ""
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"the OTLP receiver did not start (it printed {line!r})")
        return "http://" + line.rsplit(" ", 1)[1].strip()

    def receiver_stats(self, url: str) -> dict[str, int]:
        """Requests, bytes and spans the receiver got so far."""
        return requests.get(f"{url}/stats", timeout=5).json()

    def _launch(self, name: str, command: list[str], env: dict[str, str], url: str,
                ready_path: str, wait: bool) -> Server:
        log = self.var / "logs" / f"{name}.log"
        pid = launch(command, env, log, project_root())
        server = Server(name, url, pid, log, ready_path)
        self.servers[name] = server
        if wait:
            self.wait_ready([server])
        return server

    def wait_ready(self, servers: list[Server], timeout: float = 60.0) -> None:
        """Poll each server's readiness path until all answer 200; RuntimeError (with the
        log's tail) when one exits or the deadline passes."""
        pending = list(servers)
        deadline = time.monotonic() + timeout
        while pending:
            for server in list(pending):
                if not group_alive(server.pid):
                    raise RuntimeError(f"{server.name} exited during start-up; last lines of "
                                       f"{server.log}:\n{log_tail(server.log, 20)}")
                try:
                    if requests.get(server.url + server.ready_path, timeout=1).status_code == 200:
                        pending.remove(server)
                except requests.RequestException:
                    pass
            if pending and time.monotonic() > deadline:
                first = pending[0]
                raise RuntimeError(f"{first.name} was not ready within {timeout:.0f} s; last "
                                   f"lines of {first.log}:\n{log_tail(first.log, 20)}")
            if pending:
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop every process group started here (SIGTERM, then SIGKILL), the extra processes
    (nginx) and the receiver."""
        stop_groups([s.pid for s in self.servers.values()], timeout=10)
        self.servers.clear()
        for process in self.extra:
            stop_process(process)
        self.extra.clear()
        if self._receiver is not None:
            stop_process(self._receiver)
        self._receiver = None
