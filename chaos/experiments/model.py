"""Experiment definitions: YAML files a person can read, loaded and validated into dataclasses.

    name: cart-outage
    version: 1
    stack: {resilience: true, product_replicas: 1}
    load: {scenario: mixed, shape: steady, users: 24, duration: 40}
    windows: {baseline: [4, 14], fault: [14, 28], recovery: [34, 40]}
    faults: [{target: cart, kind: down, at: 14, until: 28}]
    probes: [{kind: gateway_upstreams, every: 0.25}]
    hypothesis: [{check: error_rate, groups: [catalog], window: fault, max: 0}, ...]

Times are seconds from the start of the load and are all multiplied by `--duration-scale`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFINITIONS = Path(__file__).resolve().parent / "definitions"

CHECKS = {
    # check: (required keys, optional keys)
    "error_rate": ({"groups", "window", "max"}, {"after_breaker_open"}),
    "latency": ({"groups", "window"}, {"percentile", "max_ms", "max_vs_baseline", "baseline",
                                       "slack_ms", "after_breaker_open", "min_samples"}),
    "throughput": ({"groups", "window"}, {"min_rps", "min_vs_baseline", "baseline"}),
    "breaker_opens_within": ({"upstream", "seconds"}, {"fault"}),
    "breaker_closes_within": ({"upstream", "seconds"}, {"fault", "plus_reset_timeout"}),
    "audit": ({"key"}, {"equals", "max", "min", "equals_key"}),
}
PROBES = {"gateway_upstreams", "product_stock", "orders"}
FAULT_KINDS = {"down", "latency", "timeout", "reset_peer", "bandwidth", "slicer", "slow_close",
               "limit_data"}
TIMED_CHECK_KEYS = ("seconds",)


class DefinitionError(ValueError):
    """A definition that cannot run; the message says which field and why."""


@dataclass(frozen=True)
class FaultStep:
    """A fault on a service's proxies from `at` to `until` seconds (None: to the end)."""

    target: str
    kind: str
    at: float
    until: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        details = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.target} {self.kind}" + (f" ({details})" if details else "")


@dataclass(frozen=True)
class Probe:
    """Something sampled during the run every `every` seconds."""

    kind: str
    every: float = 0.5
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One clause of the steady-state hypothesis."""

    name: str
    check: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Experiment:
    """A named, versioned experiment."""

    name: str
    version: int
    description: str
    stack: dict[str, Any]
    load: dict[str, Any]
    windows: dict[str, tuple[float, float]]
    faults: tuple[FaultStep, ...]
    probes: tuple[Probe, ...]
    hypothesis: tuple[Check, ...]
    kind: str = "standard"  # "scaling" and "integrity" add their own steps
    options: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""

    @property
    def duration(self) -> float:
        return float(self.load.get("duration", 60))

    def scaled(self, factor: float) -> Experiment:
        """The experiment with every time multiplied by `factor`."""
        if factor == 1.0:
            return self
        load = dict(self.load)
        for key in ("duration", "baseline", "jump", "hold", "after", "warmup"):
            if key in load:
                load[key] = load[key] * factor
        return dataclasses.replace(
            self, load=load,
            windows={k: (a * factor, b * factor) for k, (a, b) in self.windows.items()},
            faults=tuple(dataclasses.replace(f, at=f.at * factor,
                                             until=None if f.until is None else f.until * factor)
                         for f in self.faults))

    def variant(self, name: str | None) -> Experiment:
        """The experiment with a named variant's overrides applied (faults, load, stack)."""
        if not name:
            return self
        if name not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise DefinitionError(f"{self.name} has no variant {name!r} (variants: {known})")
        document = {**self.to_document(), **self.variants[name], "variants": {}}
        document["name"] = f"{self.name}.{name}"
        return parse(document, self.source)

    def to_document(self) -> dict[str, Any]:
        """Back to plain data (for summary.json and variants)."""
        return {
            "name": self.name, "version": self.version, "description": self.description,
            "kind": self.kind, "stack": self.stack, "load": self.load,
            "windows": {k: list(v) for k, v in self.windows.items()},
            "faults": [{"target": f.target, "kind": f.kind, "at": f.at, "until": f.until,
                        **({"params": f.params} if f.params else {})} for f in self.faults],
            "probes": [{"kind": p.kind, "every": p.every, **p.params} for p in self.probes],
            "hypothesis": [{"name": c.name, "check": c.check, **c.params}
                           for c in self.hypothesis],
            "options": self.options, "variants": self.variants,
        }


