"""The local stack an experiment runs against, through the supervisor's library API.

`LocalStack.ensure(options)` reuses a running stack when it was started with the same
options (resilience, product replicas, CPU quotas, extra environment) and (re)starts it
otherwise; it returns whether it started one, so the runner can stop exactly what it began.
Everything else (gateway, fault proxy, auth URLs, span files, `capacity_bounded`, cgroup
stats) is read from the supervisor's state file, var/stack.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from loadtests.accounts import accounts_from_seed, issue_tokens, seed_document


@dataclass
class StackInfo:
    """Where the parts of a running stack are."""

    gateway_url: str
    toxiproxy_url: str
    auth_url: str
    traces_dir: Path | None
    capacity_bounded: bool
    product_replicas: int
    resilience: bool
    seed_file: str | None = None
    cpus: dict[str, float] = field(default_factory=dict)
    probe_token: str | None = None
    # The gateway's admin port (`/gateway/upstreams`); the public URL on older stacks.
    gateway_admin_url: str = ""

    @property
    def capacity_text(self) -> str:
        if self.capacity_bounded:
            return "capacity-bounded (CPU quotas: " + ", ".join(
                f"{k}={v}" for k, v in sorted(self.cpus.items())) + ")"
        return "not capacity-bounded (no CPU quotas in force)"

    def describe(self) -> dict[str, Any]:
        return {"gateway": self.gateway_url, "toxiproxy": self.toxiproxy_url,
                "capacity_bounded": self.capacity_bounded, "cpus": self.cpus,
                "product_replicas": self.product_replicas, "resilience": self.resilience}


class LocalStack:
    """The supervisor's stack in `var_dir` (BREAKWATER_VAR_DIR or ./var).

    `port_base=0` picks free ports (tests); the default keeps the documented ports (8080 …).
    """

    def __init__(self, var_dir: str | Path | None = None, *, port_base: int | None = None,
                 progress: Any = None, seed_products: int = 200, seed_users: int = 50) -> None:
        from services.common.settings import var_dir as default_var_dir

        self.var_dir = Path(var_dir or default_var_dir()).resolve()
        self.port_base = port_base
        self.progress = progress
        self.seed_products, self.seed_users = seed_products, seed_users
        self._seed: dict[str, Any] | None = None

    def supervisor(self) -> Any:
        from local_stack import Supervisor

        return Supervisor(self.var_dir, progress=self.progress)

    def state(self) -> Any:
        from local_stack.state import load_state

        return load_state(self.var_dir)

    def running(self) -> bool:
        state = self.state()
        if state is None or not state.gateway_url or state.status != "running":
            return False
        try:
            return requests.get(state.gateway_url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    @staticmethod
    def stack_options(options: dict[str, Any], port_base: int | None = None) -> Any:
        """The supervisor's StackOptions for an experiment's `stack:` section."""
        from local_stack import StackOptions

        env: dict[str, dict[str, str]] = {}
        for service, values in (options.get("env") or {}).items():
            env[service] = {k: str(v) for k, v in (values or {}).items()}
        kwargs: dict[str, Any] = {
            "product_replicas": int(options.get("product_replicas", 1)),
            "resilience": bool(options.get("resilience", True)),
            "cpus": {k: float(v) for k, v in (options.get("cpus") or {}).items()}, "env": env}
        if "profile" in options:
            kwargs["profile"] = options["profile"]
        if options.get("db"):
            kwargs["db"] = str(options["db"])
        if port_base is not None:
            kwargs["port_base"] = port_base
        return StackOptions(**kwargs)

    def _matches(self, state: Any, options: dict[str, Any]) -> bool:
        wanted = self.stack_options(options).to_json()
        have = state.options or {}
        if bool(have.get("resilience", True)) != wanted["resilience"]:
            return False
        if str(have.get("db", "sqlite")) != wanted["db"]:
            return False
        if len(state.of_service("product")) != wanted["product_replicas"]:
            return False
        have_cpus = have.get("cpus") or {}
        if any(abs(float(have_cpus.get(k, -1)) - v) > 1e-6 for k, v in wanted["cpus"].items()):
            return False
        have_env = have.get("env") or {}
        return all((have_env.get(service) or {}).get(k) == v
                   for service, values in wanted["env"].items() for k, v in values.items())

    def ensure(self, options: dict[str, Any], *, log: Callable[[str], None] = print) -> bool:
        """A running stack with these options; True when this call started it."""
        state = self.state()
        if state is not None and self.running() and self._matches(state, options):
            log(f"reusing the running stack ({state.gateway_url}"
                + (f", console {state.console_url})" if state.console_url else ")"))
            return False
        if state is not None and self.running():
            log("stopping the running stack (its options differ)")
            self.down(log=log)
        self.up(options, log=log)
        return True

    def up(self, options: dict[str, Any], *, log: Callable[[str], None] = print) -> Any:
        log("starting the stack: " + ", ".join(f"{k}={v}" for k, v in options.items()))
        began = time.monotonic()
        state = self.supervisor().up(self.stack_options(options, self.port_base))
        log(f"stack up in {time.monotonic() - began:.1f} s "
            f"({'capacity-bounded' if state.capacity_bounded else 'not capacity-bounded'})"
            + (f"; watch it live on {state.console_url}" if state.console_url else ""))
        self.seed(log=log, force=True)
        return state

    def down(self, *, log: Callable[[str], None] = print) -> None:
        log("stopping the stack")
        self.supervisor().down()

    def scale(self, service: str, replicas: int, *, log: Callable[[str], None] = print) -> None:
        """Run `replicas` instances of `service` and wait until the gateway knows them all."""
        state = self.state()
        if state is not None and len(state.of_service(service)) == replicas:
            return
        log(f"scaling {service} to {replicas}")
        self.supervisor().scale(service, replicas)
        self.wait_upstreams(service, replicas)

    def wait_upstreams(self, service: str, replicas: int, timeout: float = 30.0) -> None:
        """Poll /gateway/upstreams until `service` has `replicas` instances, breakers closed."""
        deadline = time.monotonic() + timeout
        info = self.info()
        while time.monotonic() < deadline:
            try:
                body = requests.get((info.gateway_admin_url or info.gateway_url)
                                    + "/gateway/upstreams", timeout=2).json()
                instances = body["upstreams"][service]["instances"]
                if len(instances) == replicas and all(
                        str(i.get("breaker", "closed")) == "closed" for i in instances):
                    return
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the gateway did not see {replicas} {service} instance(s) in time")

    def seed(self, *, users: int = 50, force: bool = False,
             log: Callable[[str], None] = print) -> dict[str, Any]:
        """Seed the stack (idempotent) unless var/seed.json already has `users` shoppers."""
        from local_stack.seed import seed

        current = seed_document(self.var_dir / "seed.json")
        if force or len(current.get("users") or []) < users:
            began = time.monotonic()
            seed(self.info().gateway_url, self.var_dir, products=self.seed_products,
                 users=max(users, self.seed_users))
            log(f"seeded in {time.monotonic() - began:.1f} s")
            current = seed_document(self.var_dir / "seed.json")
        self._seed = current
        return current

    def cpu_stats(self) -> dict[str, dict[str, Any]]:
        """instance → {cpus, usage_s, throttled_s, nr_throttled} from the stack's cgroups."""
        from dataclasses import asdict

        from local_stack.cgroups import backend_for

        state = self.state()
        stats: dict[str, dict[str, Any]] = {}
        if state is None:
            return stats
        for name, instance in state.instances.items():
            if instance.cgroup is None:
                continue
            try:
                backend = backend_for(instance.cgroup.kind, [])
                stats[name] = asdict(backend.stats(instance.cgroup))
            except Exception as exc:  # noqa: BLE001 - stats are evidence, not a requirement
                stats[name] = {"error": str(exc)}
        return stats

    # -- what experiments need -------------------------------------------------------------
    def info(self) -> StackInfo:
        state = self.state()
        if state is None:
            raise RuntimeError(f"no stack runs in {self.var_dir} (breakwater up)")
        auth = state.of_service("auth")
        cpus = {}
        for instance in state.instances.values():
            if instance.cgroup is not None:
                cpus[instance.service] = instance.cgroup.cpus
        return StackInfo(
            gateway_url=state.gateway_url.rstrip("/"),
            gateway_admin_url=(state.gateway_admin_url or state.gateway_url).rstrip("/"),
            toxiproxy_url=state.toxiproxy_url.rstrip("/"),
            auth_url=auth[0].url if auth else state.gateway_url,
            # `state.traces` describes the destination in words; span files, when the stack
            # writes them, are in the var folder's traces/ (OTLP runs link to Jaeger instead).
            traces_dir=self.var_dir / "traces",
            capacity_bounded=bool(state.capacity_bounded),
            product_replicas=len(state.of_service("product")),
            resilience=bool((state.options or {}).get("resilience", True)),
            seed_file=str(self.var_dir / "seed.json"), cpus=cpus)

    def admin_token(self) -> str:
        """An access token of the stack's seed admin (catalog writes need one)."""
        from local_stack.admins import admin_token, local_admin

        return admin_token(self.info().gateway_url, local_admin(self.var_dir), var=self.var_dir)

    def tokens(self, count: int, *, log: Callable[[str], None] = print) -> dict[str, str]:
        """Access tokens of `count` seeded shoppers, logged in straight at auth."""
        seed = self.seed(users=count, log=log)
        accounts = accounts_from_seed(seed, default_count=count)
        info = self.info()
        began = time.monotonic()
        tokens = issue_tokens(info.auth_url, accounts, limit=count)
        log(f"{len(tokens)} shoppers logged in ({time.monotonic() - began:.1f} s)")
        if not tokens:
            raise RuntimeError(f"no seeded account could log in at {info.auth_url}; "
                               "run `breakwater seed`")
        return tokens
