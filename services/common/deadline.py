"""Deadlines: a total time budget per request, propagated downstream and shrunk at each hop.

A caller sends its remaining budget in `X-Breakwater-Deadline-Ms` (relative milliseconds, so
clocks need not agree, as gRPC's `grpc-timeout`). The receiving service makes it the deadline
of the request it serves (`services.common.app` does this for every service; the gateway does
it for its routes), and every `ResilientClient` call made while serving that request stops at
it and sends on what is left, minus a margin so the answer can still travel back in time.
A request whose budget is already spent is answered 504 at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from services.common.errors import ApiError, BadRequest

DEADLINE_HEADER = "X-Breakwater-Deadline-Ms"
DEADLINE_ENVIRON_KEY = "HTTP_X_BREAKWATER_DEADLINE_MS"
MAX_BUDGET_SECONDS = 300.0
# What a caller keeps for itself when it passes its budget on: time for the callee's answer
# to travel back and be handled, so the callee gives up (and says why) before the caller does.
MARGIN_SHARE, MARGIN_MIN, MARGIN_MAX = 0.05, 0.01, 0.25

Clock = Callable[[], float]


class DeadlineExceeded(ApiError):
    """504: the request's time budget was spent before the work could be done."""

    status, code = 504, "deadline_exceeded"


class Deadline:
    """A point in (monotonic) time by which an answer is due."""

    __slots__ = ("expires_at", "_clock")

    def __init__(self, expires_at: float, clock: Clock = time.monotonic) -> None:
        self.expires_at, self._clock = expires_at, clock

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        """The deadline `seconds` from now."""
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        """Seconds left (0 once spent)."""
        return max(0.0, self.expires_at - self._clock())

    @property
    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self._clock() >= self.expires_at

    def earliest(self, other: Deadline | None) -> Deadline:
        """This deadline or `other`, whichever comes first."""
        return other if other is not None and other.expires_at < self.expires_at else self

    def header_value(self) -> str:
        """The budget to send downstream: what is left, minus the margin to answer back."""
        left = self.remaining()
        margin = min(MARGIN_MAX, max(MARGIN_MIN, left * MARGIN_SHARE))
        return str(max(0, math.floor((left - margin) * 1000 + 1e-6)))  # no float crumbs lost


def parse_budget(value: str | None, clock: Clock = time.monotonic) -> Deadline | None:
    """The deadline a received header describes (None without one); 400 when it is malformed."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 9:
        raise BadRequest(
            f"{DEADLINE_HEADER} must be a whole number of milliseconds (the time left to answer)",
            code="bad_deadline", details={"header": DEADLINE_HEADER, "value": value[:40]})
    return Deadline.after(min(int(text) / 1000.0, MAX_BUDGET_SECONDS), clock)


def spent(deadline: Deadline) -> DeadlineExceeded:
    """The error for a request that arrived (or got here) with no time left."""
    return DeadlineExceeded("the request's time budget was spent before it could be served; "
                            "retry with a larger budget", retry_after=1,
                            details={"header": DEADLINE_HEADER})


_current: ContextVar[Deadline | None] = ContextVar("breakwater_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the request being served in this context (None outside one)."""
    return _current.get()


def enter(deadline: Deadline | None) -> Token[Deadline | None]:
    """Make `deadline` the current one; give the token to `leave` when the request ends."""
    return _current.set(deadline)


def leave(token: Token[Deadline | None]) -> None:
    """Restore the deadline that was current before `enter`."""
    _current.reset(token)


@contextmanager
def deadline_scope(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Serve a block under `deadline` (the earlier of it and any enclosing one)."""
    enclosing = current_deadline()
    effective = deadline.earliest(enclosing) if deadline is not None else enclosing
    token = enter(effective)
    try:
        yield effective
    finally:
        leave(token)