def _require(document: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in document:
        raise DefinitionError(f"{where}: missing `{key}`")
    value = document[key]
    if not isinstance(value, kind):
        raise DefinitionError(f"{where}: `{key}` must be a {kind.__name__}, not {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionError(f"{where} must be a number, not {value!r}")
    return float(value)


def parse(document: Any, source: str = "<memory>") -> Experiment:
    """Validate a definition document and build the Experiment; DefinitionError otherwise."""
    if not isinstance(document, dict):
        raise DefinitionError(f"{source}: a definition is a mapping")
    name = _require(document, "name", str, source)
    where = f"{source} ({name})"
    version = _require(document, "version", int, where)
    load = dict(_require(document, "load", dict, where))
    if "duration" not in load:
        raise DefinitionError(f"{where}: load needs a `duration` (seconds)")
    duration = _number(load["duration"], f"{where}: load.duration")
    windows = {}
    for key, value in (document.get("windows") or {}).items():
        if not (isinstance(value, list | tuple) and len(value) == 2):
            raise DefinitionError(f"{where}: window {key} must be [start, end]")
        start, end = (_number(v, f"{where}: window {key}") for v in value)
        if not 0 <= start < end:
            raise DefinitionError(f"{where}: window {key} must have 0 <= start < end")
        windows[key] = (start, end)
    faults = []
    for index, item in enumerate(document.get("faults") or []):
        spot = f"{where}: faults[{index}]"
        if not isinstance(item, dict):
            raise DefinitionError(f"{spot} must be a mapping")
        kind = _require(item, "kind", str, spot).replace("-", "_")
        if kind not in FAULT_KINDS:
            raise DefinitionError(f"{spot}: unknown fault kind {kind!r}; known: "
                                  f"{', '.join(sorted(FAULT_KINDS))}")
        at = _number(item.get("at", 0), f"{spot}.at")
        until = None if item.get("until") is None else _number(item["until"], f"{spot}.until")
        if until is not None and until <= at:
            raise DefinitionError(f"{spot}: `until` must come after `at`")
        if at > duration:
            raise DefinitionError(f"{spot}: starts after the load ends ({at} > {duration})")
        faults.append(FaultStep(_require(item, "target", str, spot), kind, at, until,
                                dict(item.get("params") or {})))
    probes = []
    for index, item in enumerate(document.get("probes") or []):
        spot = f"{where}: probes[{index}]"
        kind = _require(item, "kind", str, spot)
        if kind not in PROBES:
            raise DefinitionError(f"{spot}: unknown probe {kind!r}; known: {', '.join(sorted(PROBES))}")
        every = _number(item.get("every", 0.5), f"{spot}.every")
        if every <= 0:
            raise DefinitionError(f"{spot}: `every` must be > 0")
        probes.append(Probe(kind, every, {k: v for k, v in item.items() if k not in ("kind", "every")}))
    checks = []
    for index, item in enumerate(document.get("hypothesis") or []):
        spot = f"{where}: hypothesis[{index}]"
        check = _require(item, "check", str, spot)
        if check not in CHECKS:
            raise DefinitionError(f"{spot}: unknown check {check!r}; known: {', '.join(CHECKS)}")
        required, optional = CHECKS[check]
        params = {k: v for k, v in item.items() if k not in ("check", "name")}
        missing = required - params.keys()
        if missing:
            raise DefinitionError(f"{spot} ({check}): missing {', '.join(sorted(missing))}")
        unknown = params.keys() - required - optional
        if unknown:
            raise DefinitionError(f"{spot} ({check}): unknown field(s) {', '.join(sorted(unknown))}")
        if "window" in params and params["window"] not in windows:
            raise DefinitionError(f"{spot}: no window named {params['window']!r}")
        # `baseline` names one window or several (steady state before and after the fault).
        for window in baseline_windows(params) if "baseline" in params else ():
            if window not in windows:
                raise DefinitionError(f"{spot}: no window named {window!r}")
        if check == "latency" and not ({"max_ms", "max_vs_baseline"} & params.keys()):
            raise DefinitionError(f"{spot}: latency needs max_ms or max_vs_baseline")
        if "max_vs_baseline" in params and "baseline" not in windows and "baseline" not in params:
            raise DefinitionError(f"{spot}: max_vs_baseline needs a `baseline` window")
        if "groups" in params and not isinstance(params["groups"], list):
            raise DefinitionError(f"{spot}: `groups` must be a list")
        checks.append(Check(str(item.get("name") or f"{check} #{index + 1}"), check, params))
    return Experiment(
        name=name, version=version, description=str(document.get("description", "")).strip(),
        stack=dict(document.get("stack") or {}), load=load, windows=windows,
        faults=tuple(faults), probes=tuple(probes), hypothesis=tuple(checks),
        kind=str(document.get("kind", "standard")), options=dict(document.get("options") or {}),
        variants=dict(document.get("variants") or {}), source=source)


def baseline_windows(params: dict[str, Any]) -> list[str]:
    """The window names a check's `baseline` pools (default: the one called baseline)."""
    names = params.get("baseline", "baseline")
    return [str(n) for n in names] if isinstance(names, list) else [str(names)]


def load_definition(path: Path) -> Experiment:
    """Read and validate one YAML definition file."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: not valid YAML ({exc})") from None
    return parse(document, str(path))


def definitions(folder: Path = DEFINITIONS) -> dict[str, Experiment]:
    """Every definition in `folder` by name."""
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        experiment = load_definition(path)
        found[experiment.name] = experiment
    return found


def find(name: str, folder: Path = DEFINITIONS) -> Experiment:
    """The experiment called `name` (or `name.variant`)."""
    base, _, variant = name.partition(".")
    known = definitions(folder)
    if base not in known:
        raise DefinitionError(f"no experiment {base!r}; known: {', '.join(known) or 'none'}")
    return known[base].variant(variant or None)
