"""The contract through `toxiproxy-python`, unchanged: the client programs use."""

from __future__ import annotations

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists


@pytest.fixture
def toxi(server):
    """toxiproxy-python pointed at the embedded server (its address is process-global)."""
    saved = APIConsumer.host, APIConsumer.port
    client = toxiproxy.Toxiproxy()
    client.update_api_consumer(server.server.host, server.server.port)
    yield client
    APIConsumer.host, APIConsumer.port = saved


def test_running_and_version(toxi):
    assert toxi.running()
    assert b'"version"' in toxi.version()


def test_create_list_get_destroy(toxi, echo):
    proxy = toxi.create(upstream=echo.address, name="cart")
    assert proxy.name == "cart" and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    assert set(toxi.proxies()) == {"cart"}
    assert toxi.get_proxy("cart").upstream == echo.address
    with pytest.raises(ProxyExists):
        toxi.create(upstream=echo.address, name="cart")
    assert toxi.destroy(proxy)
    assert toxi.proxies() == {}


def test_toxics_add_list_destroy(toxi, echo):
    proxy = toxi.create(upstream=echo.address, name="cart")
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.add_toxic(type="timeout", stream="upstream", name="t", toxicity=0.5,
                    attributes={"timeout": 10})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "t"}
    assert toxics["t"].stream == "upstream" and toxics["t"].toxicity == 0.5
    assert toxics["latency_downstream"].attributes == {"latency": 100, "jitter": 0}
    assert proxy.get_toxic("t").type == "timeout"
    proxy.destroy_toxic("t")
    assert set(proxy.toxics()) == {"latency_downstream"}


def test_disable_enable_and_down(toxi, echo):
    proxy = toxi.create(upstream=echo.address, name="cart")
    proxy.disable()
    assert toxi.get_proxy("cart").enabled is False
    proxy.enable()
    assert toxi.get_proxy("cart").enabled is True
    with proxy.down():
        assert toxi.get_proxy("cart").enabled is False
    assert toxi.get_proxy("cart").enabled is True


def test_reset_and_populate(toxi, echo):
    proxy = toxi.create(upstream=echo.address, name="cart")
    proxy.add_toxic(type="noop")
    proxy.disable()
    assert toxi.reset()
    assert toxi.get_proxy("cart").enabled and toxi.get_proxy("cart").toxics() == {}
    created = toxi.populate([{"name": "product-1", "upstream": echo.address,
                              "listen": "127.0.0.1:0"}])
    assert [p.name for p in created] == ["product-1"]


def test_not_found(toxi):
    with pytest.raises(NotFound):
        toxiproxy.api.APIConsumer.get("/proxies/nope")
