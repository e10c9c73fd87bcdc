"""`breakwater chaos …` and `breakwater toxiproxy`: fault commands over `chaos.faults`.

Only argument parsing and printing live here; the work is done by `chaos.faults.Faults`
and `chaos.client.ToxiproxyClient`, imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from breakwater.arguments import duration, fraction, non_negative_int, port, positive_int, url

# Fault commands: name → (Faults method, {option: (type, default, help)}).
FAULT_COMMANDS: dict[str, tuple[str, dict[str, tuple[Callable[[str], Any], Any, str]]]] = {
    "latency": ("latency", {
        "ms": (non_negative_int, None, "delay in milliseconds"),
        "jitter": (non_negative_int, 0, "random ± milliseconds (default 0)"),
    }),
    "timeout": ("timeout", {"ms": (non_negative_int, 0,
                                   "close after this many ms without data; 0 (default): hold "
                                   "the data until the fault is removed")}),
    "reset-peer": ("reset_peer", {"ms": (non_negative_int, 0,
                                         "reset this many ms after the first data (default 0)")}),
    "bandwidth": ("bandwidth", {"kbps": (positive_int, None, "rate in KB/s (1 KB = 1000 bytes)")}),
    "slicer": ("slicer", {
        "average-size": (positive_int, 64, "average piece size in bytes (default 64)"),
        "size-variation": (non_negative_int, 16, "± bytes around it (default 16)"),
        "delay-us": (non_negative_int, 1000, "microseconds between pieces (default 1000)"),
    }),
    "slow-close": ("slow_close", {"ms": (non_negative_int, None,
                                         "delay of the close in milliseconds")}),
    "limit-data": ("limit_data", {"bytes": (non_negative_int, None,
                                            "close after this many bytes")}),
}

# Options whose `Faults` parameter has another name.
PARAMETER_NAMES = {"bytes": "nbytes"}


def _key_value(text: str) -> tuple[str, int]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"attribute {key} must be an integer") from None


def _faults(args: argparse.Namespace):
    from chaos.faults import Faults

    return Faults(args.toxiproxy)


def _client(args: argparse.Namespace):
    from chaos.client import ToxiproxyClient

    return ToxiproxyClient(args.toxiproxy)


# -- printing ------------------------------------------------------------------------------
def describe_toxic(toxic: dict[str, Any]) -> str:
    """One toxic in a few words: `latency_downstream: latency latency=2000 jitter=0`."""
    attributes = " ".join(f"{k}={v}" for k, v in toxic["attributes"].items())
    toxicity = "" if toxic["toxicity"] == 1 else f" toxicity={toxic['toxicity']:g}"
    return f"{toxic['name']}: {toxic['type']} {attributes}{toxicity}".rstrip()


def format_table(proxies: list[dict[str, Any]]) -> str:
    """Proxies as an aligned table, one line per toxic after the first."""
    if not proxies:
        return "no proxies"
    rows = [("NAME", "ENABLED", "LISTEN", "UPSTREAM", "TOXICS")]
    for proxy in proxies:
        toxics = [describe_toxic(t) for t in proxy["toxics"]] or ["-"]
        rows.append((proxy["name"], "yes" if proxy["enabled"] else "NO (down)",
                     proxy["listen"], proxy["upstream"], toxics[0]))
        rows.extend(("", "", "", "", extra) for extra in toxics[1:])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  " + row[4]
        for row in rows
    )


def format_proxy(proxy: dict[str, Any]) -> str:
    """One proxy in detail, toxics grouped by stream, as `toxiproxy-cli inspect` shows it."""
    lines = [
        f"Name: {proxy['name']}",
        f"Listen: {proxy['listen']}",
        f"Upstream: {proxy['upstream']}",
        f"Enabled: {proxy['enabled']}",
    ]
    for stream in ("upstream", "downstream"):
        toxics = [t for t in proxy["toxics"] if t["stream"] == stream]
        lines.append(f"{stream.capitalize()} toxics:")
        lines.extend(f"  {describe_toxic(t)}" for t in toxics)
        if not toxics:
            lines.append("  (none)")
    return "\n".join(lines)


# -- commands ------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """Print every proxy, its state and toxics."""
    print(format_table(_faults(args).list_proxies()))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Disable a service's proxies, for `--for` or until `chaos up`."""
    faults = _faults(args)
    targets = faults.down(args.service)
    print(f"down: {', '.join(targets)}")
    return _hold(args, lambda: faults.up(args.service), f"down on {args.service}",
                 lambda until: faults.announce_until(targets, "down", until))


