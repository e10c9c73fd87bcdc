"""The fault proxy server: the control API and all proxies on one event loop.

`Server` is the asyncio object; `run_in_thread` embeds it in a background thread for tests
and supervisors; `python -m chaos.toxiproxy` runs it in the foreground.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .addresses import ProxyError
from .api import ControlApi, error_response
from .errors import ApiError
from .events import EventLog
from .http import IDLE_TIMEOUT, READ_TIMEOUT, WRITE_TIMEOUT, HttpServer
from .registry import PopulateError, Registry

log = logging.getLogger(__name__)


def load_config(path: str | Path) -> list[dict[str, Any]]:
    """Read a `--config` file: the same JSON array `/populate` takes."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of proxies")
    return data


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed (faster relaying), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Server:
    """A Toxiproxy-compatible server: `await start()`, then `await stop()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        config: list[dict[str, Any]] | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        read_timeout: float = READ_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.config = config
        self.config_error: str | None = None
        self.registry = Registry(EventLog(clock) if clock else EventLog(), rng)
        self.api = ControlApi(self.registry)
        self._http = HttpServer(self.api.handle, error_response, read_timeout=read_timeout,
                                write_timeout=write_timeout, idle_timeout=idle_timeout)

    @property
    def url(self) -> str:
        """The base URL of the control API (valid once started)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Apply the config, then listen; `port` then holds the bound port.

        A config that cannot be applied is logged (`config_error`) and the API serves anyway,
        with the proxies created before the failure, as api.go `PopulateConfig` does.
        """
        if self.config:
            try:
                await self.registry.populate(self.config)
            except PopulateError as exc:
                self.config_error = exc.error.message
            except (ApiError, ProxyError) as exc:
                self.config_error = str(exc)
            if self.config_error:
                log.error("config not applied: %s", self.config_error)
        self.host, self.port = await self._http.start(self.host, self.port)

    async def stop(self) -> None:
        """Close the API listener and its connections, then every proxy and connection."""
        await self._http.close()
        await self.registry.close()


async def finish_other_tasks() -> None:
    """Cancel and await every other task of this loop, so it closes with none pending.

    For the owner of the loop, after `Server.stop()`: toxic stages, dials and API connections
    were cancelled but need a turn of the loop to end.
    """
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class ServerThread:
    """A `Server` running on its own event loop in a daemon thread."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="toxiproxy", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self.server.stop()
        await finish_other_tasks()

    def call(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        """Run `fn` on the server's loop and return its result (for tests that peek inside)."""
        async def wrapper() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def stop(self, timeout: float = 10) -> None:
        """Stop the server and wait for its thread to end."""
        if self._thread.is_alive() and self._stopped is not None:
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    config: list[dict[str, Any]] | None = None,
    rng: random.Random | None = None,
    **options: float,
) -> ServerThread:
    """Start a server in a background thread; returns a handle with `.url` and `.stop()`.

    `options` are the API timeouts (`read_timeout`, `write_timeout`, `idle_timeout`).
    """
    return ServerThread(Server(host, port, config, rng=rng, **options)).start()
