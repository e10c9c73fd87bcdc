"""wrk (Debian's package), the load generator of every throughput window.

`ensure_wrk()` installs it with apt-get when it is missing (as root) or says how to;
`run_wrk(port, path, connections=16, seconds=3)` drives 127.0.0.1 and parses wrk's report
into the same `LoadResult` the one-connection client returns.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from bench.loadclient import LoadResult

NAME = "wrk 4.1 (closed loop)"


class WrkMissing(RuntimeError):
    """wrk is not installed and could not be installed here."""


def ensure_wrk(log: object = print) -> str:
    """The path of `wrk`, installing Debian's package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise WrkMissing("wrk is not installed: run `sudo apt-get install -y wrk` "
                         "(Debian/Ubuntu) and start the benchmark again")
    if callable(log):
        log("  installing wrk (apt-get install -y wrk)")
    done = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True,
                          text=True, check=False)
    found = shutil.which("wrk")
    if done.returncode != 0 or not found:
        raise WrkMissing("`apt-get install -y wrk` failed: "
                         f"{(done.stderr or done.stdout).strip()[-300:]}")
    return found


def to_ms(text: str) -> float | None:
    """wrk's `635.00us` / `1.23ms` / `2.01s` / `1.5m` as milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not found:
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[found.group(2)]
    return float(found.group(1)) * scale


def parse(output: str, connections: int, seconds: float) -> LoadResult:
    """A wrk `--latency` report as a LoadResult (percentiles only: wrk keeps no samples)."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", output)
    if not rate or not total:
        raise ValueError(f"not a wrk report: {output[-300:]!r}")
    requests = int(total.group(1))
    percentiles = {q: to_ms(v) for q, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", output, re.M)}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket:
        errors += sum(int(x) for x in socket.groups())
    measured = (to_ms(total.group(2)) or seconds * 1000.0) / 1000.0
    return LoadResult(connections, measured, requests, max(0, requests - errors), errors,
                      float(rate.group(1)), percentiles.get("50"), percentiles.get("90"),
                      percentiles.get("99"), {})


def run_wrk(port: int, path: str, *, connections: int, seconds: float,
            threads: int | None = None, host: str = "127.0.0.1") -> LoadResult:
    """A closed-loop window of whole seconds (at least 1) against `host:port` + `path`."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"benchmarks only drive loopback, not {host!r}")
    whole = max(1, round(seconds))
    threads = threads or max(1, min(2, connections))
    command = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{whole}s", "--latency",
               f"http://{host}:{port}{path}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=whole + 30,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return parse(done.stdout, connections, whole)