def cmd_up(args: argparse.Namespace) -> int:
    """Enable a service's proxies again."""
    print(f"up: {', '.join(_faults(args).up(args.service))}")
    return 0


def make_fault_command(command: str) -> Callable[[argparse.Namespace], int]:
    """The handler of one fault command (`latency`, `timeout`, …)."""
    method, options = FAULT_COMMANDS[command]

    def run(args: argparse.Namespace) -> int:
        from chaos.faults import fault_name

        faults = _faults(args)
        params = {}
        for option in options:
            attribute = option.replace("-", "_")
            params[PARAMETER_NAMES.get(attribute, attribute)] = getattr(args, attribute)
        params["stream"] = args.stream
        if args.toxicity is not None:
            params["toxicity"] = args.toxicity
        targets = getattr(faults, method)(args.service, **params)
        shown = " ".join(f"{k}={v}" for k, v in params.items())
        print(f"{command} on {', '.join(targets)}: {shown}")
        return _hold(args, lambda: faults.undo(args.service, method, args.stream),
                     f"{command} on {args.service}",
                     lambda until: faults.announce_until(targets, fault_name(method, args.stream),
                                                         until))

    return run


def _hold(args: argparse.Namespace, undo: Callable[[], Any], what: str,
          announce: Callable[[float], Any] = lambda _until: None) -> int:
    """With `--for`, note the end in the proxy's event log (watchers show the time left), wait
    showing a countdown, then undo; Ctrl-C undoes at once."""
    if not args.duration:
        return 0
    deadline = time.monotonic() + args.duration
    announce(time.time() + args.duration)
    interactive = sys.stderr.isatty()
    status = 0
    try:
        while (left := deadline - time.monotonic()) > 0:
            if interactive:
                print(f"\r{what}: {left:5.0f}s left (Ctrl-C to end now) ", end="",
                      file=sys.stderr, flush=True)
            time.sleep(min(left, 1.0))
    except KeyboardInterrupt:
        status = 130
    finally:
        if interactive:
            print(file=sys.stderr)
        undo()
        print(f"{what}: removed")
    return status


