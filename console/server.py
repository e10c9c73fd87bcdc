"""Serving the console: gunicorn, one gthread worker (one poller shared by every page).

    python -m console --port 8090 --gateway-admin http://127.0.0.1:8081 --toxiproxy …

One worker, because the live view is polled once and fanned out to every open page from that
process; threads, because each open page holds one for its event stream.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from console.settings import ConsoleSettings

GRACEFUL_SECONDS = 2  # open event streams never end by themselves


def _announce(server: Any) -> None:
    for listener in server.LISTENERS:
        host, port = listener.sock.getsockname()[:2]
        print(f"console listening on http://{host}:{port}", flush=True)


class ConsoleServer(BaseApplication):
    """gunicorn running `console.create_app(settings)`."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        """gunicorn's settings for the console (no config file, no command line)."""
        options = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "worker_class": "gthread", "workers": 1, "threads": self.settings.threads,
            "timeout": 30, "graceful_timeout": GRACEFUL_SECONDS, "keepalive": 75,
            "accesslog": None, "errorlog": "-", "when_ready": _announce,
        }
        known = self.cfg.settings
        if "control_socket_disable" in known:  # gunicorn 25+ would share one socket path
            options["control_socket_disable"] = True
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """The WSGI app, built in the worker (after the fork)."""
        from console.app import create_app

        return create_app(self.settings)


def serve(settings: ConsoleSettings) -> int:
    """Run the console in the foreground until SIGTERM or Ctrl-C."""
    ConsoleServer(settings).run()
    return 0
