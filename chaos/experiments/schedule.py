"""Faults injected and removed at set times, through `chaos.faults.Faults`.

The same calls drive Breakwater's embedded proxy and the real Toxiproxy. `rollback()` always
runs at the end (also on Ctrl-C or an error): every toxic removed, every proxy enabled.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from chaos.experiments.model import FaultStep
from chaos.faults import fault_name


class FaultSchedule:
    """Applies `steps` relative to `started` (a unix time) on a background thread."""

    def __init__(self, steps: Sequence[FaultStep], faults: Any, started: float, *,
                 clock: Callable[[], float] = time.time,
                 log: Callable[[str], None] = lambda _: None,
                 on_change: Callable[[list[dict[str, Any]]], None] = lambda _records: None
                 ) -> None:
        self.steps = list(steps)
        self.faults = faults
        self.started = started
        self.clock = clock
        self.log = log
        self.on_change = on_change  # told each time a fault starts or ends (progress file)
        self.records: list[dict[str, Any]] = [
            {"target": s.target, "kind": s.kind, "label": s.label(), "planned_start": s.at,
             "planned_end": s.until, "start": None, "end": None, "proxies": [], "error": None}
            for s in self.steps]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def actions(self) -> list[tuple[float, str, int]]:
        """(seconds, "apply"|"undo", step index), in order of time."""
        actions = []
        for index, step in enumerate(self.steps):
            actions.append((step.at, "apply", index))
            if step.until is not None:
                actions.append((step.until, "undo", index))
        return sorted(actions, key=lambda a: (a[0], a[1] == "apply"))

    def start(self) -> FaultSchedule:
        self._thread = threading.Thread(target=self.run, daemon=True, name="fault-schedule")
        self._thread.start()
        return self

    def run(self) -> None:
        """Carry out every action at its time (returns early when stopped)."""
        for at, action, index in self.actions():
            delay = self.started + at - self.clock()
            if delay > 0 and self._stop.wait(delay):
                return
            self._do(action, index)

    def _do(self, action: str, index: int) -> None:
        step, record = self.steps[index], self.records[index]
        try:
            if action == "apply":
                record["proxies"] = list(self.faults.apply(step.target, step.kind, **step.params))
                record["start"] = self.clock() - self.started
                if step.until is not None:
                    self._announce(step, record["proxies"])
                self.log(f"fault on: {step.label()} at {record['start']:.1f}s")
            else:
                self.faults.undo(step.target, step.kind, step.params.get("stream", "downstream"))
                record["end"] = self.clock() - self.started
                self.log(f"fault off: {step.label()} at {record['end']:.1f}s")
        except Exception as exc:  # noqa: BLE001 - recorded; the run goes on and rollback cleans
            record["error"] = f"{action}: {type(exc).__name__}: {exc}"
            self.log(f"fault {action} failed: {record['error']}")
        self.on_change([dict(r) for r in self.records])

    def _announce(self, step: FaultStep, proxies: list[str]) -> None:
        """Note in the proxy's event log when the fault ends (watchers show the time left);
        only a note: a proxy without an event log, or a failure here, changes nothing."""
        announce = getattr(self.faults, "announce_until", None)
        if announce is None:
            return
        name = fault_name(step.kind, step.params.get("stream", "downstream"))
        with contextlib.suppress(Exception):
            announce(proxies, name, self.started + float(step.until or 0))

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every action to be carried out; whether it was."""
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, timeout))
            return not self._thread.is_alive()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def rollback(self) -> str | None:
        """Clear every toxic and enable every proxy; the error text if that failed."""
        self.stop()
        now = self.clock() - self.started
        for record in self.records:
            if record["start"] is not None and record["end"] is None:
                record["end"] = now
        self.on_change([dict(r) for r in self.records])
        try:
            self.faults.clear_all()
            return None
        except Exception as exc:  # noqa: BLE001 - reported to the user, never swallowed silently
            return f"{type(exc).__name__}: {exc}"

    def windows(self) -> list[dict[str, Any]]:
        """Applied faults with start/end (seconds from the load's start) for verdicts/plots."""
        return [{"target": r["target"], "kind": r["kind"], "label": r["label"],
                 "start": r["start"], "end": r["end"]}
                for r in self.records if r["start"] is not None]


def windows_from_events(events: Sequence[dict[str, Any]], started: float) -> list[dict[str, Any]]:
    """Fault windows from the proxy's `/events` log (Breakwater's server only).

    A window opens when a proxy is disabled or gets a toxic, and closes when the proxy is
    enabled again, the toxic removed, or the proxy reset.
    """
    open_at: dict[tuple[str, str], tuple[float, str]] = {}
    windows = []

    def close(key: tuple[str, str], t: float) -> None:
        start, kind = open_at.pop(key)
        windows.append({"target": key[0], "kind": kind, "start": start, "end": t})

    for event in sorted(events, key=lambda e: e.get("time", 0)):
        name, proxy = str(event.get("event", "")), str(event.get("proxy", ""))
        t = float(event.get("time", 0)) - started
        toxic = event.get("toxic") if isinstance(event.get("toxic"), dict) else {}
        if name == "proxy_disabled":
            open_at.setdefault((proxy, "down"), (t, "down"))
        elif name == "proxy_enabled" and (proxy, "down") in open_at:
            close((proxy, "down"), t)
        elif name == "toxic_added":
            open_at.setdefault((proxy, str(toxic.get("name"))), (t, str(toxic.get("type"))))
        elif name == "toxic_removed" and (proxy, str(toxic.get("name"))) in open_at:
            close((proxy, str(toxic.get("name"))), t)
        elif name == "proxy_reset":
            for key in [k for k in open_at if k[0] == proxy]:
                close(key, t)
    windows.extend({"target": p, "kind": kind, "start": s, "end": None}
                   for (p, _), (s, kind) in open_at.items())
    return sorted(windows, key=lambda w: w["start"])
