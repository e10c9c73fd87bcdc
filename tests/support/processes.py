"""Start real service processes on free loopback ports and stop them again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the range outgoing
    connections take their ports from (`local_stack.ports.free_port`)."""
    from local_stack.ports import free_port as outside_ephemeral

    return outside_ephemeral()


def wait_until(condition: Callable[[], object], timeout: float = 15.0, interval: float = 0.02,
               message: str = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - a poll keeps trying until the deadline
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{message} not met within {timeout}s (last error: {last_error})")


class RunningProcess:
    """A child process with its log file, stopped by `stop()` (SIGTERM, then SIGKILL)."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path, url: str) -> None:
        self.url = url
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the process's output, for failure messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_healthy(self, path: str = "/healthz", timeout: float = 30.0) -> None:
        """Block until GET `path` answers 200, or fail with the process's log."""

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited with {self.proc.returncode}:\n{self.log_tail()}")
            return requests.get(self.url + path, timeout=1).status_code == 200

        try:
            wait_until(healthy, timeout=timeout, message=f"{self.url}{path} healthy")
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n--- log ---\n{self.log_tail()}") from exc

    def stop(self) -> None:
        """Terminate the process group gracefully, forcibly after 5 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


def start_service(name: str, env: Mapping[str, str], tmp_path: Path, port: int | None = None) -> RunningProcess:
    """Run `python -m services.<name> --port P` and wait until it is healthy."""
    port = port or free_port()
    process = RunningProcess(
        [sys.executable, "-m", f"services.{name}", "--host", "127.0.0.1", "--port", str(port)],
        env, tmp_path / f"{name}-{port}.log", f"http://127.0.0.1:{port}",
    )
    process.wait_healthy()
    return process
