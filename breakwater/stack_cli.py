"""`breakwater up | down | status | scale | seed | logs`: the local stack's commands.

Only argument parsing and printing live here; the work is done by `local_stack`,
imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from breakwater.arguments import (
    non_negative_int,
    port,
    positive_float,
    positive_int,
    url,
)


def _cpus(text: str) -> tuple[str, float]:
    from local_stack.limits import LimitsError, parse_cpus

    try:
        return parse_cpus(text)
    except LimitsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _scale_target(text: str) -> tuple[str, int]:
    service, sep, count = text.partition("=")
    if not sep or not count.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected SERVICE=REPLICAS (e.g. product=3), got {text!r}")
    return service.strip(), int(count)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the stack commands to the `breakwater` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--var-dir", metavar="PATH",
                        help="state folder (default $BREAKWATER_VAR_DIR, else ./var)")

    up = subparsers.add_parser("up", parents=[common], help="start the whole stack locally",
                               description="Start the fault proxy, every service and the "
                               "gateway on 127.0.0.1 and wait until they are ready.")
    up.add_argument("--product-replicas", type=positive_int, default=1, metavar="N",
                    help="product instances to start (default 1; `breakwater scale` changes it)")
    up.add_argument("--resilience", choices=["on", "off"], default="on",
                    help="protections on, or naive calls for comparison (default on)")
    up.add_argument("--db", default="sqlite", metavar="sqlite|URL-TEMPLATE",
                    help="sqlite (var/<service>.db) or e.g. "
                    "mysql+pymysql://root@127.0.0.1:3306/bw_{service}")
    up.add_argument("--port-base", type=port, default=5000, metavar="P",
                    help="move every port by P-5000 (auth on P); 0 picks free ports")
    up.add_argument("--cpus", type=_cpus, action="append", default=[], metavar="SERVICE=CPUS",
                    help="CPU quota per instance of SERVICE, like docker --cpus (repeatable)")
    up.add_argument("--profile", default=None, metavar="NAME",
                    help="named CPU profile from local_stack/limits.py; default "
                    "experiments, or only the --cpus given; 'none' for no quotas")
    up.add_argument("--timeout", type=positive_float, default=90.0, metavar="SECONDS",
                    help="seconds to wait for every process to be ready (default 90)")
    up.add_argument("--cgroup-root", metavar="PATH",
                    help="cgroup mount folder (BREAKWATER_CGROUP_ROOT; default: found by itself)")
    up.add_argument("--no-console", dest="console", action="store_false",
                    help="do not start the live console (breakers, traffic, faults, traces)")
    up.add_argument("--no-restart", dest="keeper", action="store_false",
                    help="do not restart an instance that dies (default: restarted with "
                    "backoff, as compose's restart policy and Kubernetes do)")
    up.set_defaults(func=_up)

    down = subparsers.add_parser("down", parents=[common], help="stop the local stack")
    down.add_argument("--timeout", type=positive_float, default=10.0, metavar="SECONDS",
                      help="seconds between SIGTERM and SIGKILL (default 10)")
    down.set_defaults(func=_down)

    status = subparsers.add_parser("status", parents=[common],
                                   help="processes, health, CPU and breakers of the stack")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)

    scale = subparsers.add_parser("scale", parents=[common], help="change product (or cart) replicas live")
    scale.add_argument("target", type=_scale_target, metavar="SERVICE=N", help="e.g. product=3")
    scale.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                       help="seconds to wait for new replicas to be ready and seen by the "
                       "gateway (default 60)")
    scale.set_defaults(func=_scale)

    seed = subparsers.add_parser("seed", parents=[common],
                                 help="catalog, flash-sale product and users via the gateway")
    seed.add_argument("--products", type=non_negative_int, default=200, metavar="N",
                      help="catalog products to make sure exist (default 200)")
    seed.add_argument("--flash-sale-stock", type=non_negative_int, default=100, metavar="N",
                      help="units of the flash-sale product (default 100)")
    seed.add_argument("--users", type=non_negative_int, default=50, metavar="N",
                      help="shoppers user1..N@breakwater.test to register (default 50)")
    seed.add_argument("--gateway", metavar="URL", type=url,
                      help="gateway URL (default: the running stack's)")
    seed.add_argument("--admin-email", metavar="EMAIL",
                      help="an admin of that stack (made with `flask --app services.auth admin "
                      "create` where auth runs; default: the local stack's own seed admin)")
    seed.add_argument("--admin-password-stdin", action="store_true",
                      help="read that admin's password from the first line of standard input")
    seed.set_defaults(func=_seed)

    logs = subparsers.add_parser("logs", parents=[common], help="a process's log",
                                 description="Show a log: an instance (product-2, gateway, "
                                 "toxiproxy) or a service (product: all replicas interleaved).")
    logs.add_argument("service", metavar="SERVICE",
                      help="an instance (product-2, gateway, toxiproxy) or a service (product)")
    logs.add_argument("-n", "--lines", type=non_negative_int, default=50, metavar="N",
                      help="how many of the last lines to show (default 50)")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing new lines as they are written (Ctrl-C stops)")
    logs.set_defaults(func=_logs)


def _supervisor(args: argparse.Namespace, **kwargs: Any):
    from local_stack import Supervisor
    from local_stack.progress import ConsoleProgress

    return Supervisor(args.var_dir, progress=ConsoleProgress(), **kwargs)


def _up(args: argparse.Namespace) -> int:
    from local_stack import StackOptions, stack_status

    profile = args.profile
    if profile is None:
        profile = None if args.cpus else "experiments"
    elif profile == "none":
        profile = None
    options = StackOptions(
        product_replicas=args.product_replicas, resilience=args.resilience == "on", db=args.db,
        port_base=args.port_base, cpus=dict(args.cpus), profile=profile,
        ready_timeout=args.timeout, console=args.console, keeper=args.keeper,
    )
    supervisor = _supervisor(args, cgroup_root=args.cgroup_root)
    supervisor.up(options)
    print_status(stack_status(supervisor), headline="Breakwater is up")
    return 0


def _down(args: argparse.Namespace) -> int:
    report = _supervisor(args, stop_timeout=args.timeout).down()
    if not report.was_running:
        print("no stack is recorded here; nothing to stop")
        return 0
    print(f"stopped {len(report.stopped)} process group(s)"
          + (f"; killed after the timeout: {', '.join(report.killed)}" if report.killed else ""))
    problems = 0
    if report.still_listening:
        problems += 1
        print(f"warning: still listening: {', '.join(map(str, report.still_listening))}",
              file=sys.stderr)
    for failure in report.cgroup_failures:
        problems += 1
        print(f"warning: cgroup not removed: {failure}", file=sys.stderr)
    return 1 if problems else 0


def _status(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from local_stack import stack_status

    status = stack_status(_supervisor(args))
    if status is None:
        print("no stack is running here (`breakwater up` starts one)")
        return 3
    if args.json:
        print(json.dumps({"console_url": status.state.console_url or None,
                          "gateway_admin_url": status.state.gateway_admin_url or None,
                          "restarts": status.restarts,
                          "state": status.state.to_json(),
                          "instances": [dataclasses.asdict(i) for i in status.instances],
                          "upstreams": status.upstreams}, indent=2))
    else:
        print_status(status)
    return 0 if status.healthy else 1


def _scale(args: argparse.Namespace) -> int:
    from local_stack import stack_status

    service, replicas = args.target
    supervisor = _supervisor(args)
    supervisor.scale(service, replicas, timeout=args.timeout)
    print_status(stack_status(supervisor), headline=f"{service} scaled to {replicas}")
    return 0


def _seed(args: argparse.Namespace) -> int:
    from local_stack.progress import ConsoleProgress
    from local_stack.seed import seed
    from local_stack.stack import StackError

    supervisor = _supervisor(args)
    gateway = args.gateway
    if not gateway:
        state = supervisor.state()
        if state is None:
            raise StackError("no running stack: `breakwater up` first, or pass --gateway URL")
        gateway = state.gateway_url
    admin = None
    if args.admin_email:
        import getpass

        from local_stack.admins import AdminCredentials

        password = (sys.stdin.readline().rstrip("\r\n") if args.admin_password_stdin
                    else getpass.getpass(f"Password of {args.admin_email}: "))
        admin = AdminCredentials(args.admin_email, password)
    result = seed(gateway, supervisor.var, products=args.products,
                  flash_sale_stock=args.flash_sale_stock, users=args.users,
                  progress=ConsoleProgress(), admin=admin)
    print(f"catalog: {result.products} products ({result.created['products']} new, "
          f"{result.existing['products']} already there); flash sale "
          f"'{result.flash_sale.get('slug')}' stock {result.flash_sale.get('stock', '?')}")
    print(f"users: {len(result.users)} ({result.created['users']} new), "
          f"user1@breakwater.test … user{len(result.users)}@breakwater.test, "
          f"password {result.password}")
    print(f"saved to {supervisor.var / 'seed.json'}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    from local_stack import logs

    supervisor = _supervisor(args)
    files = logs.log_files(supervisor.logs_dir, args.service)
    for line in logs.last_lines(files, args.lines):
        print(line)
    if args.follow:
        try:
            for line in logs.follow(files):
                print(line, flush=True)
        except KeyboardInterrupt:
            return 0
    return 0


# -- printing ------------------------------------------------------------------------------
def table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns; the first row is the header."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def print_status(status: Any, headline: str = "Breakwater stack") -> None:
    """The table of what runs where."""
    state = status.state
    quotas = state.cgroups.get("kind", "none")
    quota_text = (f"cgroup {quotas}" if quotas != "none"
                  else f"none ({state.cgroups.get('reason', 'not requested')})")
    print(f"{headline}: stack {state.stack_id}, resilience "
          f"{'on' if state.options.get('resilience', True) else 'off'}, CPU quotas {quota_text}, "
          f"capacity-bounded {'yes' if state.capacity_bounded else 'no'}")
    rows = [["INSTANCE", "PID", "PORT", "PROXY", "STATE", "HEALTH", "RESTARTS", "CPUS",
             "CPU USED", "THROTTLED", "GATEWAY BREAKER", "FAULTS"]]
    for row in status.instances:
        cpu = row.cpu
        rows.append([
            row.name, str(row.pid), str(row.port or "-"), row.proxy or "-",
            "alive" if row.alive else "DEAD", row.health,
            f"{row.restarts} ({row.last_exit})" if row.restarts else "0",
            f"{cpu.cpus:g}" if cpu else "-",
            _seconds(cpu.usage_s) if cpu else "-",
            (f"{_seconds(cpu.throttled_s)} ({cpu.nr_throttled}x)"
             if cpu and cpu.nr_throttled is not None else "-"),
            row.breaker.describe() if row.breaker else "-", ", ".join(row.faults) or "-",
        ])
    print(table(rows))
    print()
    print(table([
        ["gateway", state.gateway_url],
        ["gateway admin", state.gateway_admin_url or "-"],
        ["console", state.console_url or "not started (--no-console)"],
        ["toxiproxy API", state.toxiproxy_url],
        ["registry", state.registry_file],
        ["traces", state.traces],
        ["logs", f"{state.var_dir}/logs/<instance>.log  (breakwater logs SERVICE [-f])"],
        ["state", f"{state.var_dir}/stack.json"],
    ]))

