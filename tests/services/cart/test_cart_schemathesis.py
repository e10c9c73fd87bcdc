"""Property-based API tests of cart from its own OpenAPI document (schemathesis, bounded).

With product answering, every response must be below 500 (`not_a_server_error` as shipped)
and every 2xx must match the documented schema. With product down, 503/504 are the intended
answer of an endpoint that needs product, so `not_a_server_error` is told to expect them and
`dependency_errors_are_explained` checks each is a dependency error (`product_unavailable`,
Retry-After, the failed dependency named): a 500 or an unexplained 503 still fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from schemathesis.checks import not_a_server_error

from tests.services.cart.fakes import UpstreamServer, closed_port_url
from tests.services.cart.fuzzing import (
    EXPECT_DEPENDENCY_ERRORS,
    dependency_errors_are_explained,
    fuzz_api,
    success_bodies_match_the_schema,
)


def test_no_server_errors_with_product_up(
        make_cart_app: Callable[..., Flask], tmp_path: Path, product_server: UpstreamServer,
        auth_header: Callable[..., dict]) -> None:
    app = make_cart_app(f"sqlite:///{tmp_path / 'cart.db'}", product_server.url)
    calls = fuzz_api(app, auth_header(1), [not_a_server_error, success_bodies_match_the_schema])
    assert calls > 50


def test_only_dependency_errors_with_product_down(
        make_cart_app: Callable[..., Flask], tmp_path: Path, auth_header: Callable[..., dict]) -> None:
    app = make_cart_app(f"sqlite:///{tmp_path / 'cart.db'}", closed_port_url())
    fuzz_api(app, auth_header(1), [not_a_server_error, dependency_errors_are_explained],
             config=EXPECT_DEPENDENCY_ERRORS)
