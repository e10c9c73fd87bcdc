"""`python -m chaos.toxiproxy`: run the fault proxy server in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import Server, finish_other_tasks, load_config, new_event_loop


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the server, shared with `breakwater toxiproxy`."""
    parser = argparse.ArgumentParser(
        prog="python -m chaos.toxiproxy",
        description="Toxiproxy-compatible TCP fault proxy.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=api_port, default=8474,
                        help="API port, 1..65535 (default 8474); 0 picks a free one")
    parser.add_argument("--config", help="JSON array of proxies to create before listening")


def api_port(text: str) -> int:
    """A TCP port, 0..65535: anything else would be wrapped round by the OS, not refused."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"port {value} is out of range: use 1..65535, or 0 for a free one")
    return value


def read_config(path: str | None) -> list | None:
    """The `--config` file's proxies; a file that cannot be read is reported, not fatal.

    Toxiproxy (api.go `PopulateConfig`) logs a bad config file and serves without it.
    """
    if not path:
        return None
    try:
        return load_config(path)
    except (OSError, ValueError) as exc:
        print(f"toxiproxy: config {path} not applied: {exc}", file=sys.stderr, flush=True)
        return None


async def serve(host: str, port: int, config_path: str | None) -> int:
    """Run until SIGTERM or SIGINT; prints the bound address for supervisors to parse."""
    server = Server(host, port, read_config(config_path))
    await server.start()
    if server.config_error:
        print(f"toxiproxy: config {config_path} not applied: {server.config_error}",
              file=sys.stderr, flush=True)
    print(f"toxiproxy API listening on {server.host}:{server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()
    await finish_other_tasks()
    print("toxiproxy stopped", flush=True)
    return 0


def run(host: str, port: int, config_path: str | None) -> int:
    """Run the server on a fresh (uvloop when available) event loop; exit status."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(serve(host, port, config_path))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"toxiproxy: {exc}", file=sys.stderr)
        return 2
    finally:
        loop.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args.host, args.port, args.config)


if __name__ == "__main__":
    sys.exit(main())
