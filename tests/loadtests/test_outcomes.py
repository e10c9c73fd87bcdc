"""What counts as a failure: sold-out and rate-limited answers are expected, 5xx is not."""

from __future__ import annotations

import pytest

from loadtests.accounts import accounts_from_seed, hot_slug, read_tokens, write_tokens
from loadtests.outcomes import EXPECTED, FAILURE, OK, classify, error_code, group_of


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (200, None, OK), (201, None, OK),
    (409, "insufficient_stock", EXPECTED), (429, "rate_limited", EXPECTED),
    (409, "slug_taken", FAILURE), (503, "cart_unavailable", FAILURE), (500, None, FAILURE),
    (0, "ConnectionRefusedError", FAILURE), (401, "invalid_token", FAILURE),
])
def test_classify(status: int, code: str | None, outcome: str) -> None:
    assert classify(status, code) == outcome


def test_error_code_reads_the_json_error_body() -> None:
    assert error_code(b'{"error": {"code": "insufficient_stock", "message": "x"}}') == \
        "insufficient_stock"
    assert error_code(b"<html>") is None
    assert error_code(None) is None


@pytest.mark.parametrize(("method", "name", "group"), [
    ("GET", "/api/v1/products/[id]", "catalog"), ("POST", "/api/v1/auth/login", "login"),
    ("GET", "/api/v1/users/me", "account"), ("GET", "/api/v1/orders", "orders"),
    ("POST", "/api/v1/orders", "checkout"), ("DELETE", "/api/v1/cart/items/[id]", "cart"),
])
def test_group_of(method: str, name: str, group: str) -> None:
    assert group_of(method, name) == group


def test_accounts_come_from_the_seed_document(tmp_path) -> None:
    seed = {"password": "pw-123456", "users": ["user1@breakwater.test", "user2@breakwater.test"],
            "flash_sale": {"slug": "flash-sale"}}
    accounts = accounts_from_seed(seed)
    assert [a.email for a in accounts] == ["user1@breakwater.test", "user2@breakwater.test"]
    assert {a.password for a in accounts} == {"pw-123456"}
    assert len(accounts_from_seed({}, default_count=3)) == 3
    assert hot_slug(seed) == "flash-sale"
    path = write_tokens(tmp_path / "tokens.json", {"a@x": "t1"})
    assert read_tokens(path) == [("a@x", "t1")]
