"""The fault view, fed by the proxy's `/events`, and the controls behind the page's buttons."""

from __future__ import annotations

import pytest

from chaos.client import ToxiproxyClient
from chaos.faults import Faults
from console.controls import FaultControls, FaultRequest, FaultRequestError, parse_fault_request
from console.sources.faults import FaultWatch
from tests.chaos.conftest import Api


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ManualTimer:
    """threading.Timer's interface, fired by the test."""

    made: list[ManualTimer] = []

    def __init__(self, seconds: float, function, args=()) -> None:  # noqa: ANN001
        self.seconds, self.function, self.args = seconds, function, args
        self.cancelled = self.started = False
        self.daemon = False
        ManualTimer.made.append(self)

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        if not self.cancelled:
            self.function(*self.args)


@pytest.fixture
def timers() -> list[ManualTimer]:
    ManualTimer.made = []
    return ManualTimer.made


def test_the_view_follows_events_and_shows_time_left(shop: Api, server) -> None:
    import time

    clock = Clock(time.time())
    watch = FaultWatch(ToxiproxyClient(server.url), clock=clock)
    assert [p["name"] for p in watch.poll()["proxies"]] == ["cart", "product-1", "product-2"]
    faults = Faults(server.url)
    faults.latency("cart", ms=300)
    faults.announce_until(["cart"], "latency_downstream", clock.now + 30)
    faults.down("product-2")
    view = watch.poll()
    cart = next(p for p in view["proxies"] if p["name"] == "cart")
    assert cart["toxics"][0]["name"] == "latency_downstream"
    assert cart["toxics"][0]["attributes"]["latency"] == 300
    assert 29 <= cart["toxics"][0]["left"] <= 30
    down = next(p for p in view["proxies"] if p["name"] == "product-2")
    assert down["enabled"] is False and down["down_left"] is None  # not time-boxed
    assert view["event_log"] is True
    assert [e["what"] for e in view["recent"]][:3] == ["proxy_disabled", "fault_timed",
                                                       "toxic_added"]
    faults.clear("cart")
    cart = next(p for p in watch.poll()["proxies"] if p["name"] == "cart")
    assert cart["toxics"] == [] and ("cart", "latency_downstream") not in watch.deadlines


def test_events_are_read_incrementally(shop: Api, server) -> None:
    watch = FaultWatch(ToxiproxyClient(server.url))
    watch.poll()
    seen = len(watch.recent)
    Faults(server.url).down("cart")
    watch.poll()
    watch.poll()
    assert len(watch.recent) == seen + 1 and watch.recent[-1]["what"] == "proxy_disabled"


def test_without_an_event_log_the_proxies_are_read_every_time(plain_toxiproxy) -> None:
    watch = FaultWatch(ToxiproxyClient(plain_toxiproxy.url))
    view = watch.poll()
    assert view["event_log"] is False and view["proxies"][0]["enabled"] is False
    assert Faults(plain_toxiproxy.url).announce_until(["cart"], "down", 1.0) is False


@pytest.mark.parametrize(("body", "message"), [
    ({"target": "cart", "kind": "earthquake"}, "kind must be one of"),
    ({"target": "../etc", "kind": "down"}, "target must name"),
    ({"kind": "down"}, "target must name"),
    ({"target": "cart", "kind": "latency"}, "latency needs ms"),
    ({"target": "cart", "kind": "latency", "ms": -1}, "ms must be between"),
    ({"target": "cart", "kind": "latency", "ms": "soon"}, "ms must be a number"),
    ({"target": "cart", "kind": "latency", "ms": 1.5}, "whole number"),
    ({"target": "cart", "kind": "latency", "ms": True}, "ms must be a number"),
    ({"target": "cart", "kind": "down", "ms": 5}, "down takes no ms"),
    ({"target": "cart", "kind": "timeout", "stream": "sideways"}, "stream must be"),
    ({"target": "cart", "kind": "timeout", "toxicity": 2}, "toxicity must be"),
    ({"target": "cart", "kind": "down", "seconds": 99999}, "seconds must be"),
    ({"target": "cart", "kind": "down", "seconds": -3}, "seconds must be"),
    (["cart"], "send a JSON object"),
])
def test_bad_requests_are_refused_with_the_field_named(body, message: str) -> None:
    with pytest.raises(FaultRequestError, match=message) as error:
        parse_fault_request(body)
    assert error.value.status == 400


def test_a_well_formed_request() -> None:
    request = parse_fault_request({"target": "product-2", "kind": "latency", "ms": 250,
                                   "jitter": "10", "stream": "upstream", "seconds": 30})
    assert request == FaultRequest("product-2", "latency", {"ms": 250, "jitter": 10},
                                   "upstream", 1.0, 30.0)
    assert request.name == "latency_upstream"


def test_a_time_boxed_fault_is_noted_and_removed_when_its_timer_fires(
        shop: Api, server, timers: list[ManualTimer]) -> None:
    controls = FaultControls(Faults(server.url), clock=Clock(1000.0), timer=ManualTimer)
    done = controls.add(parse_fault_request({"target": "product", "kind": "down",
                                             "seconds": 20}))
    assert done == {"proxies": ["product-1", "product-2"], "fault": "down", "until": 1020.0}
    assert not shop.get("/proxies/product-1").json()["enabled"]
    assert controls.deadlines() == {("product-1", "down"): 1020.0,
                                    ("product-2", "down"): 1020.0}
    notes = [e for e in shop.get("/events").json() if e["event"] == "fault_timed"]
    assert {(n["proxy"], n["until"]) for n in notes} == {("product-1", 1020.0),
                                                        ("product-2", 1020.0)}
    assert timers[0].seconds == 20 and timers[0].started and timers[0].daemon
    timers[0].fire()
    assert shop.get("/proxies/product-1").json()["enabled"]
    assert controls.deadlines() == {}


def test_clearing_by_hand_cancels_the_timer_so_a_later_fault_stays(
        shop: Api, server, timers: list[ManualTimer]) -> None:
    controls = FaultControls(Faults(server.url), timer=ManualTimer)
    controls.add(parse_fault_request({"target": "cart", "kind": "latency", "ms": 100,
                                      "seconds": 5}))
    controls.clear("cart")
    assert timers[0].cancelled and controls.deadlines() == {}
    controls.add(parse_fault_request({"target": "cart", "kind": "latency", "ms": 100}))
    timers[0].fire()  # the old timer, had it not been cancelled, would remove this one
    assert shop.get("/proxies/cart/toxics").json()[0]["name"] == "latency_downstream"
    controls.reset()
    assert shop.get("/proxies/cart/toxics").json() == []


def test_unknown_targets_and_an_unreachable_proxy_have_their_own_status(shop: Api,
                                                                        server) -> None:
    with pytest.raises(FaultRequestError) as unknown:
        FaultControls(Faults(server.url)).add(FaultRequest("basket", "down"))
    assert unknown.value.status == 404 and "known services" in str(unknown.value)
    with pytest.raises(FaultRequestError) as away:
        FaultControls(Faults("http://127.0.0.1:1", timeout=0.5)).add(FaultRequest("cart", "down"))
    assert away.value.status == 502
