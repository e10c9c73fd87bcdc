"""The local stack: `up`, `down` and `scale`, each a method of `Supervisor`.

`up` starts, on 127.0.0.1: the embedded fault proxy, one proxy listener per service instance,
every service under gunicorn (migrations first, once per service), and the gateway, which
finds the instances in the registry file. Every caller is pointed at proxy listeners, so a
fault on `cart` hits the gateway and order alike. What was started is recorded in
`var/stack.json` as it happens, so `down` stops exactly that, even after a failed `up`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import requests

from local_stack import cgroups, commands, databases, keeper, limits, migrations
from local_stack.options import (  # noqa: F401 - the supervisor's public names
    DownReport,
    StackError,
    StackOptions,
    StackRunning,
    StartupError,
    traces_destination,
)
from local_stack.ports import (
    MAX_REPLICAS,
    PortPlan,
    instance_name,
    is_listening,
    taken,
)
from local_stack.processes import (
    group_alive,
    group_members,
    is_running,
    launch,
    log_tail,
    start_ticks,
    stop_groups,
)
from local_stack.progress import Progress
from local_stack.registry import caller_urls, write_registry
from local_stack.state import (
    REGISTRY_FILE,
    Instance,
    Proxy,
    StackState,
    load_state,
    remove_state,
    stack_lock,
    utc_now,
)
from services.common.settings import project_root, var_dir

# Product is what a flash sale needs more of; cart scales too, for the counter-case that
# shows scaling the wrong service gains nothing.
SCALABLE = ("product", "cart")
LISTENING = re.compile(r"listening on (\S+):(\d+)")
TAIL_LINES = 25
# A command waits this long for the keeper, which holds the stack lock for a restart's moment.
LOCK_WAIT = 5.0


class Supervisor:
    """Starts, scales and stops the local stack kept in one var folder."""

    def __init__(self, var: str | Path | None = None, *, progress: Progress | None = None,
                 cgroup_root: str | Path | None = None, stop_timeout: float = 10.0,
                 http: Callable[..., requests.Response] = requests.get) -> None:
        self.var = Path(var or var_dir()).resolve()
        self.progress = progress or Progress()
        self.cgroup_root = cgroup_root
        self.stop_timeout = stop_timeout
        self.http = http

    # -- paths ----------------------------------------------------------------------------
    @property
    def logs_dir(self) -> Path:
        return self.var / "logs"

    @property
    def keys(self) -> tuple[Path, Path]:
        folder = self.var / "keys"
        return folder / "token_ed25519.pem", folder / "token_ed25519.pub.pem"

    def state(self) -> StackState | None:
        """The recorded stack, or None."""
        return load_state(self.var)

    # -- up -------------------------------------------------------------------------------
    def up(self, options: StackOptions | None = None) -> StackState:
        """Start the whole stack and wait until every process is ready; its state."""
        options = options or StackOptions()
        options.validate()
        with stack_lock(self.var, wait=LOCK_WAIT):
            self.clear_stale()
            state = StackState(
                stack_id=secrets.token_hex(4), var_dir=str(self.var), options=options.to_json(),
                registry_file=str(self.var / REGISTRY_FILE),
            )
            try:
                self._start(state, options)
            except BaseException:
                with self.progress.step("stopping what was started"):
                    self._teardown(state)
                raise
            state.status = "running"
            state.save()
            return state

    def clear_stale(self) -> bool:
        """Raise StackRunning if the recorded stack still runs; clean up (and return True)
        when its processes are all gone."""
        existing = load_state(self.var)
        if existing is None:
            return False
        alive = [i.name for i in existing.processes() if self.owned(i)]
        if alive:
            raise StackRunning(
                f"a stack is already running from {self.var} (gateway {existing.gateway_url}, "
                f"started {existing.created_at}; alive: {', '.join(alive)}): "
                "run `breakwater down` first"
            )
        self._teardown(existing)
        self.progress.note(f"cleaned up the state of stack {existing.stack_id}, "
                           "whose processes are gone")
        return True

    def _start(self, state: StackState, options: StackOptions) -> None:
        plan = PortPlan(options.port_base)
        with self.progress.step("checking ports"):
            busy = taken(plan.fixed_ports(options.product_replicas, options.console))
            if busy:
                listed = ", ".join(f"{name} {port}" for name, port in busy.items())
                raise StackError(f"ports already in use: {listed}; stop what uses them or "
                                 "choose another --port-base (0 picks free ports)")
        self.var.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        from services.common.tokens import ensure_keypair

        ensure_keypair(*self.keys)
        base_env = commands.base_environment(self.var, self.keys, Path(state.registry_file),
                                             options.resilience)
        state.traces = traces_destination(base_env)
        backend = self.setup_cgroups(state, options)
        state.save()

        toxiproxy = self._start_toxiproxy(state, plan, base_env)
        migrations.migrate_all(options, base_env, self.var, self.logs_dir, self.progress,
                               tail_lines=TAIL_LINES)

        used: set[int] = set()
        with self.progress.step("fault proxy listeners") as step:
            for service in commands.SERVICES:
                count = options.product_replicas if service == "product" else 1
                for replica in range(1, count + 1):
                    instance = self._plan_instance(state, plan, service, replica, used)
                    step.update(instance.name)
                    self._create_proxy(state, instance)
            write_registry(state)
            state.save()

        with self.progress.step("starting services and gateway"):
            for instance in list(state.instances.values()):
                if instance.service in commands.SERVICES:
                    self._launch_service(state, options, instance, base_env, backend)
            gateway = Instance("gateway", "gateway", self._pick(plan.gateway_port, used))
            state.instances["gateway"] = gateway
            state.gateway_url = gateway.url
            admin_port = self._pick(plan.gateway_admin_port, used)
            state.gateway_admin_url = f"http://127.0.0.1:{admin_port}"
            env = commands.gateway_environment(base_env, gateway.port,
                                               Path(state.registry_file), options.resilience,
                                               admin_port=admin_port)
            env.update(options.env.get("gateway", {}))
            self._launch(state, gateway, commands.gateway_command(), env, backend, options)
            if options.console:
                self._launch_console(state, plan, used, base_env, backend, options)
        waiting = [i for i in state.instances.values() if i is not toxiproxy]
        self.wait_ready(waiting, options.ready_timeout)
        if options.keeper:
            with self.progress.step("keeper (restarts an instance that dies)") as step:
                state.keeper = keeper.start_keeper(state, base_env, self.logs_dir, project_root())
                state.save()
                step.update(f"pid {state.keeper.pid}")

    def _launch_console(self, state: StackState, plan: PortPlan, used: set[int],
                        base_env: dict[str, str], backend: cgroups.CgroupBackend,
                        options: StackOptions) -> None:
        console = Instance("console", "console", self._pick(plan.console_port, used))
        state.instances["console"] = console
        state.console_url = console.url
        env = commands.console_environment(base_env, console.port,
                                           state.gateway_admin_url or state.gateway_url,
                                           state.toxiproxy_url)
        env.update(options.env.get("console", {}))
        self._launch(state, console, commands.console_command(), env, backend, options)

    def setup_cgroups(self, state: StackState, options: StackOptions) -> cgroups.CgroupBackend:
        """Detect the cgroup backend and create the stack's parent group; says in one line
        when quotas cannot be applied (`state.capacity_bounded` stays False)."""
        cpus = options.service_cpus()
        if not cpus:
            state.cgroups = {"kind": "none", "reason": "no CPU quotas requested"}
            self.progress.note("CPU quotas: none requested (--profile/--cpus); the stack is "
                               "not capacity-bounded")
            return cgroups.NoCgroups(reason="no CPU quotas requested")
        with self.progress.step("CPU quotas (cgroups)") as step:
            backend = cgroups.detect_backend(self.cgroup_root)
            if backend.available:
                parent = f"breakwater-{state.stack_id}"
                dirs = backend.create_parent(parent)
                state.cgroups = {"kind": backend.kind, "roots": [str(r) for r in backend.roots],
                                 "parent": parent, "dirs": dirs}
                state.capacity_bounded = all(s in cpus for s in limits.SERVICES)
                step.update(f"{backend.describe()}, group {parent}")
            else:
                state.cgroups = {"kind": "none", "reason": backend.reason}
                step.update("unavailable")
        if not backend.available:
            self.progress.note(f"warning: CPU quotas cannot be applied ({backend.reason}); "
                               "running without quotas, results are not capacity-bounded")
        return backend

    def _start_toxiproxy(self, state: StackState, plan: PortPlan,
                         env: dict[str, str]) -> Instance:
        with self.progress.step("fault proxy (Toxiproxy API)") as step:
            instance = Instance("toxiproxy", "toxiproxy", plan.toxiproxy_port())
            state.instances[instance.name] = instance
            log = self.logs_dir / "toxiproxy.log"
            log.write_bytes(b"")
            instance.log = str(log)
            instance.pid = launch(commands.toxiproxy_command(instance.port), env, log,
                                  project_root())
            instance.ticks, instance.started_at = start_ticks(instance.pid), utc_now()
            state.save()
            deadline = time.monotonic() + 20
            while True:
                found = LISTENING.search(log.read_text(errors="replace"))
                if found:
                    instance.port = int(found.group(2))
                    break
                if not group_alive(instance.pid):
                    raise StartupError("the fault proxy exited during start-up", "toxiproxy",
                                       log_tail(log, TAIL_LINES))
                if time.monotonic() > deadline:
                    raise StartupError("the fault proxy did not start within 20s", "toxiproxy",
                                       log_tail(log, TAIL_LINES))
                time.sleep(0.05)
            state.toxiproxy_url = instance.url
            state.save()
            step.update(state.toxiproxy_url)
        return instance

    def _pick(self, pick: Callable[[], int], used: set[int]) -> int:
        for _ in range(20):
            port = pick()
            if port not in used:
                used.add(port)
                return port
        raise StackError("could not find a free port")

    def _plan_instance(self, state: StackState, plan: PortPlan, service: str, replica: int,
                       used: set[int]) -> Instance:
        port = self._pick(lambda: plan.service_port(service, replica), used)
        instance = Instance(instance_name(service, replica), service, port)
        instance.proxy = Proxy(instance.name, f"127.0.0.1:{plan.proxy_port(port)}",
                               f"127.0.0.1:{port}")
        state.instances[instance.name] = instance
        return instance

    def _create_proxy(self, state: StackState, instance: Instance) -> None:
        from chaos.client import ToxiproxyClient, ToxiproxyError

        assert instance.proxy is not None
        client = ToxiproxyClient(state.toxiproxy_url)
        try:
            created = client.create_proxy(instance.proxy.name, instance.proxy.upstream,
                                          listen=instance.proxy.listen)
        except ToxiproxyError as exc:
            raise StackError(f"cannot create the proxy of {instance.name}: {exc}") from None
        instance.proxy.listen = created.get("listen", instance.proxy.listen)

    def _delete_proxy(self, state: StackState, instance: Instance) -> None:
        from chaos.client import NotFoundError, ToxiproxyClient, ToxiproxyError

        if instance.proxy is None or not state.toxiproxy_url:
            return
        # Already gone, or the fault proxy itself is: nothing listens there either way.
        with contextlib.suppress(NotFoundError, ToxiproxyError):
            ToxiproxyClient(state.toxiproxy_url, timeout=2).delete_proxy(instance.proxy.name)

    def _launch_service(self, state: StackState, options: StackOptions, instance: Instance,
                        base_env: dict[str, str], backend: cgroups.CgroupBackend) -> None:
        callees = {s: caller_urls(state, s) for s in ("auth", "product", "cart")}
        url = databases.database_url(options.db, instance.service, self.var)
        env = commands.service_environment(base_env, instance.service, instance.name,
                                           instance.port, url, callees, options.resilience)
        env.update(options.env.get(instance.service, {}))
        env.update(options.env.get(instance.name, {}))
        self._launch(state, instance, commands.service_command(instance.service, instance.port),
                     env, backend, options)

    def _launch(self, state: StackState, instance: Instance, command: list[str],
                env: dict[str, str], backend: cgroups.CgroupBackend,
                options: StackOptions) -> None:
        cpus = options.service_cpus().get(instance.service)
        if cpus and backend.available:
            instance.cgroup = backend.create_group(state.cgroups["parent"], instance.name, cpus)
            state.save()
            command = cgroups.join_command(instance.cgroup.procs_files, command)
        log = self.logs_dir / f"{instance.name}.log"
        log.write_bytes(b"")
        instance.log = str(log)
        keeper.save_launch(self.var, instance.name, command, env, project_root())
        instance.pid = launch(command, env, log, project_root())
        instance.ticks, instance.started_at = start_ticks(instance.pid), utc_now()
        state.save()

    def wait_ready(self, instances: list[Instance], timeout: float) -> None:
        """Poll every instance's `/readyz` until all answer 200; StartupError when one dies
        or the deadline passes."""
        with self.progress.step("waiting until ready") as step:
            pending = {i.name: i for i in instances}
            answers: dict[str, str] = {}
            deadline = time.monotonic() + timeout
            while pending:
                for name, instance in list(pending.items()):
                    if not group_alive(instance.pid):
                        raise StartupError(f"{name} exited during start-up", name,
                                           log_tail(instance.log, TAIL_LINES))
                    try:
                        response = self.http(f"{instance.url}/readyz", timeout=1.0)
                        answers[name] = f"{response.status_code} {response.text[:200]}"
                        if response.status_code == 200:
                            del pending[name]
                    except requests.RequestException as exc:
                        answers[name] = type(exc).__name__
                step.update(f"{len(instances) - len(pending)}/{len(instances)} ready"
                            + (f", waiting for {', '.join(sorted(pending))}" if pending else ""))
                if pending and time.monotonic() > deadline:
                    first = next(iter(pending.values()))
                    waits = "; ".join(f"{n}: {answers.get(n, 'no answer')}" for n in pending)
                    raise StartupError(f"not ready within {timeout:g}s: {waits}", first.name,
                                       log_tail(first.log, TAIL_LINES))
                if pending:
                    time.sleep(0.1)

    # -- down -----------------------------------------------------------------------------
    def owned(self, instance: Instance) -> bool:
        """Whether the recorded process group still runs and is the one we started."""
        if instance.pid <= 0:
            return False
        if is_running(instance.pid):
            ticks = start_ticks(instance.pid)
            return instance.ticks is None or ticks is None or ticks == instance.ticks
        return bool(group_members(instance.pid))  # leader gone, workers left behind

    def down(self) -> DownReport:
        """Stop exactly what `up` started, remove its cgroups, proxies and state files."""
        with stack_lock(self.var, wait=LOCK_WAIT):
            state = load_state(self.var)
            if state is None:
                return DownReport(was_running=False)
            with self.progress.step("stopping the stack") as step:
                report = self._teardown(state, step.update)
            return report

    def _teardown(self, state: StackState,
                  say: Callable[[str], None] = lambda _text: None) -> DownReport:
        report = DownReport()
        owned = [i for i in state.processes() if self.owned(i)]
        report.stopped = [i.name for i in owned]
        say(f"{len(owned)} process group(s)")
        # The keeper first, so nothing it could restart comes back (it also needs the lock).
        killed = stop_groups([i.pid for i in owned if i is state.keeper], timeout=self.stop_timeout)
        killed += stop_groups([i.pid for i in owned if i is not state.keeper],
                              timeout=self.stop_timeout)
        report.killed = [i.name for i in owned if i.pid in killed]
        ports = [i.port for i in state.instances.values() if i.port]
        ports += [int(i.proxy.listen.rpartition(":")[2]) for i in state.instances.values()
                  if i.proxy]
        deadline = time.monotonic() + 5
        listening = [p for p in ports if p and is_listening(p)]
        while listening and time.monotonic() < deadline:
            time.sleep(0.05)
            listening = [p for p in listening if is_listening(p)]
        report.still_listening = listening
        report.cgroup_failures = self._remove_cgroups(state)
        Path(state.registry_file or self.var / REGISTRY_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.var / keeper.LAUNCH_DIR, ignore_errors=True)
        remove_state(self.var)
        return report

    def _remove_cgroups(self, state: StackState) -> list[str]:
        children = [d for i in state.instances.values() if i.cgroup for d in i.cgroup.dirs]
        parents = list(state.cgroups.get("dirs", []))
        return cgroups.remove_dirs(children) + cgroups.remove_dirs(parents)

    # -- scale ----------------------------------------------------------------------------
    def scale(self, service: str, replicas: int, timeout: float = 60.0) -> StackState:
        """Add or remove replicas of `service` while the stack runs; the gateway follows the
        registry file without a restart."""
        if service not in SCALABLE:
            raise StackError(f"only {', '.join(SCALABLE)} can be scaled, not {service!r}")
        if not 1 <= replicas <= MAX_REPLICAS:
            raise StackError(f"{service} replicas must be 1..{MAX_REPLICAS}")
        with stack_lock(self.var, wait=LOCK_WAIT):
            state = load_state(self.var)
            if state is None or state.status != "running":
                raise StackError("no stack is running here: `breakwater up` first")
            current = state.of_service(service)
            if replicas > len(current):
                self._add_replicas(state, service, len(current), replicas, timeout)
            elif replicas < len(current):
                self._remove_replicas(state, current[replicas:])
            state.options.setdefault("replicas", {})[service] = replicas
            if service == "product":
                state.options["product_replicas"] = replicas
            state.save()
            return state

    def _add_replicas(self, state: StackState, service: str, have: int, want: int,
                      timeout: float) -> None:
        options = StackOptions(**{k: v for k, v in state.options.items()
                                  if k in StackOptions.__dataclass_fields__})
        options.profile, options.cpus = None, dict(state.options.get("cpus", {}))
        plan = PortPlan(options.port_base)
        backend = cgroups.backend_for(state.cgroups.get("kind", "none"),
                                      state.cgroups.get("roots", []))
        base_env = commands.base_environment(self.var, self.keys, Path(state.registry_file),
                                             options.resilience)
        used = {i.port for i in state.instances.values()}
        added: list[Instance] = []
        try:
            with self.progress.step(f"starting {service} replicas {have + 1}..{want}") as step:
                for replica in range(have + 1, want + 1):
                    instance = self._plan_instance(state, plan, service, replica, used)
                    if not plan.free and is_listening(instance.port):
                        raise StackError(f"port {instance.port} of {instance.name} is in use")
                    added.append(instance)
                    step.update(instance.name)
                    self._create_proxy(state, instance)
                    self._launch_service(state, options, instance, base_env, backend)
            self.wait_ready(added, timeout)
        except BaseException:
            self._remove_replicas(state, added)
            raise
        with self.progress.step("registry updated"):
            write_registry(state)

    def _remove_replicas(self, state: StackState, instances: list[Instance]) -> None:
        if not instances:
            return
        names = ", ".join(i.name for i in instances)
        with self.progress.step(f"removing {names}"):
            for instance in instances:
                state.instances.pop(instance.name, None)
            # Callers stop choosing them first, then they stop.
            write_registry(state)
            for instance in instances:
                self._delete_proxy(state, instance)
                keeper.launch_file(self.var, instance.name).unlink(missing_ok=True)
            stop_groups([i.pid for i in instances if self.owned(i)], timeout=self.stop_timeout)
            cgroups.remove_dirs([d for i in instances if i.cgroup for d in i.cgroup.dirs])
            state.save()
