"""The one place where the library's errors become `breakwater <command>: error: …` and exit 2.

A command raises whatever the library raises; `breakwater.cli.main` asks `user_error(exc)`
whether it is a mistake a user can fix (bad input, nothing running, a file or a server that
cannot be reached) and, if so, prints one line with what to do instead of a traceback.
Anything else is a bug and keeps its traceback.

Classes are named by module and not imported here: the CLI imports heavy packages only when
a command runs, and an exception can only be an instance of a class whose module is loaded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

EXIT_USAGE = 2


@dataclass(frozen=True)
class UserErrorKind:
    """A library exception class that means "the user can fix this", and what to suggest."""

    module: str
    name: str
    hint: str = ""

    def matches(self, error: BaseException) -> bool:
        """Whether `error` is an instance of this class (False while its module is unloaded)."""
        module = sys.modules.get(self.module)
        kind = getattr(module, self.name, None) if module is not None else None
        return isinstance(kind, type) and isinstance(error, kind)


# The most specific first: the first match gives the hint.
USER_ERRORS: tuple[UserErrorKind, ...] = (
    UserErrorKind("local_stack.options", "StackRunning",
                  "`breakwater status` shows it; `breakwater down` stops it"),
    UserErrorKind("local_stack.options", "StackError", "`breakwater status` shows what runs"),
    UserErrorKind("local_stack.state", "StateError"),
    UserErrorKind("local_stack.seed", "SeedError", "is the stack up? `breakwater status`"),
    UserErrorKind("local_stack.databases", "DatabaseError"),
    UserErrorKind("local_stack.logs", "LogsError", "`breakwater status` lists the instances"),
    UserErrorKind("chaos.client", "UnreachableError"),
    UserErrorKind("chaos.faults", "UnknownServiceError", "`breakwater chaos list` shows them"),
    UserErrorKind("chaos.client", "ToxiproxyError"),
    UserErrorKind("chaos.experiments.model", "DefinitionError",
                  "`breakwater experiment list` shows the experiments"),
    UserErrorKind("chaos.reports.runs", "RunNotFound", "`breakwater report list` shows the runs"),
    UserErrorKind("observability.spans", "TraceNotFound",
                  "`breakwater traces list` shows the traces there are"),
    UserErrorKind("observability.spans", "AmbiguousTraceId", "give more digits of the id"),
    UserErrorKind("observability.settings", "TracingConfigError"),
    UserErrorKind("services.common.settings", "SettingsError"),
    UserErrorKind("urllib.error", "URLError", "is the server at that address running?"),
    UserErrorKind("requests.exceptions", "ConnectionError",
                  "is the stack up? `breakwater status` says"),
    # Validation across the library raises ValueError with a message naming the input.
    UserErrorKind("builtins", "ValueError"),
    # A file that cannot be read or written, a server that does not answer.
    UserErrorKind("builtins", "OSError"),
)


def user_error(error: BaseException) -> UserErrorKind | None:
    """The kind of user error `error` is, or None when it is a bug (keep the traceback)."""
    return next((kind for kind in USER_ERRORS if kind.matches(error)), None)


def format_error(prog: str, error: BaseException, kind: UserErrorKind | None = None) -> str:
    """`breakwater load: error: not a duration: '5x' (…)`: the message's first line with the
    hint; further lines of the message (a log's tail) follow as they are."""
    first, *rest = str(error).strip().splitlines() or [type(error).__name__]
    hint = kind.hint if kind is not None else ""
    return "\n".join([f"{prog}: error: {first}" + (f" ({hint})" if hint else ""), *rest])
