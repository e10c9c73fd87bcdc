"""Faults set from the page: validated requests, carried out through `chaos.faults.Faults`.

A time-boxed fault is undone by a timer in the console and its end is noted in the fault
proxy's event log (`Faults.announce_until`), so every watcher shows the time left. Adding or
clearing a fault by hand cancels the timers it supersedes, so a stale timer never removes a
fault set later.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos.client import BadRequestError, ToxiproxyError, UnreachableError
from chaos.faults import Faults, UnknownServiceError, fault_name

MAX_SECONDS = 3600.0
BIG = 10**9
# Fault kind -> its parameters: (lowest, highest, required).
KINDS: dict[str, dict[str, tuple[int, int, bool]]] = {
    "down": {},
    "latency": {"ms": (0, 600_000, True), "jitter": (0, 600_000, False)},
    "timeout": {"ms": (0, 600_000, False)},
    "reset_peer": {"ms": (0, 600_000, False)},
    "bandwidth": {"kbps": (1, BIG, True)},
    "slicer": {"average_size": (1, BIG, False), "size_variation": (0, BIG, False),
               "delay_us": (0, BIG, False)},
    "slow_close": {"ms": (0, 600_000, True)},
    "limit_data": {"nbytes": (0, BIG, True)},
}
TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class FaultRequestError(ValueError):
    """A request the console refuses or the fault proxy could not carry out."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_fault") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class FaultRequest:
    """One fault to add: on `target` (a service or one instance), possibly time-boxed."""

    target: str
    kind: str
    params: dict[str, int] = field(default_factory=dict)
    stream: str = "downstream"
    toxicity: float = 1.0
    seconds: float | None = None

    @property
    def name(self) -> str:
        """The fault's name on each proxy (`down`, `latency_downstream`)."""
        return fault_name(self.kind, self.stream)


def _number(body: Mapping[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FaultRequestError(f"{key} must be a number")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise FaultRequestError(f"{key} must be a number, not {value!r}") from None
    if kind is int and isinstance(value, float) and value != int(value):
        raise FaultRequestError(f"{key} must be a whole number")
    return number


def parse_target(body: Any) -> str:
    """The `target` of a request body: a proxy or service name."""
    if not isinstance(body, Mapping):
        raise FaultRequestError("send a JSON object")
    target = body.get("target")
    if not isinstance(target, str) or not TARGET.fullmatch(target):
        raise FaultRequestError("target must name a service or an instance (cart, product-2)")
    return target


def parse_fault_request(body: Any) -> FaultRequest:
    """A FaultRequest from the page's JSON; FaultRequestError naming the bad field."""
    target = parse_target(body)
    kind = str(body.get("kind", "")).replace("-", "_")
    if kind not in KINDS:
        raise FaultRequestError(f"kind must be one of {', '.join(KINDS)}")
    params: dict[str, int] = {}
    for key, (lowest, highest, required) in KINDS[kind].items():
        if body.get(key) in (None, ""):
            if required:
                raise FaultRequestError(f"{kind} needs {key}")
            continue
        value = _number(body, key, int)
        if not lowest <= value <= highest:
            raise FaultRequestError(f"{key} must be between {lowest} and {highest}")
        params[key] = value
    unknown = set(body) - set(KINDS[kind]) - {"target", "kind", "stream", "toxicity", "seconds"}
    if unknown:
        raise FaultRequestError(f"{kind} takes no {', '.join(sorted(unknown))}")
    stream = body.get("stream") or "downstream"
    if stream not in ("upstream", "downstream"):
        raise FaultRequestError("stream must be upstream or downstream")
    toxicity = 1.0 if body.get("toxicity") in (None, "") else _number(body, "toxicity", float)
    if not 0.0 <= toxicity <= 1.0:
        raise FaultRequestError("toxicity must be between 0 and 1")
    seconds = None if body.get("seconds") in (None, "", 0) else _number(body, "seconds", float)
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:
        raise FaultRequestError(f"seconds must be more than 0 and at most {MAX_SECONDS:g}")
    return FaultRequest(target, kind, params, stream, toxicity, seconds)


@dataclass
class _Timed:
    request: FaultRequest
    proxies: list[str]
    until: float
    timer: Any


class FaultControls:
    """Adds, clears and time-boxes faults; keeps the timers of time-boxed ones."""

    def __init__(self, faults: Faults, clock: Callable[[], float] = time.time,
                 timer: Callable[..., Any] = threading.Timer) -> None:
        self.faults = faults
        self.clock = clock
        self.timer = timer
        self._timed: list[_Timed] = []
        self._lock = threading.Lock()

    def add(self, request: FaultRequest) -> dict[str, Any]:
        """Apply the fault; with `seconds`, undo it then. What was done."""
        params: dict[str, Any] = dict(request.params)
        if request.kind != "down":
            params.update(stream=request.stream, toxicity=request.toxicity)
        with _translated():
            proxies = list(self.faults.apply(request.target, request.kind, **params))
        self._cancel(lambda t: t.request.name == request.name and set(t.proxies) & set(proxies))
        until = None
        if request.seconds is not None:
            until = self.clock() + request.seconds
            timer = self.timer(request.seconds, self._expire, args=(request,))
            timer.daemon = True
            with self._lock:
                self._timed.append(_Timed(request, proxies, until, timer))
            timer.start()
            # Only a note for other watchers: the timer above removes the fault regardless.
            with contextlib.suppress(ToxiproxyError):
                self.faults.announce_until(proxies, request.name, until)
        return {"proxies": proxies, "fault": request.name, "until": until}

    def clear(self, target: str) -> list[str]:
        """Every fault of `target` removed and its proxies enabled; its timers cancelled."""
        with _translated():
            proxies = self.faults.clear(target)
        self._cancel(lambda t: bool(set(t.proxies) & set(proxies)))
        return proxies

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed, every timer cancelled."""
        with _translated():
            self.faults.clear_all()
        self._cancel(lambda _t: True)

    def deadlines(self) -> dict[tuple[str, str], float]:
        """(proxy, fault name) -> the unix time the console will remove it."""
        with self._lock:
            return {(proxy, t.request.name): t.until for t in self._timed for proxy in t.proxies}

    def stop(self) -> None:
        """Cancel every timer (the faults stay as they are)."""
        self._cancel(lambda _t: True)

    def _expire(self, request: FaultRequest) -> None:
        with self._lock:
            mine = [t for t in self._timed if t.request is request]
            if not mine:
                return  # cancelled meanwhile
            self._timed = [t for t in self._timed if t.request is not request]
        # A proxy that is gone or unreachable has nothing left to undo that anyone could reach.
        with contextlib.suppress(ToxiproxyError):
            self.faults.undo(request.target, request.kind, request.stream)

    def _cancel(self, matches: Callable[[_Timed], bool]) -> None:
        with self._lock:
            gone = [t for t in self._timed if matches(t)]
            self._timed = [t for t in self._timed if not matches(t)]
        for item in gone:
            item.timer.cancel()


class _translated:
    """Turns the fault library's errors into FaultRequestErrors with an HTTP status."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, trace: Any) -> bool:
        if isinstance(error, UnknownServiceError):
            raise FaultRequestError(str(error), 404, "unknown_target") from None
        if isinstance(error, UnreachableError):
            raise FaultRequestError(str(error), 502, "fault_proxy_unreachable") from None
        if isinstance(error, BadRequestError | ValueError) and \
                not isinstance(error, FaultRequestError):
            raise FaultRequestError(str(error), 400) from None
        if isinstance(error, ToxiproxyError):
            raise FaultRequestError(str(error), 502, "fault_proxy_error") from None
        return False
