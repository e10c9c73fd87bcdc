"""The real local stack the experiment benchmarks run against (through `LocalStack`).

One private var folder and free ports (`port_base=0`), never the default ports; the stack is
restarted only when an experiment asks for different options (resilience, CPU quotas,
environment), and `close()` stops whatever is still running. Seeded shoppers are logged in
once and their tokens (valid an hour, signed with the var folder's own key) reused by every
run, instead of paying auth's password hash for 40-60 logins before each one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Context
from chaos.experiments.stack import LocalStack

# Lines of the experiment runner's log worth showing as progress (the rest goes to the log).
SHOWN = ("== ", "starting the stack", "stack up", "stopping", "seeded", "logged in",
         "hypothesis", "ROLLBACK", "warning", "product replica", "audit:", "hot product",
         "scaling ", "fault on", "fault off")


class BenchStack(LocalStack):
    """A LocalStack that logs its shoppers in once and reuses the tokens."""

    def __init__(self, var_dir: Path, **kwargs: Any) -> None:
        super().__init__(var_dir, port_base=0, **kwargs)
        self._tokens: dict[str, str] = {}

    def seed(self, *, users: int | None = None, force: bool = False,
             log: Callable[[str], None] = print) -> dict[str, Any]:
        """Seed `seed_users` shoppers unless more are asked for. (LocalStack.up seeds with its
        default of 50 users, as `max(50, seed_users)`, so a smaller `seed_users` had no
        effect; each registration costs auth a password hash under its CPU quota.)"""
        return super().seed(users=users or self.seed_users, force=force, log=log)

    def tokens(self, count: int, *, log: Callable[[str], None] = print) -> dict[str, str]:
        """Tokens of `count` seeded shoppers, logging in (straight at auth, as LocalStack
        does) only those not logged in yet."""
        import time

        from loadtests.accounts import accounts_from_seed, issue_tokens

        if len(self._tokens) < count:
            seed = self.seed(users=count, log=log)
            accounts = accounts_from_seed(seed, default_count=count)[:count]
            missing = [a for a in accounts if a.email not in self._tokens]
            began = time.monotonic()
            self._tokens.update(issue_tokens(self.info().auth_url, missing))
            log(f"{len(missing)} more shoppers logged in ({time.monotonic() - began:.1f} s)")
            if not self._tokens:
                raise RuntimeError(f"no seeded account could log in at {self.info().auth_url}; "
                                   "see the auth log in the kept work folder (--keep-work)")
        return dict(list(self._tokens.items())[:count])


class StackPool:
    """Owns the benchmark's one stack: `ensure(options)`, `stack`, `close()`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.var = ctx.work / "stack" / "var"
        self.reports = ctx.work / "reports"
        self.stack = BenchStack(self.var, seed_products=20, seed_users=ctx.settings.seed_users)
        self._saved_env = os.environ.get("BREAKWATER_VAR_DIR")
        os.environ["BREAKWATER_VAR_DIR"] = str(self.var)  # Faults(), reports: this stack only
        self.starts = 0

    def log(self, line: str) -> None:
        """Experiment-runner lines: the important ones as progress."""
        if any(marker in line for marker in SHOWN):
            self.ctx.quiet(line.strip())

    def ensure(self, options: dict[str, Any]) -> BenchStack:
        """A running stack with these options (restarted only when they differ)."""
        if self.stack.ensure(options, log=self.log):
            self.starts += 1
        return self.stack

    def close(self) -> None:
        """Stop the stack if one runs, and restore the environment."""
        try:
            if self.stack.state() is not None:
                self.stack.down(log=self.log)
        finally:
            if self._saved_env is None:
                os.environ.pop("BREAKWATER_VAR_DIR", None)
            else:
                os.environ["BREAKWATER_VAR_DIR"] = self._saved_env


_DEFINITIONS: dict[str, Any] = {}


def definition(name: str) -> Any:
    """Experiment `name` from chaos/experiments/definitions, as read at its first use: one
    run uses one version of each definition even while someone edits the folder."""
    from chaos.experiments.model import DEFINITIONS, DefinitionError, find, load_definition

    if name in _DEFINITIONS:
        return _DEFINITIONS[name]
    path = DEFINITIONS / f"{name}.yaml"
    try:
        experiment = load_definition(path) if path.exists() else find(name)
    except DefinitionError as exc:
        raise RuntimeError(f"{exc}: the benchmark runs the experiment definitions in "
                           "chaos/experiments/definitions; fix or restore the file, or run "
                           "the other benchmarks with --only") from None
    _DEFINITIONS[name] = experiment
    return experiment


def options_for(name: str, resilience: bool | None = None) -> dict[str, Any]:
    """The `stack:` section of experiment `name` (its definition), resilience overridden."""
    options = dict(definition(name).stack)
    if resilience is not None:
        options["resilience"] = resilience
    return options


ONE_STACK = "product-scaling"  # `--quick`: every experiment on this one's stack


def shared_options(ctx: Context, name: str, resilience: bool | None = None) -> dict[str, Any]:
    """The stack an experiment runs on: its own definition's, or in `--quick` (a smoke check
    of the code paths, not a measurement) the scaling experiment's, to start only one."""
    return options_for(ONE_STACK if ctx.settings.one_stack else name, resilience)


def experiment_kwargs(pool: StackPool) -> dict[str, Any]:
    """What every run_experiment call of the benchmarks passes."""
    return {"keep_stack": True, "stack": pool.stack, "reports_root": pool.reports,
            "log": pool.log, "echo": False}
