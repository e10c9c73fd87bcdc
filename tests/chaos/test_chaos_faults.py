"""The faults library: targeting services and instances, named faults, scoped faults."""

from __future__ import annotations

import pytest

from chaos.client import BadRequestError, NotFoundError, UnreachableError
from chaos.faults import Faults, UnknownServiceError


@pytest.fixture
def shop(api, echo):
    """Proxies named like the shop's instances, all in front of the echo server."""
    for name in ("cart", "product-1", "product-2", "productivity"):
        api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                   "upstream": echo.address})
    return api


@pytest.fixture
def faults(server):
    return Faults(server.url)


def toxic_names(api, proxy):
    return [t["name"] for t in api.get(f"/proxies/{proxy}/toxics").json()]


def test_a_service_targets_all_its_instances_and_an_instance_only_itself(shop, faults):
    assert faults.proxies_for("product") == ["product-1", "product-2"]
    assert faults.proxies_for("product-2") == ["product-2"]
    assert faults.proxies_for("cart") == ["cart"]


def test_unknown_service_lists_the_known_ones(shop, faults):
    with pytest.raises(UnknownServiceError) as error:
        faults.latency("basket", ms=10)
    assert "basket" in str(error.value)
    assert "cart" in str(error.value) and "product" in str(error.value)


def test_unreachable_server_names_the_url(monkeypatch):
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    faults = Faults("http://127.0.0.1:1")
    with pytest.raises(UnreachableError, match="127.0.0.1:1"):
        faults.list_proxies()


def test_url_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TOXIPROXY_URL", "http://127.0.0.1:9999/")
    assert Faults().url == "http://127.0.0.1:9999"
    monkeypatch.delenv("TOXIPROXY_URL")
    assert Faults().url == "http://127.0.0.1:8474"


def test_down_and_up(shop, faults):
    assert faults.down("product") == ["product-1", "product-2"]
    proxies = shop.get("/proxies").json()
    assert not proxies["product-1"]["enabled"] and not proxies["product-2"]["enabled"]
    assert proxies["cart"]["enabled"]
    faults.up("product")
    assert all(p["enabled"] for p in shop.get("/proxies").json().values())


def test_latency_is_idempotent_and_updates(shop, faults):
    faults.latency("cart", ms=100, jitter=10, toxicity=0.5)
    faults.latency("cart", ms=200)
    toxic = shop.get("/proxies/cart/toxics/latency_downstream").json()
    assert toxic["attributes"] == {"latency": 200, "jitter": 0}
    assert toxic["toxicity"] == 1.0


@pytest.mark.parametrize("call, toxic_type, attributes", [
    (lambda f: f.timeout("cart", 50), "timeout", {"timeout": 50}),
    (lambda f: f.reset_peer("cart", 5), "reset_peer", {"timeout": 5}),
    (lambda f: f.bandwidth("cart", 64), "bandwidth", {"rate": 64}),
    (lambda f: f.slicer("cart", 32, 8, 100), "slicer",
     {"average_size": 32, "size_variation": 8, "delay": 100}),
    (lambda f: f.limit_data("cart", 1000), "limit_data", {"bytes": 1000}),
    (lambda f: f.slow_close("cart", 20), "slow_close", {"delay": 20}),
    (lambda f: f.latency("cart", 5, stream="upstream"), "latency",
     {"latency": 5, "jitter": 0}),
])
def test_named_faults(shop, faults, call, toxic_type, attributes):
    call(faults)
    (toxic,) = shop.get("/proxies/cart/toxics").json()
    assert toxic["type"] == toxic_type and toxic["attributes"] == attributes


def test_bad_values_are_rejected_before_reaching_the_server(shop, faults):
    with pytest.raises(ValueError):
        faults.bandwidth("cart", 0)
    with pytest.raises(ValueError):
        faults.latency("cart", ms=-1)
    with pytest.raises(ValueError):
        faults.latency("cart", ms=1, toxicity=2)
    with pytest.raises(BadRequestError):
        faults.toxic("cart", "gremlin")


def test_clear_and_clear_all(shop, faults):
    faults.latency("product", ms=10)
    faults.down("product-1")
    faults.timeout("cart", 0)
    faults.clear("product")
    assert toxic_names(shop, "product-1") == [] and toxic_names(shop, "product-2") == []
    assert shop.get("/proxies/product-1").json()["enabled"]
    assert toxic_names(shop, "cart") == ["timeout_downstream"]
    faults.clear_all()
    assert toxic_names(shop, "cart") == []


def test_fault_context_manager_holds_the_fault_during_the_block(shop, faults):
    with faults.fault("cart", "latency", ms=2000, stream="upstream") as targets:
        assert targets == ["cart"]
        assert toxic_names(shop, "cart") == ["latency_upstream"]
    assert toxic_names(shop, "cart") == []
    with pytest.raises(RuntimeError), faults.fault("product", "down"):
        assert not shop.get("/proxies/product-2").json()["enabled"]
        raise RuntimeError("the block failed")
    assert shop.get("/proxies/product-2").json()["enabled"]


def test_list_proxies_and_client_errors(shop, faults):
    assert [p["name"] for p in faults.list_proxies()] == [
        "cart", "product-1", "product-2", "productivity"]
    with pytest.raises(NotFoundError):
        faults.client.proxy("nope")
