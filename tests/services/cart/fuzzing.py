"""Run schemathesis over every operation of a service's OpenAPI document, bounded.

The schemathesis pytest plugin's `from_fixture` does not work with this pytest, so the tests
drive its strategies through Hypothesis directly: one `@given` per operation, positive and
negative data, on the app's WSGI test client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance
from schemathesis.config import SchemathesisConfig

# Used only where an upstream is down on purpose: there a 503/504 is the intended answer
# (and `dependency_errors_are_explained` checks it is one), everywhere else it is a bug.
EXPECT_DEPENDENCY_ERRORS = {"checks": {"not_a_server_error": {
    "expected-statuses": ["2xx", "3xx", "4xx", "503", "504"]}}}


def dependency_errors_are_explained(ctx: Any, response: Any, case: Any) -> None:
    """A 5xx is allowed only as a documented dependency error."""
    if response.status_code < 500:
        return
    error = response.json()["error"]
    assert response.status_code in (503, 504), f"{response.status_code}: {error}"
    assert error["code"].endswith(("_unavailable", "_timeout")), error
    assert response.headers.get("retry-after"), "a dependency error must say when to retry"
    assert response.headers.get("x-breakwater-failed-dependency"), "it must name the dependency"


def success_bodies_match_the_schema(ctx: Any, response: Any, case: Any) -> Any:
    """`response_schema_conformance` for 2xx only.

    Error bodies are left out on purpose: build_app keeps flask-smorest's default `Error`
    schema in the document, while every error is really `{"error": {code, message, details}}`.
    """
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


def fuzz_api(app: Flask, headers: dict[str, str], checks: Iterable[Callable[..., Any]], *,
             config: dict | None = None, max_examples: int = 20) -> int:
    """Call every operation with generated data and run `checks`; how many calls were made."""
    kwargs = {"config": SchemathesisConfig.from_dict(config)} if config else {}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, **kwargs)
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=max_examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def call(case: Any) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(headers=headers, checks=list(checks))

            call()
    return calls
