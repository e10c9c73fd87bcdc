"""Page tokens, host and origin checks; one poller fanned out to every listening page."""

from __future__ import annotations

import threading

import pytest

from console.guard import PageTokens, host_allowed, host_name, same_origin
from console.hub import Hub, TooManyListeners
from tests.support.processes import wait_until


def test_tokens_are_signed_and_expire() -> None:
    now = [1000.0]
    tokens = PageTokens(clock=lambda: now[0], lifetime=60)
    token = tokens.issue()
    assert tokens.valid(token)
    issued, nonce, signature = token.split(".")
    assert not tokens.valid(f"{issued}.{nonce}.{'0' * len(signature)}")
    assert not tokens.valid(f"{int(issued) + 50}.{nonce}.{signature}")  # re-dated
    assert not PageTokens().valid(token)  # another process's secret
    assert not tokens.valid(None) and not tokens.valid("") and not tokens.valid("a.b")
    now[0] += 61
    assert not tokens.valid(token)


@pytest.mark.parametrize(("host", "name"), [
    ("127.0.0.1:8090", "127.0.0.1"), ("localhost", "localhost"), ("[::1]:8090", "[::1]"),
    ("EVIL.example:80", "evil.example"),
])
def test_host_names(host: str, name: str) -> None:
    assert host_name(host) == name


def test_only_loopback_names_unless_allowed() -> None:
    allowed = {"127.0.0.1", "localhost", "[::1]"}
    assert host_allowed("127.0.0.1:8090", allowed) and host_allowed("localhost:1", allowed)
    assert not host_allowed("rebound.example:8090", allowed) and not host_allowed("", allowed)


def test_same_origin() -> None:
    assert same_origin({"Origin": "http://127.0.0.1:8090"}, "http", "127.0.0.1:8090")
    assert not same_origin({"Origin": "http://evil.example"}, "http", "127.0.0.1:8090")
    assert not same_origin({"Origin": "null"}, "http", "127.0.0.1:8090")
    assert same_origin({"Sec-Fetch-Site": "same-origin"}, "http", "127.0.0.1:8090")
    assert not same_origin({"Sec-Fetch-Site": "cross-site"}, "http", "127.0.0.1:8090")
    assert not same_origin({}, "http", "127.0.0.1:8090")


def test_one_read_per_round_whatever_the_number_of_pages() -> None:
    reads = []
    lock = threading.Lock()

    def read() -> dict:
        with lock:
            reads.append(1)
            return {"n": len(reads)}

    hub = Hub(read, interval=0.05, max_listeners=3)
    assert not hub.polling and hub.polls == 0  # nobody watches: nothing is read
    first, second = hub.subscribe(), hub.subscribe()
    got_first = [first.next(2) for _ in range(3)]
    got_second = [second.next(2) for _ in range(3)]
    assert got_first[-1]["n"] >= 3 and got_second[-1]["n"] >= 3
    shared = {u["n"] for u in got_first} & {u["n"] for u in got_second}
    assert shared, "both pages got the same updates"
    with pytest.raises(TooManyListeners):
        hub.subscribe(), hub.subscribe()
    for listener in list(hub._listeners):  # noqa: SLF001 - every page closes
        hub.unsubscribe(listener)
    wait_until(lambda: not hub.polling, timeout=5, message="the poller stops")
    stopped_at = hub.polls
    assert hub.polls == stopped_at
    hub.subscribe()
    wait_until(lambda: hub.polls > stopped_at, timeout=5, message="the poller restarts")
    hub.stop()


def test_a_page_that_falls_behind_loses_the_oldest_updates_only() -> None:
    from console.hub import QUEUE_SIZE, Listener

    listener = Listener()
    for n in range(QUEUE_SIZE + 5):
        listener.put({"n": n})
    assert listener.next(0.1)["n"] == 5
    assert listener.updates.qsize() == QUEUE_SIZE - 1
