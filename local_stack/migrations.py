"""Databases and migrations before the stack starts: every service's schema upgraded at once,
each by its own `flask db upgrade` process, with a log per service."""

from __future__ import annotations

import subprocess
from pathlib import Path

from local_stack import commands, databases
from local_stack.options import StackError, StackOptions, StartupError
from local_stack.processes import log_tail
from local_stack.progress import Progress
from services.common.settings import project_root

MIGRATION_TIMEOUT_S = 180


def migrate_all(options: StackOptions, base_env: dict[str, str], var: Path, logs_dir: Path,
                progress: Progress, *, tail_lines: int) -> None:
    """Create any missing database and run every service's migrations in parallel; a
    `StartupError` with the log's tail names the first that failed or timed out."""
    with progress.step("databases and migrations") as step:
        running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for service in commands.SERVICES:
            url = databases.database_url(options.db, service, var)
            try:
                databases.ensure_database(url)
            except databases.DatabaseError as exc:
                raise StackError(f"{service}: {exc}") from None
            env = commands.migrate_environment(base_env, service, url)
            env.update(options.env.get(service, {}))
            log = logs_dir / f"migrate-{service}.log"
            with open(log, "wb") as handle:
                running[service] = (subprocess.Popen(
                    commands.migrate_command(service), cwd=project_root(), env=env,
                    stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                ), log)
        done = 0
        try:
            for service, (process, log) in running.items():
                try:
                    code = process.wait(timeout=MIGRATION_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    code = None
                if code != 0:
                    why = "timed out" if code is None else f"failed (exit {code})"
                    raise StartupError(f"the migrations of {service} {why}",
                                       f"migrate-{service}", log_tail(log, tail_lines))
                done += 1
                step.update(f"{done}/{len(running)}")
        finally:
            for process, _ in running.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
