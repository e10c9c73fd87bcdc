"""`breakwater logs SERVICE`: the last lines of a process's log, or of all replicas of a
service interleaved by time (each line prefixed with its instance), optionally followed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from local_stack.processes import log_tail

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?")


class LogsError(LookupError):
    """No log of that name."""


def log_files(logs_dir: Path, name: str) -> dict[str, Path]:
    """Instance name -> log file for `name` (an instance, or a service: all its replicas)."""
    exact = logs_dir / f"{name}.log"
    if exact.is_file():
        return {name: exact}
    replicas = sorted(logs_dir.glob(f"{name}-*.log"),
                      key=lambda p: (len(p.stem), p.stem))
    replicas = [p for p in replicas if p.stem.removeprefix(f"{name}-").isdigit()]
    if replicas:
        return {p.stem: p for p in replicas}
    known = sorted(p.stem for p in logs_dir.glob("*.log")) if logs_dir.is_dir() else []
    raise LogsError(f"no log for {name!r} in {logs_dir}"
                    + (f" (known: {', '.join(known)})" if known else ""))


def _timestamp(line: str) -> str:
    try:
        record = json.loads(line)
        if isinstance(record, dict) and "ts" in record:
            return str(record["ts"]).replace(" ", "T")
    except ValueError:
        pass
    found = TIMESTAMP.search(line)
    return found.group(0).replace(" ", "T").replace(",", ".") if found else ""


def last_lines(files: dict[str, Path], count: int = 50) -> list[str]:
    """The last `count` lines over all files, in time order, prefixed when there are several."""
    merged: list[tuple[str, int, str]] = []
    for index, (name, path) in enumerate(files.items()):
        previous = ""
        for line in log_tail(path, count).splitlines():
            previous = _timestamp(line) or previous
            merged.append((previous, index, _prefixed(name, line, len(files))))
    merged.sort(key=lambda item: (item[0], item[1]))
    return [text for _, _, text in merged[-count:]]


def follow(files: dict[str, Path], poll: float = 0.2,
           stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """New lines written to any of the files from now on, until `stop()` says so."""
    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in files.items()}
    return _follow(files, offsets, poll, stop)


def _follow(files: dict[str, Path], offsets: dict[str, int], poll: float,
            stop: Callable[[], bool]) -> Iterator[str]:
    partial = dict.fromkeys(files, "")
    while not stop():
        produced = False
        for name, path in files.items():
            try:
                with open(path, "rb") as handle:
                    if path.stat().st_size < offsets[name]:
                        offsets[name] = 0  # truncated by a new `up`
                    handle.seek(offsets[name])
                    chunk = handle.read()
            except OSError:
                continue
            if not chunk:
                continue
            offsets[name] += len(chunk)
            text = partial[name] + chunk.decode(errors="replace")
            *lines, partial[name] = text.split("\n")
            for line in lines:
                produced = True
                yield _prefixed(name, line, len(files))
        if not produced:
            time.sleep(poll)


def _prefixed(name: str, line: str, files: int) -> str:
    return f"{name} | {line}" if files > 1 else line
