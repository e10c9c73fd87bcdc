"""What `up` is asked for (`StackOptions`), what `down` reports, and the supervisor's errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from local_stack import databases, limits
from local_stack.ports import DEFAULT_BASE, MAX_REPLICAS, PortError, PortPlan


class StackError(RuntimeError):
    """The stack cannot do what was asked; the message says why and what to do."""


class StackRunning(StackError):
    """`up` while a stack already runs in this var folder."""


class StartupError(StackError):
    """A process failed during start-up; carries its name and the tail of its log."""

    def __init__(self, message: str, instance: str = "", tail: str = "") -> None:
        text = message
        if tail:
            text += f"\n--- last lines of the log of {instance} ---\n{tail}"
        super().__init__(text)
        self.instance, self.tail = instance, tail


@dataclass
class StackOptions:
    """How `up` starts the stack."""

    product_replicas: int = 1
    resilience: bool = True
    db: str = databases.SQLITE
    port_base: int = DEFAULT_BASE
    cpus: dict[str, float] = field(default_factory=dict)
    profile: str | None = limits.DEFAULT_PROFILE
    ready_timeout: float = 90.0
    # The live console (breakers, traffic, faults, traces) on its own port.
    console: bool = True
    # Extra environment per service or instance name (experiments, and tests breaking one).
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Restart an instance that dies (`local_stack.keeper`), as compose and Kubernetes do.
    keeper: bool = True

    def service_cpus(self) -> dict[str, float]:
        """CPUs per service instance: the profile with `--cpus` overrides on top."""
        return limits.resolve(self.profile, self.cpus)

    def validate(self) -> None:
        """Raise StackError for options that cannot work, before anything starts."""
        if not 1 <= self.product_replicas <= MAX_REPLICAS:
            raise StackError(f"--product-replicas must be 1..{MAX_REPLICAS}")
        try:
            databases.validate_template(self.db)
            self.service_cpus()
            PortPlan(self.port_base)
        except (databases.DatabaseError, limits.LimitsError, PortError) as exc:
            raise StackError(str(exc)) from None

    def to_json(self) -> dict[str, Any]:
        """The options as recorded in the state file."""
        data = asdict(self)
        data["cpus"] = self.service_cpus()
        return data


@dataclass
class DownReport:
    """What `down` did."""

    stopped: list[str] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    still_listening: list[int] = field(default_factory=list)
    cgroup_failures: list[str] = field(default_factory=list)
    was_running: bool = True


def traces_destination(env: dict[str, str]) -> str:
    """Where the processes' spans go, in words."""
    try:
        from observability.settings import TracingSettings

        settings = TracingSettings.from_env(env)
    except (ImportError, ValueError) as exc:
        return f"unknown ({exc})"
    if settings.exporter == "otlp":
        return f"OTLP to {settings.otlp_traces_endpoint}"
    if settings.exporter == "file":
        return f"{settings.traces_dir} (span files; `breakwater traces`)"
    return settings.exporter
