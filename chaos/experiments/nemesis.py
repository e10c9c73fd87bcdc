"""The nemesis: a seeded random schedule of crashes and network faults on checkout.

    schedule = plan_nemesis(seed=7, params=NemesisParams(duration=40))
    schedule.steps        # FaultSteps, in time order, for `FaultSchedule`
    schedule.describe()   # one line a fault, printed and kept in the report

A schedule is a pure function of the seed and the parameters (Python's Mersenne Twister,
stable across platforms and versions for integer seeds): the same seed replays exactly the
same faults at the same times. It covers every link and service of checkout —
gateway → order, order → product, order → cart — with:

- `kill_worker`: SIGKILL a gunicorn worker of the service (its master forks another);
- `kill_instance`: SIGKILL a whole instance (the keeper restarts it, with backoff);
- `timeout` on the reply stream: requests arrive and are served, replies never come back;
- `reset_peer` on the reply stream: the connection is reset as the reply starts;
- `latency` beyond the callers' read timeouts, on the reply stream;
- `down`: a short outage (the proxy refuses connections).

A network fault on a service's proxies hits every caller of that service (local mode has one
listener per instance, like Toxiproxy between containers): `product` is order → product (and
cart → product), `cart` is order → cart, `order` is gateway → order. Windows on one service
never overlap (one toxic of a kind per proxy); different services' windows may.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.experiments.model import FaultStep

CRASHES = ("kill_worker", "kill_instance")
LINK_FAULTS = ("timeout", "reset_peer", "latency", "down")
# What each service's proxies stand for in the schedule's printout.
LINKS = {"order": "gateway → order", "product": "order → product", "cart": "order → cart"}


class ScheduleError(ValueError):
    """Parameters no schedule can satisfy; the message says which."""


@dataclass(frozen=True)
class NemesisParams:
    """What a schedule is drawn from (all times in seconds from the start of the sale)."""

    duration: float = 40.0            # faults happen in [start, duration)
    start: float = 2.0                # the sale runs fault-free this long first
    targets: tuple[str, ...] = ("order", "product", "cart")
    crashes_per_minute: float = 24.0  # SIGKILLs over all targets
    instance_share: float = 0.4       # of crashes, the share that kill a whole instance
    window: tuple[float, float] = (1.5, 5.0)   # length of a network fault
    gap: tuple[float, float] = (1.0, 5.0)      # quiet time between two on one service
    # Share of connections a network fault hits (Toxiproxy's toxicity), drawn per fault:
    # some calls of a checkout pass, the next one loses its reply.
    toxicity: tuple[float, float] = (0.3, 1.0)
    # Latency added beyond the callers' read timeouts (order's are 2-3 s, the gateway's
    # budget for a checkout longer still), in ms.
    latency_ms: tuple[int, int] = (3500, 6000)
    link_faults: tuple[str, ...] = LINK_FAULTS

    def validate(self) -> None:
        """ScheduleError for parameters that make no schedule."""
        if not 0 <= self.start < self.duration:
            raise ScheduleError(f"the faults need 0 <= start < duration, got {self.start} and "
                                f"{self.duration}")
        for name, (low, high) in (("window", self.window), ("gap", self.gap),
                                  ("latency_ms", self.latency_ms), ("toxicity", self.toxicity)):
            if not 0 < low <= high:
                raise ScheduleError(f"{name} must be (low, high) with 0 < low <= high")
        if not self.targets:
            raise ScheduleError("a schedule needs at least one target service")
        unknown = set(self.link_faults) - set(LINK_FAULTS)
        if unknown:
            raise ScheduleError(f"unknown link fault(s) {', '.join(sorted(unknown))}; known: "
                                f"{', '.join(LINK_FAULTS)}")
        if self.crashes_per_minute < 0 or not 0 <= self.instance_share <= 1:
            raise ScheduleError("crashes_per_minute must be >= 0, instance_share in [0, 1]")
        if self.toxicity[1] > 1:
            raise ScheduleError("toxicity is a share of connections: at most 1")

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NemesisParams:
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
                 if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class NemesisSchedule:
    """The faults of one seed, in time order."""

    seed: int
    params: NemesisParams
    steps: tuple[FaultStep, ...] = field(default_factory=tuple)

    @property
    def end(self) -> float:
        """When the last fault is over (seconds from the start of the sale)."""
        return max((s.until if s.until is not None else s.at for s in self.steps), default=0.0)

    def describe(self) -> list[str]:
        """One line a fault: `  12.3 s  order → product  timeout (replies dropped) for 2.1 s`."""
        return [describe_step(step) for step in self.steps]

    def to_json(self) -> dict[str, Any]:
        """The schedule as saved in summary.json (enough to check a replay against)."""
        return {"seed": self.seed, "params": self.params.to_json(),
                "generator": "random.Random(seed), Mersenne Twister",
                "steps": [{"at": s.at, "until": s.until, "target": s.target, "kind": s.kind,
                           **({"params": s.params} if s.params else {})} for s in self.steps]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NemesisSchedule:
        steps = tuple(FaultStep(s["target"], s["kind"], float(s["at"]),
                                None if s.get("until") is None else float(s["until"]),
                                dict(s.get("params") or {})) for s in data["steps"])
        return cls(int(data["seed"]), NemesisParams.from_json(data["params"]), steps)


def describe_step(step: FaultStep) -> str:
    """A fault in words, with its link."""
    where = LINKS.get(step.target, step.target)
    if step.kind in CRASHES:
        what = "SIGKILL a worker of" if step.kind == "kill_worker" else "SIGKILL the instance of"
        return f"{step.at:6.1f} s  {what} {step.target}"
    words = {"timeout": "replies dropped (timeout toxic)", "reset_peer": "connections reset",
             "down": "outage (proxy down)",
             "latency": f"latency {step.params.get('ms')} ms beyond the read timeout"}[step.kind]
    length = (step.until or step.at) - step.at
    share = step.params.get("toxicity")
    hits = f", {share:.0%} of connections" if share is not None and share < 1 else ""
    return f"{step.at:6.1f} s  {where:17}  {words} for {length:.1f} s{hits}"


def plan_nemesis(seed: int, params: NemesisParams | None = None) -> NemesisSchedule:
    """The schedule of `seed`: the same seed and parameters give the same schedule."""
    params = params or NemesisParams()
    params.validate()
    rng = random.Random(int(seed))
    steps: list[FaultStep] = []
    # Network faults: each service its own sequence of windows separated by quiet gaps.
    for target in params.targets:
        t = params.start + rng.uniform(0, params.gap[1])
        while True:
            length = round(rng.uniform(*params.window), 1)
            if t + length > params.duration:
                break
            kind = rng.choice(params.link_faults)
            steps.append(_link_fault(target, kind, round(t, 1), round(t + length, 1), rng,
                                     params))
            t += length + rng.uniform(*params.gap)
    # Crashes: a fixed number for the length, at uniform times, on random services.
    span = params.duration - params.start
    for _ in range(round(params.crashes_per_minute * span / 60.0)):
        at = round(rng.uniform(params.start, params.duration), 1)
        kind = "kill_instance" if rng.random() < params.instance_share else "kill_worker"
        steps.append(FaultStep(rng.choice(params.targets), kind, at))
    steps.sort(key=lambda s: (s.at, s.target, s.kind))
    return NemesisSchedule(int(seed), params, tuple(steps))


def _link_fault(target: str, kind: str, at: float, until: float, rng: random.Random,
                params: NemesisParams) -> FaultStep:
    # On the reply stream (downstream): the request reaches the service and is served, and
    # the caller never hears the answer — the case that leaves a checkout uncertain.
    if kind == "down":
        return FaultStep(target, kind, at, until, {})
    details: dict[str, Any] = {"ms": 0, "stream": "downstream"}
    if kind == "latency":
        details["ms"] = rng.randint(*params.latency_ms)
    details["toxicity"] = round(rng.uniform(*params.toxicity), 2)
    return FaultStep(target, kind, at, until, details)
