"""Locust's own distributed mode on one host: a master and N worker processes.

One Locust process saturates one core; `LoadSpec(workers=N)` makes the run a master (the shape,
the statistics, the CSVs and the HTML report, as in a local run) and N worker processes
(`python -m loadtests.runner --worker HOST:PORT SPEC.json`) that run the users, connected over
Locust's ZeroMQ protocol on 127.0.0.1. Each worker writes its own request log
(`requests.csv.<pid>`, see `loadtests.recorder`); `merge_request_logs` makes them the one
`requests.csv` a local run writes.

Importing this module does not import Locust; the functions that need it import it.
"""

from __future__ import annotations

import csv
import heapq
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MASTER_HOST = "127.0.0.1"
MAX_WORKERS = 64
CONNECT_TIMEOUT_S = 60.0


class WorkerProcesses:
    """The worker processes of one run: started, waited for, their logs kept in the run folder."""

    def __init__(self, spec: dict[str, Any], out: Path, count: int, master_port: int,
                 python: str = sys.executable, cwd: str | None = None) -> None:
        if not 1 <= count <= MAX_WORKERS:
            raise ValueError(f"workers must be 1..{MAX_WORKERS}, got {count}")
        self.spec, self.out, self.count = spec, out, count
        self.master_port, self.python, self.cwd = master_port, python, cwd
        self.children: list[subprocess.Popen[bytes]] = []
        self.ids: list[str] = []

    def start(self) -> WorkerProcesses:
        """Spawn the workers (they inherit this process's environment); returns at once."""
        spec_path = self.out / "worker-spec.json"
        spec_path.write_text(json.dumps(self.spec))
        for index in range(1, self.count + 1):
            with open(self.out / f"locust-worker-{index}.log", "wb") as log:
                self.children.append(subprocess.Popen(
                    [self.python, "-m", "loadtests.runner", "--worker",
                     f"{MASTER_HOST}:{self.master_port}", str(spec_path)],
                    stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd))
        return self

    def wait_connected(self, runner: Any, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Wait until every worker has said hello to the master `runner`."""
        import gevent

        deadline = time.monotonic() + timeout
        while runner.worker_count < self.count:
            for index, child in enumerate(self.children, 1):
                if child.poll() is not None:
                    raise RuntimeError(f"locust worker {index} exited with {child.returncode} "
                                       f"before connecting:\n{self.log_tail(index)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {runner.worker_count} of {self.count} locust workers "
                                   f"connected within {timeout:.0f} s")
            gevent.sleep(0.1)
        self.ids = [client.id for client in runner.clients.all]

    def send_quit(self, runner: Any) -> None:
        """Tell every worker to end. The master's own `quit()` only tells the workers it still
        counts, and it stops counting a worker once that worker reports the test stopped."""
        from locust.rpc import Message

        for worker_id in self.ids:
            runner.server.send_to_client(Message("quit", None, worker_id))

    def wait_exited(self, timeout: float = 20.0) -> None:
        """Wait for the workers to end after the master's quit; stop any that do not."""
        deadline = time.monotonic() + timeout
        for child in self.children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.terminate()
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(timeout=5)

    def log_tail(self, index: int) -> str:
        """The end of worker `index`'s log."""
        try:
            path = self.out / f"locust-worker-{index}.log"
            return path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    @property
    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [child.pid for child in self.children]


def _rows(path: Path) -> Iterator[tuple[float, list[str]]]:
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if row:
                yield float(row[0] or 0), row


def _named_rows(path: Path) -> Iterator[tuple[str, tuple[float, list[str]]]]:
    for item in _rows(path):
        yield path.name, item


def merge_request_logs(target: Path, parts: list[Path]) -> dict[str, int]:
    """Write the rows of every worker's log into `target`; rows per part (by file name). The
    parts are removed once merged."""
    from loadtests.recorder import COLUMNS

    parts = [part for part in parts if part.exists()]
    counts = dict.fromkeys((part.name for part in parts), 0)
    streams = [_named_rows(part) for part in parts]
    with open(target, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        # Streamed, not sorted in memory: a worker writes a row when its request ends, as a
        # local run does, so each part is in nearly start order and a merge keeps that.
        for name, (_, row) in heapq.merge(*streams, key=lambda item: item[1][0]):
            writer.writerow(row)
            counts[name] += 1
    for part in parts:
        part.unlink(missing_ok=True)
    return counts


def run_worker(spec: Any, master: str) -> int:
    """One worker process: the scenario's users, driven by the master at `master` (HOST:PORT)."""
    import locust
    from locust.env import Environment

    from loadtests.runner import user_classes

    host, _, port = master.rpartition(":")
    env = Environment(user_classes=user_classes(spec.scenario), host=spec.host,
                      events=locust.events, stop_timeout=5)
    runner = env.create_worker_runner(host, int(port))
    env.events.init.fire(environment=env, runner=runner, web_ui=None)
    try:
        runner.greenlet.join()
    finally:
        env.events.quitting.fire(environment=env, reverse=True)
    return 0
