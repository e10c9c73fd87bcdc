"""Hostile input gets a 4xx with the usual JSON error, never a 5xx: through the gateway and on
each service directly (auth on the development server, product under gunicorn)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.attacks.edge_stack import EdgeStack, raw_exchange, start_edge_stack, status_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(key_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[EdgeStack]:
    folder = tmp_path_factory.mktemp("edge")
    env = {
        "BREAKWATER_TOKEN_PUBLIC_KEY_FILE": str(key_files[1]),
        "AUTH_TOKEN_PRIVATE_KEY_FILE": str(key_files[0]),
        "BREAKWATER_VAR_DIR": str(folder / "var"),
        "OTEL_TRACES_EXPORTER": "none",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    running = start_edge_stack(env, folder)
    yield running
    running.stop()


def assert_json_client_error(response: requests.Response, status: int | None = None) -> dict:
    """A 4xx carrying `{"error": {"code", "message", "details"}}`."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert error["code"] and error["message"]
    return error


@pytest.mark.parametrize("target", ["gateway", "auth"])
def test_deeply_nested_json_on_login_is_400_not_a_recursion_error(stack, target):
    for depth in (40, 100_000):
        body = "[" * depth + "]" * depth
        response = requests.post(f"{stack.targets[target]}/api/v1/auth/login", data=body,
                                 headers={"Content-Type": "application/json"}, timeout=10)
        error = assert_json_client_error(response, 400)
        assert error["code"] in ("json_too_deep", "too_deeply_nested")


@pytest.mark.parametrize("target", ["gateway", "product"])
@pytest.mark.parametrize("product_id", ["9" * 5000, "9" * 40, "1" + "0" * 19])
def test_huge_product_ids_are_a_4xx(stack, target, product_id):
    for prefix in ("/api/v1/products", "/api/v2/products"):
        response = requests.get(f"{stack.targets[target]}{prefix}/{product_id}", timeout=10)
        if target == "product" and len(product_id) > 4000:
            # gunicorn's own request-line limit (4094) answers first, in its own words.
            assert response.status_code in (400, 414)
            continue
        assert_json_client_error(response)


@pytest.mark.parametrize("target", ["gateway", "auth", "product"])
@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5", "-0"])
def test_negative_or_malformed_content_length_is_refused(stack, target, length):
    url = stack.targets[target]
    request = (f"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
               f"\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n").encode()
    answer = raw_exchange(url, request + b'{"email": "a@b.c", "password": "x"}' + b"x" * 4096)
    assert status_of(answer) == 400, answer[:300]


@pytest.mark.parametrize("target", ["gateway", "auth", "product"])
@pytest.mark.parametrize("path", ["//api/v1/products", "/api/v1/products/", "/api/v1/products//",
                                  "/api//v1/products", "/api/v1/auth//login", "//register",
                                  "/api/v1/products/1/"])
def test_no_internal_address_in_any_location(stack, target, path):
    response = requests.get(stack.targets[target] + path, allow_redirects=False, timeout=10)
    assert response.status_code < 500, response.text[:300]
    for header in ("Location", "Content-Location"):
        location = response.headers.get(header)
        if location is not None:
            parts = urlsplit(location)
            assert not parts.netloc and not parts.scheme, f"{header}: {location}"
            assert not location.startswith("//"), location


def test_the_gateway_never_answers_5xx_to_a_request_smuggling_attempt(stack):
    request = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
               b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = raw_exchange(stack.gateway.url, request)
    assert 400 <= status_of(answer) < 500, answer[:300]
    assert b"breakwater_gateway_requests_total" not in answer


@pytest.mark.parametrize("size", [8_100, 12_000])
def test_one_huge_header_is_a_json_431_at_the_gateway(stack, size):
    response = requests.get(f"{stack.gateway.url}/api/v1/products",
                            headers={"X-Big": "x" * size}, timeout=10)
    assert_json_client_error(response, 431)
