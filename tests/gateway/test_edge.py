"""Token checks and the login rate limit at the edge: refusals never reach an upstream."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from gateway.edge import LoginRateLimiter
from services.common.errors import RateLimited
from services.common.tokens import TokenSigner, generate_keypair, public_jwk


@pytest.mark.parametrize("path", ["/api/v1/cart", "/api/v1/orders", "/api/v1/users/me"])
def test_protected_route_without_a_token_is_401_before_any_upstream(start_gateway, upstreams, path):
    gateway = start_gateway()
    response = gateway.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"
    assert sum(len(fake.seen) for fake in upstreams.values()) == 0


@pytest.mark.parametrize("authorization", ["Bearer not.a.token", "Basic dXNlcjpwdw==", "Bearer "])
def test_malformed_token_is_401(start_gateway, upstreams, authorization):
    gateway = start_gateway()
    response = gateway.get("/api/v1/cart", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert upstreams["cart"].seen == []


def test_expired_token_is_401(start_gateway, upstreams, make_token):
    gateway = start_gateway()
    token = make_token(1, ttl=60, now=time.time() - 3600)
    response = gateway.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    assert upstreams["order"].seen == []


def test_token_signed_by_another_key_is_401(start_gateway, upstreams):
    other_private, other_public = generate_keypair()
    signer = TokenSigner(
        other_private, other_public, issuer="breakwater-auth", audience="breakwater"
    )
    token, _ = signer.issue(1, "mallory@example.com", "Mallory", "gold")
    gateway = start_gateway()
    response = gateway.get("/api/v1/cart", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert upstreams["cart"].seen == []


def test_valid_token_passes_with_its_authorization_header(start_gateway, upstreams, bearer):
    gateway = start_gateway()
    response = gateway.get("/api/v1/cart", headers=bearer)
    assert response.status_code == 200
    assert upstreams["cart"].seen[-1].headers["Authorization"] == bearer["Authorization"]


def test_public_routes_need_no_token(start_gateway, upstreams):
    gateway = start_gateway()
    assert gateway.get("/api/v1/products").status_code == 200
    assert gateway.post("/api/v1/auth/login", json={}).status_code == 200


def test_key_fetched_from_auth_survives_an_auth_outage(
    start_gateway, upstreams, keypair, bearer, tmp_path
):
    jwks = {"keys": [public_jwk(keypair[1])]}
    upstreams["auth"].answer(body=json.dumps(jwks).encode())
    gateway = start_gateway(token_public_key_file=str(tmp_path / "absent.pem"))
    assert gateway.get("/api/v1/cart", headers=bearer).status_code == 200
    assert upstreams["auth"].seen[0].path == "/.well-known/jwks.json"
    upstreams["auth"].stop()
    for _ in range(3):
        assert gateway.get("/api/v1/cart", headers=bearer).status_code == 200
    assert gateway.admin_get("/gateway/upstreams").json()["token_keys"]


def test_no_key_anywhere_is_503_not_a_pass(start_gateway, upstreams, bearer, tmp_path):
    upstreams["auth"].stop()
    gateway = start_gateway(token_public_key_file=str(tmp_path / "absent.pem"))
    response = gateway.get("/api/v1/cart", headers=bearer)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "token_key_unavailable"
    assert upstreams["cart"].seen == []


def test_login_attempts_are_rate_limited_per_client_ip(start_gateway, upstreams):
    gateway = start_gateway(login_burst=3, login_rate_per_minute=6)
    answers = [gateway.post("/api/v1/auth/login", json={"email": "a@b.c"}) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json()["error"]["code"] == "rate_limited"
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 10
    assert upstreams["auth"].count("/api/v1/auth/login") == 3
    assert gateway.get("/api/v1/products").status_code == 200  # only logins are limited
    assert (
        'breakwater_gateway_rate_limited_total{group="auth_login"} 2.0'
        in gateway.admin_get("/metrics").text
    )


def test_rate_limit_keys_on_forwarded_client_behind_a_trusted_proxy(start_gateway, upstreams):
    gateway = start_gateway(login_burst=1, trust_forwarded=True)
    first = gateway.post("/api/v1/auth/login", headers={"X-Forwarded-For": "198.51.100.1"}, json={})
    second = gateway.post(
        "/api/v1/auth/login", headers={"X-Forwarded-For": "198.51.100.2"}, json={}
    )
    again = gateway.post("/api/v1/auth/login", headers={"X-Forwarded-For": "198.51.100.1"}, json={})
    assert (first.status_code, second.status_code, again.status_code) == (200, 200, 429)


def test_token_bucket_refills_with_time():
    now = [100.0]
    limiter = LoginRateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    limiter.check("ip")
    limiter.check("ip")
    with pytest.raises(RateLimited) as refused:
        limiter.check("ip")
    assert refused.value.retry_after == 1
    now[0] += 1.0
    limiter.check("ip")
    limiter.check("other-ip")


def test_token_bucket_forgets_the_oldest_clients_beyond_its_bound():
    limiter = LoginRateLimiter(per_minute=1, burst=1, max_clients=2, clock=lambda: 0.0)
    for ip in ("a", "b", "c"):
        limiter.check(ip)
    limiter.check("a")  # "a" was evicted, so it starts with a full bucket again


def test_a_new_request_id_is_32_hex_digits_and_a_forked_worker_makes_its_own():
    from gateway.edge import request_id

    made = {request_id({}) for _ in range(2000)}
    assert len(made) == 2000 and all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in made)
    assert request_id({"HTTP_X_REQUEST_ID": "order-42"}) == "order-42"
    assert request_id({"HTTP_X_REQUEST_ID": "two words"}) != "two words"
    # Granian forks its workers after import: a child must not repeat its parent's sequence.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without running anything else
        os.write(write, request_id({}).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert re.fullmatch(r"[0-9a-f]{32}", child) and child != request_id({})


@pytest.mark.parametrize(("headers", "max_bytes", "refused"), [
    ({f"HTTP_X_{i}": "v" for i in range(10)}, 100_000, False),      # at the count limit
    ({f"HTTP_X_{i}": "v" for i in range(11)}, 100_000, True),       # one header too many
    ({"HTTP_A": "v" * 994}, 1000, False),                            # 1000 bytes with its name
    ({"HTTP_A": "v" * 995}, 1000, True),                             # past the total
    ({"HTTP_A": "v" * 7994}, 100_000, False),                        # 8000 bytes in one field
    ({"HTTP_A": "v" * 7995}, 100_000, True),                         # one field past 8000
    ({"REQUEST_METHOD": "x" * 9000, "HTTP_A": "v"}, 1000, False),    # not a header
])
def test_header_limits_count_size_and_the_largest_field(headers, max_bytes, refused):
    from gateway.edge import check_header_limits
    from services.common.errors import ApiError

    if refused:
        with pytest.raises(ApiError) as raised:
            check_header_limits(headers, max_bytes, 10)
        assert raised.value.status == 431 and raised.value.code == "headers_too_large"
    else:
        check_header_limits(headers, max_bytes, 10)
