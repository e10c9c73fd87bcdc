"""How order words product's refusals of a reservation to the shopper."""

from __future__ import annotations

import json

import pytest
import urllib3

from services.common.client import UpstreamResponse
from services.common.errors import Conflict
from services.order.upstreams import CartItem, ShopUpstreams


class OneAnswer:
    """A resilient client that answers every request with one response."""

    def __init__(self, status: int, body: dict, headers: dict[str, str]) -> None:
        self.response = UpstreamResponse(status, urllib3.HTTPHeaderDict(headers),
                                         json.dumps(body).encode(), "http://product")

    def request(self, *args, **kwargs) -> UpstreamResponse:  # noqa: ANN002, ANN003
        return self.response


class Tokens:
    def headers(self, user_id: int) -> dict[str, str]:
        return {"Authorization": "Bearer service", "X-Breakwater-Acting-User": str(user_id)}

    def invalidate(self) -> None:
        pass


def refusal(held: int, retry_after: str | None) -> Conflict:
    body = {"error": {"code": "insufficient_stock", "message": "not enough stock",
                      "details": {"products": [{"product_id": 1, "requested": 3,
                                                "available": 1, "held": held}]}}}
    headers = {"Retry-After": retry_after} if retry_after else {}
    upstreams = ShopUpstreams(OneAnswer(409, body, headers), Tokens(), user_id=7)
    with pytest.raises(Conflict) as raised:
        upstreams.reserve("o-1", [CartItem(1, "W", 100, 3)])
    return raised.value


def test_units_held_by_other_checkouts_come_back_with_product_s_retry_after() -> None:
    error = refusal(held=4, retry_after="5")
    assert error.code == "insufficient_stock" and error.retry_after == 5
    assert error.details["products"][0]["held"] == 4


def test_sold_out_is_final_no_retry_after() -> None:
    error = refusal(held=0, retry_after=None)
    assert error.code == "insufficient_stock" and error.retry_after is None
