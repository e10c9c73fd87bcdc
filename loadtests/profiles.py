"""Load profiles: how many users run at each second of a test, free of Locust.

A profile answers `tick(elapsed)` with `(users, spawn_rate)` or None when the test is over,
and names its phases (`baseline`, `spike`, …) so reports can shade and compare them. The
Locust `LoadTestShape` classes in `loadtests/shapes.py` wrap these; tests use them directly.

Closed loop (`steady`, `ramp`, `flash-sale`): each user waits for its answer before its next
request, so an overloaded system slows its own load down. Open loop (`rate`): users are paced
to offer a fixed number of requests a second whatever the answers take, so overload shows as
achieved < offered and rising latency; every result reports offered against achieved.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

SHAPES = ("steady", "ramp", "flash-sale", "rate")


@dataclass(frozen=True)
class Phase:
    """A named stretch of a test, in seconds from its start."""

    name: str
    start: float
    end: float

    def contains(self, elapsed: float) -> bool:
        return self.start <= elapsed < self.end


@dataclass(frozen=True)
class Profile:
    """A piecewise user count over time."""

    name: str
    # (phase name, duration s, target users, spawn rate) in order.
    stages: tuple[tuple[str, float, int, float], ...]
    # Open loop only: requests a second the whole user population offers.
    rate: float | None = None
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def duration(self) -> float:
        return sum(stage[1] for stage in self.stages)

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    @property
    def peak_users(self) -> int:
        return max(stage[2] for stage in self.stages)

    def phases(self) -> list[Phase]:
        """The phases with their start and end times."""
        phases, start = [], 0.0
        for name, seconds, _, _ in self.stages:
            phases.append(Phase(name, start, start + seconds))
            start += seconds
        return phases

    def phase_at(self, elapsed: float) -> str | None:
        """The name of the phase running at `elapsed` seconds (None once over)."""
        for phase in self.phases():
            if phase.contains(elapsed):
                return phase.name
        return None

    def tick(self, elapsed: float) -> tuple[int, float] | None:
        """Users wanted and the spawn rate to reach them, or None when the test is over."""
        start = 0.0
        for _, seconds, users, spawn_rate in self.stages:
            if elapsed < start + seconds:
                return users, spawn_rate
            start += seconds
        return None

    def per_user_rate(self) -> float | None:
        """Open loop: the pace of one user (requests a second) at the peak population."""
        if self.rate is None:
            return None
        return self.rate / max(1, self.peak_users)

    def describe(self) -> dict[str, Any]:
        """The profile as plain data for summary.json."""
        return {"shape": self.name, "mode": "open-loop" if self.open_loop else "closed-loop",
                "offered_rate": self.rate, "duration_s": self.duration,
                "peak_users": self.peak_users, "params": self.params,
                "phases": [vars(p) for p in self.phases()]}


def _spawn(users: int, seconds: float) -> float:
    return max(1.0, users / max(seconds, 0.1))


def steady(users: int = 20, duration: float = 60, spawn_rate: float | None = None) -> Profile:
    """`users` from the start for `duration` seconds."""
    _check(users=users, duration=duration)
    rate = spawn_rate or _spawn(users, 2)
    return Profile("steady", (("steady", float(duration), users, rate),),
                   params={"users": users, "duration": duration})


def ramp(start_users: int = 1, end_users: int = 50, duration: float = 60,
         steps: int = 10) -> Profile:
    """From `start_users` to `end_users` in `steps` even steps across `duration`."""
    _check(duration=duration, steps=steps, end_users=end_users)
    step_seconds = duration / steps
    stages = []
    for index in range(steps):
        users = round(start_users + (end_users - start_users) * index / max(1, steps - 1))
        stages.append((f"step-{index + 1}", step_seconds, max(users, 0),
                       _spawn(abs(end_users - start_users) // steps + 1, 1)))
    return Profile("ramp", tuple(stages), params={"start_users": start_users,
                                                  "end_users": end_users, "duration": duration,
                                                  "steps": steps})


def flash_sale(baseline_users: int = 5, peak_users: int = 60, baseline: float = 10,
               jump: float = 3, hold: float = 30, after: float = 10,
               after_users: int | None = None) -> Profile:
    """A quiet baseline, a jump to `peak_users` within `jump` seconds, a hold, then a drop."""
    _check(peak_users=peak_users, hold=hold)
    after_users = baseline_users if after_users is None else after_users
    stages = [
        ("baseline", float(baseline), baseline_users, _spawn(baseline_users, 1)),
        ("spike", float(jump), peak_users, _spawn(peak_users - baseline_users, jump)),
        ("hold", float(hold), peak_users, _spawn(peak_users, 1)),
        ("after", float(after), after_users, _spawn(peak_users, 1)),
    ]
    stages = [stage for stage in stages if stage[1] > 0]
    return Profile("flash-sale", tuple(stages), params={
        "baseline_users": baseline_users, "peak_users": peak_users, "baseline": baseline,
        "jump": jump, "hold": hold, "after": after, "after_users": after_users})


def constant_rate(rate: float = 50, duration: float = 60, users: int | None = None,
                  warmup: float = 2) -> Profile:
    """Open loop: `rate` requests a second offered by enough paced users.

    Users default to 1 per 2 req/s (at least 10): each has 2 s of budget a request before
    the population can no longer keep the pace, which then shows as a shortfall.
    """
    _check(rate=rate, duration=duration)
    users = users or max(10, math.ceil(rate / 2))
    stages = []
    if warmup > 0:
        stages.append(("warmup", float(warmup), users, _spawn(users, warmup)))
    stages.append(("steady", float(duration), users, _spawn(users, 1)))
    return Profile("rate", tuple(stages), rate=float(rate),
                   params={"rate": rate, "users": users, "duration": duration, "warmup": warmup})


def build_profile(shape: str, *, users: int | None = None, duration: float | None = None,
                  spawn_rate: float | None = None, rate: float | None = None,
                  scale: float = 1.0, **params: Any) -> Profile:
    """A profile by name with the CLI's options; `scale` stretches every duration."""
    if rate is not None and shape != "rate":
        shape = "rate"
    if shape == "steady":
        return steady(users or 20, (duration or 60) * scale, spawn_rate)
    if shape == "ramp":
        return ramp(params.get("start_users", 1), users or params.get("end_users", 50),
                    (duration or 60) * scale, params.get("steps", 10))
    if shape == "flash-sale":
        timing = {key: params[key] * scale for key in ("baseline", "jump", "hold", "after")
                  if key in params}
        if duration is not None and "hold" not in params:
            fixed = sum(timing.get(k, d * scale) for k, d in
                        (("baseline", 10), ("jump", 3), ("after", 10)))
            timing["hold"] = max(1.0, duration * scale - fixed)
        return flash_sale(params.get("baseline_users", 5), users or params.get("peak_users", 60),
                          **{k: timing.get(k, d * scale) for k, d in
                             (("baseline", 10), ("jump", 3), ("hold", 30), ("after", 10))},
                          after_users=params.get("after_users"))
    if shape == "rate":
        if rate is None:
            raise ValueError("the rate shape needs --rate RPS")
        return constant_rate(rate, (duration or 60) * scale, users,
                             params.get("warmup", 2) * scale)
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|h|m|s)?")
DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds from `90`, `90s`, `2m`, `1m30s`, `500ms` or `1h`; ValueError otherwise."""
    if isinstance(text, int | float):
        return float(text)
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned:
        raise ValueError("empty duration (use e.g. 60s, 2m, 1m30s, 500ms)")
    parts = list(DURATION_PART.finditer(cleaned))
    if "".join(p.group(0) for p in parts) != cleaned or any(
            p.group(2) is None for p in parts[:-1]):
        raise ValueError(f"not a duration: {text!r} (use e.g. 60s, 2m, 1m30s, 500ms)")
    return sum(float(p.group(1)) * DURATION_UNITS[p.group(2)] for p in parts)


def _check(**values: float) -> None:
    for key, value in values.items():
        if value <= 0:
            raise ValueError(f"{key} must be greater than 0, got {value}")
