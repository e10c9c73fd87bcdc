"""The front's own parts: the client address rule, per-address slots, and a WSGI app run to
completion on a worker thread."""

from __future__ import annotations

import pytest

from gateway.edge import forwarded_client
from gateway.front import ClientSlots, peer_address, run_wsgi


@pytest.mark.parametrize(
    ("forwarded", "hops", "expected"),
    [
        (None, 1, "10.0.0.9"),                                # no header: the peer
        ("203.0.113.7", 0, "10.0.0.9"),                       # not trusted: the peer
        ("203.0.113.7", 1, "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),           # the client's own entry ignored
        ("6.6.6.6, 203.0.113.7, 10.1.1.1", 2, "203.0.113.7"),  # two proxies
        ("203.0.113.7", 3, "203.0.113.7"),                    # fewer hops than trusted
        (" , ", 1, "10.0.0.9"),
    ],
)
def test_the_client_is_counted_from_the_right(forwarded, hops, expected):
    assert forwarded_client("10.0.0.9", forwarded, hops) == expected


def test_peer_address_strips_the_port_and_ipv6_brackets():
    assert peer_address("127.0.0.1:5555") == "127.0.0.1"
    assert peer_address("[::1]:5555") == "::1"


def test_client_slots_cap_each_address_and_come_back():
    slots = ClientSlots(2)
    assert slots.try_enter("a") and slots.try_enter("a")
    assert not slots.try_enter("a")
    assert slots.try_enter("b")
    slots.leave("a")
    assert slots.try_enter("a")
    for _ in range(3):
        slots.leave("a")
    assert slots.in_use("a") == 0


def test_run_wsgi_collects_the_answer_and_closes_the_iterable():
    closed = []

    class Body(list):
        def close(self) -> None:
            closed.append(True)

    def app(environ, start_response):
        start_response("201 Created", [("X-A", "1"), ("Content-Length", "2"), ("Connection", "x")])
        return Body([b"o", b"k"])

    status, headers, body = run_wsgi(app, {})
    assert (status, headers, body, closed) == (201, [("X-A", "1")], b"ok", [True])


def test_the_peer_is_the_client_when_no_hop_is_trusted():
    assert forwarded_client("10.0.0.9", "203.0.113.7", 0) == "10.0.0.9"
    assert forwarded_client("", None, 0) == "unknown"


def test_header_names_remembered_for_the_environ_are_bounded():
    from gateway import front

    names = [f"x-client-{i}" for i in range(5000)] + ["content-type", "content-length"]
    keys = [front._environ_key(name) for name in names]

    assert keys[:10] == [f"HTTP_X_CLIENT_{i}" for i in range(10)]
    assert keys[-2:] == ["CONTENT_TYPE", ""]  # framing: the front has read the body
    assert front._environ_key.cache_info().currsize <= 4096
