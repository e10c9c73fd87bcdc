"""Both ways the resilient client makes its calls: on the calling thread and on an event loop.

`both_drivers` runs a test twice: as written (`ResilientClient.request` on the test's own
threads) and with every `request` made by `request_async` on one event loop running on a
thread of its own, in the caller's context (its deadline and trace context), as the gateway's
front makes its public reads. A client suite that uses it checks that the two agree.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from services.common.client import ResilientClient, UpstreamResponse


class LoopThread:
    """An event loop serving on a daemon thread until stopped."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="client-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, context: contextvars.Context) -> Any:
        """`coroutine`'s result, run as a task on the loop in `context`."""
        done: Future[Any] = Future()

        def start() -> None:
            task = self.loop.create_task(coroutine, context=context)
            task.add_done_callback(lambda t: _settle(done, t))

        self.loop.call_soon_threadsafe(start)
        return done.result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def _settle(done: Future[Any], task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        done.cancel()
    elif task.exception() is not None:
        done.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        done.set_result(task.result())


@pytest.fixture(params=["thread", "event loop"])
def both_drivers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test as written, then with every client call made by `request_async`."""
    if request.param == "thread":
        yield request.param
        return
    loop = LoopThread()
    on_loop = ResilientClient.request_async

    def request_on_loop(self: ResilientClient, *args: Any, **kwargs: Any) -> UpstreamResponse:
        return loop.run(on_loop(self, *args, **kwargs), contextvars.copy_context())  # type: ignore[no-any-return]

    monkeypatch.setattr(ResilientClient, "request", request_on_loop)
    try:
        yield request.param
    finally:
        monkeypatch.undo()
        loop.stop()
