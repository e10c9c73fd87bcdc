"""CPU limits per service: the one source of truth for local, compose and Kubernetes modes.

Numbers are CPUs, exactly as `docker run --cpus` and `deploy.resources.limits.cpus` take them
(0.25 = a quarter of one core). Compose and Kubernetes files are generated from, or checked
against, this module; `breakwater up --profile NAME` applies a profile per service instance.
"""

from __future__ import annotations

from collections.abc import Mapping

# Every process the stack runs that can carry a quota (the fault proxy is infrastructure).
SERVICES = ("gateway", "auth", "product", "cart", "order")

# Named profiles: service -> CPUs per instance.
PROFILES: dict[str, dict[str, float]] = {
    # Capacity that means something on a 2-core host: product is the bottleneck under a flash
    # sale, so adding replicas (each with its own quarter core) visibly raises throughput.
    "experiments": {"gateway": 1.0, "auth": 0.5, "product": 0.25, "cart": 0.5, "order": 0.5},
    # Kubernetes' production-like overlay: a core per pod, two for the gateway every request
    # crosses; the HPA adds product pods rather than growing one.
    "production-like": {"gateway": 2.0, "auth": 1.0, "product": 1.0, "cart": 1.0, "order": 1.0},
}

DEFAULT_PROFILE = "experiments"


class LimitsError(ValueError):
    """A profile or a `service=cpus` setting that does not make sense."""


def profile(name: str) -> dict[str, float]:
    """The CPUs per service of a named profile."""
    try:
        return dict(PROFILES[name])
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise LimitsError(f"unknown CPU profile {name!r} (known: {known})") from None


def parse_cpus(text: str) -> tuple[str, float]:
    """`product=0.25` -> ("product", 0.25); CPUs must be positive and at most 64."""
    service, sep, value = text.partition("=")
    service = service.strip()
    if not sep or service not in SERVICES:
        raise LimitsError(f"expected SERVICE=CPUS with SERVICE one of {', '.join(SERVICES)}, "
                          f"got {text!r}")
    try:
        cpus = float(value)
    except ValueError:
        raise LimitsError(f"{text!r}: CPUS must be a number such as 0.25") from None
    if not 0.01 <= cpus <= 64:
        raise LimitsError(f"{text!r}: CPUS must be between 0.01 and 64")
    return service, cpus


def resolve(profile_name: str | None = None,
            overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The CPUs per service: a profile (if any) with per-service overrides on top."""
    cpus = profile(profile_name) if profile_name else {}
    cpus.update(overrides or {})
    return cpus


def quota_us(cpus: float, period_us: int = 100_000) -> int:
    """The CFS quota for `cpus` in a `period_us` period (0.25 -> 25000 of 100000)."""
    return max(1000, round(cpus * period_us))
