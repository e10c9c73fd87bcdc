"""`python -m chaos.toxiproxy`: run the fault proxy server in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import Server, load_config, new_event_loop


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
    parser.add_argument("--port", type=int, default=8474, help="API port; 0 picks a free one")
    parser.add_argument("--config", help="JSON array of proxies to create before listening")


async def serve(host: str, port: int, config_path: str | None) -> int:
    """Run until SIGTERM or SIGINT; prints the bound address for supervisors to parse."""
    config = load_config(config_path) if config_path else None
    server = Server(host, port, config)
    await server.start()
    print(f"toxiproxy API listening on {server.host}:{server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()
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
