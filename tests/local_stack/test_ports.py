"""Port planning: defaults, the base shift, free ports, and refusing what cannot work."""

from __future__ import annotations

import socket
from itertools import count

import pytest

from local_stack.ports import PortError, PortPlan, instance_name, is_listening, taken


def test_default_plan_follows_the_design_table() -> None:
    plan = PortPlan()
    assert plan.service_port("auth") == 5000
    assert [plan.service_port("product", n) for n in (1, 2, 3)] == [5002, 5012, 5022]
    assert (plan.service_port("cart"), plan.service_port("order")) == (5003, 5004)
    assert (plan.gateway_port(), plan.toxiproxy_port()) == (8080, 8474)
    assert plan.console_port() == 8090
    assert plan.proxy_port(5012) == 25012


def test_port_base_shifts_every_port() -> None:
    plan = PortPlan(6000)
    assert plan.service_port("auth") == 6000
    assert plan.service_port("product", 2) == 6012
    assert (plan.gateway_port(), plan.toxiproxy_port(), plan.console_port()) == (9080, 9474, 9090)
    assert plan.proxy_port(6003) == 26003


def test_base_zero_picks_free_ports_and_lets_the_proxy_choose() -> None:
    numbers = count(40000)
    plan = PortPlan(0, pick_free=lambda: next(numbers))
    assert plan.free
    assert [plan.service_port("product", 1), plan.gateway_port()] == [40000, 40001]
    assert plan.proxy_port(40000) == 0 and plan.toxiproxy_port() == 0
    assert plan.fixed_ports(3) == {}


def test_fixed_ports_names_every_listener() -> None:
    ports = PortPlan().fixed_ports(2)
    assert ports["product-2"] == 5012 and ports["product-2 proxy"] == 25012
    assert ports["gateway"] == 8080 and ports["toxiproxy API"] == 8474
    assert ports["console"] == 8090
    assert len(set(ports.values())) == len(ports)
    assert "console" not in PortPlan().fixed_ports(2, console=False)  # `up --no-console`


@pytest.mark.parametrize("base", [80, 50000, -1])
def test_out_of_range_base_is_refused(base: int) -> None:
    with pytest.raises(PortError, match="port base"):
        PortPlan(base)


def test_unknown_service_and_replica_range() -> None:
    with pytest.raises(PortError):
        PortPlan().service_port("search")
    with pytest.raises(PortError):
        PortPlan().service_port("product", 0)


def test_instance_names() -> None:
    assert instance_name("product", 2) == "product-2"
    assert instance_name("product", 1) == "product-1"
    assert instance_name("cart") == "cart"
    assert instance_name("cart", 2) == "cart-2"


def test_taken_reports_listening_ports() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert is_listening(port)
        assert taken({"gateway": port, "auth": 0}) == {"gateway": port}
    assert not is_listening(port)


def test_free_ports_come_from_below_the_ephemeral_range(monkeypatch, tmp_path) -> None:
    from local_stack import ports

    low = ports._ephemeral_low()
    picked = {ports.free_port() for _ in range(20)}
    assert all(ports.FREE_PORTS_FROM <= port < low for port in picked)
    # One that is listening is never chosen: with every choice but one taken, that one it is.
    with socket.socket() as taken:
        taken.bind((ports.HOST, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        choices = iter([busy, busy, busy + 1 if busy + 1 < 65536 else busy - 1])
        monkeypatch.setattr(ports.random, "randrange", lambda a, b: next(choices))
        monkeypatch.setattr(ports, "_ephemeral_low", lambda: 65000)
        assert ports.free_port() != busy
    monkeypatch.undo()
    # No room below the range (a host that starts it low): the kernel's own choice.
    range_file = tmp_path / "ip_local_port_range"
    range_file.write_text("10500\t60999\n")
    monkeypatch.setattr(ports, "_EPHEMERAL_RANGE", str(range_file))
    assert ports._ephemeral_low() == 10500
    assert ports.free_port() >= 10500
