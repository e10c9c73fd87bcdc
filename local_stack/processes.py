"""Start the stack's processes in their own process groups and stop them again by group.

Each process is started with `start_new_session=True`, so its pid is also its process group
(and session) id: stopping the group stops a gunicorn master and every worker it forked, even
when the master died first. On Linux, group members are found in /proc (zombies ignored);
elsewhere `killpg(pgid, 0)` answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

PROC = Path("/proc")


def launch(command: list[str], env: Mapping[str, str], log_path: Path, cwd: Path) -> int:
    """Start `command` detached in a new session, output appended to `log_path`; its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )
    _children[process.pid] = process
    return process.pid


# Children of this Python process, so they are reaped (no zombies) when stopped from here,
# and the exit status of those reaped (negative: the signal that ended it).
_children: dict[int, subprocess.Popen[bytes]] = {}
_exits: dict[int, int] = {}


def reap(pid: int) -> None:
    """Collect the exit status of `pid` if it is our child and has exited."""
    process = _children.get(pid)
    if process is not None and process.poll() is not None:
        _exits[pid] = process.returncode
        _children.pop(pid, None)


def exit_status(pid: int) -> int | None:
    """How our child `pid` ended (negative: killed by that signal); None if unknown or running."""
    reap(pid)
    return _exits.get(pid)


def workers_of(pgid: int) -> list[int]:
    """The running members of group `pgid` other than its leader (a gunicorn master's workers)."""
    return [pid for pid in group_members(pgid) if pid != pgid]


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    stat = _stat(pid)
    return int(stat[19]) if stat else None


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2])."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def is_running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    if pid <= 0:
        return False
    reap(pid)
    if PROC.is_dir():
        stat = _stat(pid)
        return stat is not None and stat[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int]:
    """Running (non-zombie) processes of process group `pgid`."""
    if pgid <= 0:
        return []
    reap(pgid)
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat and int(stat[2]) == pgid and stat[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs."""
    return bool(group_members(pgid))


def signal_group(pgid: int, signum: int) -> None:
    """Send `signum` to the whole group, ignoring a group that is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop_groups(pgids: Iterable[int], timeout: float = 10.0, poll: float = 0.05) -> list[int]:
    """SIGTERM every group, wait up to `timeout`, then SIGKILL what is left; the groups that
    had to be killed."""
    pending = [p for p in pgids if p > 0 and group_alive(p)]
    for pgid in pending:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if group_alive(p)]
        if pending:
            time.sleep(poll)
    killed = list(pending)
    for pgid in killed:
        signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if group_alive(p)]
        if pending:
            time.sleep(poll)
    return killed


def log_tail(path: str | Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ("" when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
