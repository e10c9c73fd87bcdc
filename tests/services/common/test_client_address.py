"""The client address and scheme behind trusted proxies, read from the right."""

from __future__ import annotations

import pytest

from services.common.client_address import TrustedProxies, client_address, forwarded_proto


def env(remote: str = "10.0.0.2", xff: str | None = None, proto: str | None = None,
        scheme: str = "http") -> dict[str, str]:
    environ = {"REMOTE_ADDR": remote, "wsgi.url_scheme": scheme}
    if xff is not None:
        environ["HTTP_X_FORWARDED_FOR"] = xff
    if proto is not None:
        environ["HTTP_X_FORWARDED_PROTO"] = proto
    return environ


@pytest.mark.parametrize(("hops", "xff", "expected"), [
    (0, "1.1.1.1", "10.0.0.2"),                        # no proxy trusted: the peer
    (1, "6.6.6.6, 1.1.1.1", "1.1.1.1"),                # the gateway appended 1.1.1.1
    (2, "6.6.6.6, 1.1.1.1, 10.0.0.9", "1.1.1.1"),      # load balancer, then gateway
    (2, "1.1.1.1", "1.1.1.1"),                         # outer proxy bypassed: the gateway saw it
    (1, "", "10.0.0.2"),
    (1, "not-an-address", "10.0.0.2"),
    (1, "6.6.6.6,1.1.1.1 ", "1.1.1.1"),
    (1, "[2001:db8::1]:443", "2001:db8::1"),
])
def test_the_client_is_counted_from_the_right(hops, xff, expected):
    assert client_address(env(xff=xff), TrustedProxies.from_settings(hops)) == expected


def test_a_hop_is_believed_only_from_a_trusted_network():
    proxies = TrustedProxies.from_settings(1, ["10.0.0.0/24"])
    assert client_address(env("10.0.0.2", "1.1.1.1"), proxies) == "1.1.1.1"
    assert client_address(env("192.0.2.7", "1.1.1.1"), proxies) == "192.0.2.7"  # reached directly
    two = TrustedProxies.from_settings(2, ["10.0.0.0/24"])
    assert client_address(env("10.0.0.2", "6.6.6.6, 1.1.1.1"), two) == "1.1.1.1"  # 1.1.1.1 no proxy


def test_https_is_taken_from_the_trusted_hop_only():
    one = TrustedProxies.from_settings(1)
    assert forwarded_proto(env(proto="https"), one) == "https"
    assert forwarded_proto(env(proto="https"), TrustedProxies()) == "http"
    assert forwarded_proto(env(proto="gopher"), one) == "http"
    assert forwarded_proto(env(scheme="https"), TrustedProxies()) == "https"
    assert forwarded_proto(env("192.0.2.7", proto="https"),
                           TrustedProxies.from_settings(1, ["10.0.0.0/8"])) == "http"


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="0 or more"):
        TrustedProxies.from_settings(-1)
    with pytest.raises(ValueError, match="not a network"):
        TrustedProxies.from_settings(1, ["10.0.0.0/99"])
