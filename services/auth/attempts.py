"""Auth's own limits on registration and login, and its cap on concurrent password hashing.

The gateway's limiter sees only its own traffic, in one process's memory; these limits hold
for whoever reaches auth, directly or through any number of gateways, and across auth's
replicas when the storage is shared (`AUTH_RATE_LIMIT_STORAGE=redis://…`; memory otherwise).

- registration: every attempt counts, per client address and per email (an admin's token, as
  the seed sends for its shoppers, lifts both: an operator's bulk work);
- login: failed attempts count, per client address and per account; once either is spent every
  login from that client, or to that account, is answered 429 before any password is hashed;
- hashing: at most `slots` scrypt runs (~32 MiB each) at once; a request waits briefly for a
  slot, then gets 503 with `Retry-After`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from services.common.errors import DependencyUnavailable, RateLimited

log = logging.getLogger("breakwater.auth.attempts")
NAMESPACE = "breakwater-auth"


def parse_limits(setting: str, text: str) -> list[RateLimitItem]:
    """`"5/minute;20/hour"` as limit items; ValueError naming the setting when unreadable."""
    try:
        return list(parse_many(text)) if text.strip() else []
    except ValueError as exc:
        raise ValueError(f"{setting}={text!r} is not a rate limit like '5/minute;20/hour' "
                         f"({exc})") from None


class AttemptLimits:
    """Moving-window limits on registration and login attempts, in memory or Redis."""

    def __init__(self, storage_uri: str, *, register_per_client: str, register_per_account: str,
                 login_failures_per_client: str, login_failures_per_account: str,
                 clock: Callable[[], float] = time.time) -> None:
        try:
            self._storage = storage_from_string(storage_uri)
        except Exception as exc:  # noqa: BLE001 - limits raises several kinds for a bad URI
            raise ValueError(f"AUTH_RATE_LIMIT_STORAGE={storage_uri!r} cannot be used: {exc} "
                             "(use memory:// or redis://host:6379/0)") from None
        self.storage_uri = storage_uri
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._clock = clock
        self.register_client = parse_limits("AUTH_REGISTER_LIMIT_PER_CLIENT", register_per_client)
        self.register_account = parse_limits("AUTH_REGISTER_LIMIT_PER_ACCOUNT", register_per_account)
        self.failures_client = parse_limits("AUTH_LOGIN_FAILURE_LIMIT_PER_CLIENT",
                                            login_failures_per_client)
        self.failures_account = parse_limits("AUTH_LOGIN_FAILURE_LIMIT_PER_ACCOUNT",
                                             login_failures_per_account)

    def register_attempt(self, client: str, email: str) -> None:
        """Count one registration; 429 once the client or the email has spent its limit."""
        self._hit(self.register_client, ("register", "client", client),
                  "too many registrations from this address; wait before trying again")
        self._hit(self.register_account, ("register", "email", email),
                  "too many registrations for this email; wait before trying again")

    def check_login(self, client: str, email: str) -> None:
        """429 when this client or this account has failed too often lately (nothing counted)."""
        for items, keys, message in (
            (self.failures_client, ("login-failed", "client", client),
             "too many failed logins from this address; wait before trying again"),
            (self.failures_account, ("login-failed", "email", email),
             "too many failed logins for this account; wait before trying again"),
        ):
            for item in items:
                if not self._call(lambda i=item, k=keys: self._limiter.test(i, NAMESPACE, *k), True):
                    raise self._limited(item, keys, message)

    def login_failed(self, client: str, email: str) -> None:
        """Count a failed login against the client and the account."""
        for items, keys in ((self.failures_client, ("login-failed", "client", client)),
                            (self.failures_account, ("login-failed", "email", email))):
            for item in items:
                self._call(lambda i=item, k=keys: self._limiter.hit(i, NAMESPACE, *k), True)

    def _hit(self, items: list[RateLimitItem], keys: tuple[str, ...], message: str) -> None:
        for item in items:
            if not self._call(lambda i=item: self._limiter.hit(i, NAMESPACE, *keys), True):
                raise self._limited(item, keys, message)

    def _limited(self, item: RateLimitItem, keys: tuple[str, ...], message: str) -> RateLimited:
        stats = self._call(lambda: self._limiter.get_window_stats(item, NAMESPACE, *keys), None)
        wait = item.get_expiry()
        if stats is not None:
            wait = max(1, math.ceil(stats.reset_time - self._clock()))
        return RateLimited(message, details={"limit": str(item), "retry_after_seconds": wait},
                           retry_after=wait)

    def _call(self, action: Callable[[], object], when_down: object) -> object:
        # A limit store that is down must not take logins down with it: allow, and say so.
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - redis raises its own connection errors
            log.warning("rate limit storage %s failed (%s): the attempt is let through",
                        self.storage_uri, exc)
            return when_down

    def reset(self) -> None:
        """Forget every count (tests, and an operator clearing a lock-out)."""
        self._storage.reset()


class HashingSlots:
    """At most `slots` password hashes at once; a caller waits `wait_seconds`, then 503."""

    def __init__(self, slots: int, wait_seconds: float, retry_after: int = 1) -> None:
        if slots < 1:
            raise ValueError(f"AUTH_MAX_CONCURRENT_PASSWORD_HASHES must be 1 or more, not {slots}")
        self.slots, self.wait_seconds, self.retry_after = slots, wait_seconds, retry_after
        self._semaphore = threading.BoundedSemaphore(slots)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot while hashing."""
        if not self._semaphore.acquire(timeout=self.wait_seconds):
            raise DependencyUnavailable(
                "auth is busy checking other passwords; try again in a moment",
                code="auth_busy", retry_after=self.retry_after,
            )
        try:
            yield
        finally:
            self._semaphore.release()
