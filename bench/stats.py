"""Pure number helpers: percentiles, medians, ratios and target checks (unit-tested)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.experiments.measurements import percentile

__all__ = ["percentile"]  # the experiments' own: one definition for every figure

PASS, FAIL, SKIP, ERROR, INFO = "PASS", "FAIL", "SKIP", "ERROR", "INFO"

# How a measured value is compared with its threshold.
COMPARISONS = {
    ">=": lambda value, limit: value >= limit,
    "<=": lambda value, limit: value <= limit,
    "<": lambda value, limit: value < limit,
    "==": lambda value, limit: value == limit,
    "±": lambda value, limit: abs(value) <= limit,
}


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values that are not None; None when there are none."""
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def paired_ratios(numerators: Sequence[float | None],
                  denominators: Sequence[float | None]) -> list[float | None]:
    """The ratio of each repetition's pair (both measured in the same repetition)."""
    return [ratio(n, d) for n, d in zip(numerators, denominators, strict=True)]


def spread(values: Sequence[float | None]) -> dict[str, float | None]:
    """min, median and max of the present values (for the JSON: how noisy a figure was)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return {"min": None, "median": None, "max": None}
    return {"min": min(present), "median": statistics.median(present), "max": max(present)}


def rounded(value: Any, digits: int = 3) -> Any:
    """Floats rounded (recursively in dicts and lists) for readable JSON."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


@dataclass
class Target:
    """One target of a benchmark and how the run measured against it."""

    benchmark: str
    name: str
    op: str
    threshold: float | None
    measured: float | None = None
    unit: str = ""
    status: str = SKIP
    detail: str = ""
    load_generator: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def judge(self, measured: float | None, detail: str = "") -> Target:
        """Set the measured value and PASS/FAIL from the comparison (ERROR when missing)."""
        self.measured = measured
        self.detail = detail or self.detail
        if self.threshold is None or self.op not in COMPARISONS:
            self.status = INFO if measured is not None else ERROR
        elif measured is None:
            self.status = ERROR
        else:
            self.status = PASS if COMPARISONS[self.op](measured, self.threshold) else FAIL
        return self

    def skip(self, reason: str, status: str = SKIP) -> Target:
        """Mark the target as not measured, saying why."""
        self.status, self.detail = status, reason
        return self

    @property
    def target_text(self) -> str:
        """`>= 0.6`, `< 1 ms`, `±5 ms` ... as shown in the table."""
        if self.threshold is None:
            return "(reported)"
        unit = f" {self.unit}" if self.unit and self.unit != "x" else ("x" if self.unit else "")
        number = f"{self.threshold:g}"
        if self.op == "±":
            return f"within ±{number}{unit}"
        return f"{self.op} {number}{unit}"

    def measured_text(self) -> str:
        """The measured value, rounded for the table."""
        if self.measured is None:
            return "—"
        value = self.measured
        digits = 3 if abs(value) < 10 else (1 if abs(value) < 1000 else 0)
        text = f"{value:.{digits}f}"
        if self.unit == "x":
            return text + "x"
        return f"{text} {self.unit}".strip()

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON results."""
        data = asdict(self)
        data["target"] = self.target_text
        return rounded(data)


@dataclass
class BenchResult:
    """What one benchmark hands back: its targets, every raw number, and how it was run."""

    name: str
    title: str
    targets: list[Target] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    load_generator: str = ""
    pinning: str = ""
    notes: list[str] = field(default_factory=list)
    status: str = "ok"  # ok, error, skipped
    error: str | None = None
    duration_s: float | None = None
    measured_at: str | None = None
    mode: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON results."""
        return rounded({"name": self.name, "title": self.title, "status": self.status,
                        "error": self.error, "mode": self.mode, "measured_at": self.measured_at,
                        "duration_s": self.duration_s, "load_generator": self.load_generator,
                        "pinning": self.pinning, "notes": self.notes,
                        "targets": [t.as_dict() for t in self.targets], "raw": self.raw})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchResult:
        """A result read back from latest.json (to keep benchmarks an --only run skipped)."""
        targets = []
        for item in data.get("targets", []):
            optional = {k: item[k] for k in ("measured", "unit", "status", "detail",
                                              "load_generator") if item.get(k) is not None}
            targets.append(Target(item.get("benchmark", data["name"]), item.get("name", ""),
                                  item.get("op", ""), item.get("threshold"), **optional,
                                  extra=item.get("extra") or {}))
        return cls(name=data["name"], title=data.get("title", data["name"]), targets=targets,
                   raw=data.get("raw") or {}, load_generator=data.get("load_generator", ""),
                   pinning=data.get("pinning", ""), notes=list(data.get("notes") or []),
                   status=data.get("status", "ok"), error=data.get("error"),
                   duration_s=data.get("duration_s"), measured_at=data.get("measured_at"),
                   mode=data.get("mode"))
