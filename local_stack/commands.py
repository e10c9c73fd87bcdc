"""The command line and environment of every process the supervisor starts.

Services run under gunicorn (gthread, 1 worker × 8 threads, keep-alive 75 s, longer than any
caller's pooled-connection idle time: the TOOLING.md pitfall); the gateway is `python -m
gateway` (Granian and its buffering front, docs/SERVING.md); the fault proxy is
`python -m chaos.toxiproxy`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from services.common.settings import project_root

SERVICES = ("auth", "product", "cart", "order")
PREFIXES = {"auth": "AUTH", "product": "PRODUCT", "cart": "CART", "order": "ORDER",
            "gateway": "GATEWAY", "console": "CONSOLE"}
# Callee services each caller is pointed at, by the setting naming them.
CALLER_SETTINGS = {
    "cart": {"CART_PRODUCT_URL": "product"},
    "order": {"ORDER_CART_URL": "cart", "ORDER_PRODUCT_URL": "product", "ORDER_AUTH_URL": "auth"},
}
SERVICE_THREADS = 8
KEEP_ALIVE_SECONDS = 75
GRACEFUL_SECONDS = 5


def python() -> str:
    """The interpreter of the running breakwater (the virtualenv's)."""
    return sys.executable


def gunicorn() -> list[str]:
    """How to run gunicorn, without the per-user control socket newer versions open (every
    instance of the stack would fight over the same path)."""
    command = [python(), "-m", "gunicorn"]
    try:
        from gunicorn.config import KNOWN_SETTINGS

        if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS):
            command.append("--no-control-socket")
    except ImportError:
        pass
    return command


def service_command(service: str, port: int) -> list[str]:
    """gunicorn serving `services.<service>:create_app()` on 127.0.0.1:port."""
    return [
        *gunicorn(),
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--workers", "1", "--threads", str(SERVICE_THREADS),
        "--keep-alive", str(KEEP_ALIVE_SECONDS),
        "--graceful-timeout", str(GRACEFUL_SECONDS),
        "--error-logfile", "-",
        f"services.{service}:create_app()",
    ]


def gateway_command() -> list[str]:
    """`python -m gateway`: Granian with the gateway's front; everything from GATEWAY_*."""
    return [python(), "-m", "gateway"]


def toxiproxy_command(port: int) -> list[str]:
    """The embedded fault proxy with its control API on 127.0.0.1:port (0: any free port)."""
    return [python(), "-m", "chaos.toxiproxy", "--host", "127.0.0.1", "--port", str(port)]


def console_command() -> list[str]:
    """The console (gunicorn inside, one worker); its settings come from CONSOLE_*."""
    return [python(), "-m", "console"]


def migrate_command(service: str) -> list[str]:
    """Flask-Migrate's upgrade of one service's database."""
    return [python(), "-m", "flask", "--app", f"services.{service}", "db", "upgrade"]


def base_environment(
    var_dir: Path, keys: tuple[Path, Path], registry_file: Path, resilience: bool,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What every process shares: the var folder, the token keys, the registry, the switch.

    The caller's own `<SERVICE>_*` and `GATEWAY_*` variables are dropped: the supervisor decides
    ports, databases and upstreams, and a stray `GATEWAY_UPSTREAM_CART` would silently
    bypass the fault proxy.
    """
    environ = os.environ if environ is None else environ
    prefixes = tuple(f"{p}_" for p in PREFIXES.values())
    env = {k: v for k, v in environ.items() if not k.startswith(prefixes)}
    root = str(project_root())
    env.update({
        "BREAKWATER_VAR_DIR": str(var_dir),
        "BREAKWATER_RESILIENCE": "on" if resilience else "off",
        "BREAKWATER_TOKEN_PUBLIC_KEY_FILE": str(keys[1]),
        "AUTH_TOKEN_PRIVATE_KEY_FILE": str(keys[0]),
        "BREAKWATER_REGISTRY_FILE": str(registry_file),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (root, environ.get("PYTHONPATH", "")) if p),
    })
    return env


def service_environment(
    base: Mapping[str, str], service: str, instance: str, port: int, database_url: str,
    callees: Mapping[str, str], resilience: bool,
) -> dict[str, str]:
    """One service instance's environment; `callees` maps a callee service to its URLs."""
    prefix = PREFIXES[service]
    env = dict(base)
    env.update({
        f"{prefix}_PORT": str(port),
        f"{prefix}_INSTANCE_ID": instance,
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_RESILIENCE": "on" if resilience else "off",
        # Migrations ran once per service before any replica started.
        f"{prefix}_AUTO_MIGRATE": "off",
    })
    for setting, callee in CALLER_SETTINGS.get(service, {}).items():
        env[setting] = callees[callee]
    return env


def gateway_environment(base: Mapping[str, str], port: int, registry_file: Path,
                        resilience: bool, admin_port: int | None = None) -> dict[str, str]:
    """The gateway's environment: where to listen (the admin port on 127.0.0.1; a free one
    when not given) and the registry file to discover from."""
    if admin_port is None:
        from local_stack.ports import free_port

        admin_port = free_port()
    env = dict(base)
    env.update({
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_ADMIN_HOST": "127.0.0.1",
        "GATEWAY_ADMIN_PORT": str(admin_port),
        "GATEWAY_INSTANCE_ID": "gateway",
        "GATEWAY_REGISTRY_FILE": str(registry_file),
        "GATEWAY_RESILIENCE": "on" if resilience else "off",
    })
    return env


def console_environment(base: Mapping[str, str], port: int, gateway_admin_url: str,
                        toxiproxy_url: str) -> dict[str, str]:
    """The console's environment: where to listen and what to watch. Span files, Jaeger and
    the experiment progress file follow the stack's var folder and tracing settings."""
    env = dict(base)
    env.update({
        "CONSOLE_HOST": "127.0.0.1",
        "CONSOLE_PORT": str(port),
        # The gateway's admin port: /gateway/upstreams and /metrics are not on the public one.
        "CONSOLE_GATEWAY_ADMIN_URL": gateway_admin_url,
        "CONSOLE_TOXIPROXY_URL": toxiproxy_url,
    })
    return env


def migrate_environment(base: Mapping[str, str], service: str, database_url: str) -> dict[str, str]:
    """The environment of one service's migration run."""
    env = dict(base)
    prefix = PREFIXES[service]
    env.update({f"{prefix}_DATABASE_URL": database_url, f"{prefix}_AUTO_MIGRATE": "off",
                f"{prefix}_INSTANCE_ID": f"{service}-migrate"})
    return env