def cmd_clear(args: argparse.Namespace) -> int:
    """Remove a service's toxics and enable its proxies."""
    print(f"cleared: {', '.join(_faults(args).clear(args.service))}")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    """Enable every proxy and remove every toxic."""
    _faults(args).clear_all()
    print("reset: every proxy enabled, every toxic removed")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    """Create a proxy (`toxiproxy-cli create`)."""
    proxy = _client(args).create_proxy(args.name, args.upstream, args.listen)
    print(f"Created new proxy {proxy['name']} listening on {proxy['listen']}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Show one proxy and its toxics."""
    print(format_proxy(_client(args).proxy(args.name)))
    return 0


def cmd_toggle(args: argparse.Namespace) -> int:
    """Enable a disabled proxy, disable an enabled one."""
    client = _client(args)
    enabled = not client.proxy(args.name)["enabled"]
    client.update_proxy(args.name, enabled=enabled)
    print(f"Proxy {args.name} is now {'enabled' if enabled else 'disabled'}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a proxy."""
    _client(args).delete_proxy(args.name)
    print(f"Deleted proxy {args.name}")
    return 0


def cmd_toxic_add(args: argparse.Namespace) -> int:
    """Add a toxic by hand (`toxiproxy-cli toxic add`)."""
    toxic = _client(args).add_toxic(
        args.proxy, args.type, dict(args.attribute or []), args.stream,
        1.0 if args.toxicity is None else args.toxicity, args.toxic_name,
    )
    print(f"Added {toxic['stream']} {toxic['type']} toxic '{toxic['name']}' on {args.proxy}")
    return 0


def cmd_toxic_update(args: argparse.Namespace) -> int:
    """Change a toxic's attributes or toxicity."""
    toxic = _client(args).update_toxic(
        args.proxy, args.toxic_name, dict(args.attribute or []), args.toxicity
    )
    print(f"Updated toxic '{toxic['name']}' on {args.proxy}: {describe_toxic(toxic)}")
    return 0


def cmd_toxic_remove(args: argparse.Namespace) -> int:
    """Remove a toxic by name."""
    _client(args).remove_toxic(args.proxy, args.toxic_name)
    print(f"Removed toxic '{args.toxic_name}' on {args.proxy}")
    return 0


def cmd_toxiproxy(args: argparse.Namespace) -> int:
    """Run the fault proxy server in the foreground; a port in use is the usual error line."""
    from chaos.toxiproxy.__main__ import serve
    from chaos.toxiproxy.server import new_event_loop

    loop = new_event_loop()
    try:
        return loop.run_until_complete(serve(args.host, args.port, args.config))
    finally:
        loop.close()


# -- parsers -------------------------------------------------------------------------------
def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--toxiproxy", metavar="URL", type=url,
                        help="Toxiproxy API (default: $TOXIPROXY_URL or http://127.0.0.1:8474)")
    return common


def _stream_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--upstream", "-u", dest="stream", action="store_const",
                       const="upstream", help="act on client → server data")
    group.add_argument("--downstream", "-d", dest="stream", action="store_const",
                       const="downstream", help="act on server → client data (default)")
    parser.set_defaults(stream="downstream")
    parser.add_argument("--toxicity", type=fraction,
                        help="share of connections the fault hits, 0..1 (default 1)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `chaos` (with its subcommands) and `toxiproxy` to the `breakwater` command."""
    common = _common()
    chaos = subparsers.add_parser("chaos", help="inject faults through Toxiproxy")
    commands = chaos.add_subparsers(dest="chaos_command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str,
            target: str | None = None) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help, description=help[:1].upper() + help[1:]
                                     + ".", parents=[common])
        if target == "service":
            parser.add_argument("service", help="a service (every instance of it: product) or "
                                "one instance (product-2); `breakwater chaos list` shows them")
        elif target == "name":
            parser.add_argument("name", help="the proxy's name (`breakwater chaos list`)")
        parser.set_defaults(func=func)
        return parser

    add("list", cmd_list, "list proxies, their state and toxics")
    down = add("down", cmd_down, "take a service down (disable its proxies)", "service")
    down.add_argument("--for", dest="duration", type=duration, metavar="DURATION",
                      help="bring it back up after this long (e.g. 30s, 2m); "
                      "without it, until `breakwater chaos up`")
    add("up", cmd_up, "bring a service back up", "service")
    for name, (_, options) in FAULT_COMMANDS.items():
        parser = add(name, make_fault_command(name), f"add a {name} fault", "service")
        for option, (kind, default, text) in options.items():
            parser.add_argument(f"--{option}", type=kind, default=default,
                                required=default is None, help=text)
        _stream_options(parser)
        parser.add_argument("--for", dest="duration", type=duration, metavar="DURATION",
                            help="remove the fault after this long (e.g. 30s, 2m); "
                            "without it, until `breakwater chaos clear`")
    add("clear", cmd_clear, "remove a service's toxics and bring it up", "service")
    add("reset", cmd_reset, "enable every proxy and remove every toxic")

    create = add("create", cmd_create, "create a proxy", "name")
    create.add_argument("--listen", "-l", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1:0, a free port)")
    create.add_argument("--upstream", "-u", required=True, metavar="HOST:PORT",
                        help="address to proxy to")
    add("inspect", cmd_inspect, "show one proxy and its toxics", "name")
    add("toggle", cmd_toggle, "enable a disabled proxy, disable an enabled one", "name")
    add("delete", cmd_delete, "delete a proxy", "name")

    toxic = commands.add_parser("toxic", help="add, update or remove toxics by hand")
    toxic_commands = toxic.add_subparsers(dest="toxic_command", metavar="ACTION", required=True)
    for action, func in (("add", cmd_toxic_add), ("update", cmd_toxic_update),
                         ("remove", cmd_toxic_remove)):
        parser = toxic_commands.add_parser(action, help=f"{action} a toxic", parents=[common])
        parser.add_argument("proxy", help="proxy name")
        parser.add_argument("--toxicName", "-n", "--name", dest="toxic_name",
                            required=action != "add", help="toxic name")
        if action != "remove":
            parser.add_argument("--attribute", "-a", action="append", type=_key_value,
                                metavar="KEY=VALUE", help="toxic attribute (repeatable)")
        if action == "add":
            parser.add_argument("--type", "-t", required=True, help="toxic type")
            _stream_options(parser)
        elif action == "update":
            parser.add_argument("--toxicity", type=fraction,
                                help="share of connections the toxic hits, 0..1")
        parser.set_defaults(func=func)

    server = subparsers.add_parser("toxiproxy", help="run the fault proxy server",
                                   description="Run the Toxiproxy-compatible fault proxy in "
                                   "the foreground (Ctrl-C stops it).")
    server.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    server.add_argument("--port", type=port, default=8474,
                        help="API port (default 8474); 0 picks a free one")
    server.add_argument("--config", metavar="FILE",
                        help="JSON array of proxies to create before listening")
    server.set_defaults(func=cmd_toxiproxy)
