"""Schemathesis against auth's own `/openapi.json`: no generated request may cause a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

pytestmark = pytest.mark.timeout(120)
EXAMPLES_PER_OPERATION = 25


def test_no_generated_request_gets_a_server_error(app, client, register, login):
    register("ada@example.com")
    headers = {"Authorization": f"Bearer {login()}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      derandomize=True, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def call(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=[not_a_server_error])

            try:
                call()
            except Unsatisfiable:
                # An operation with nothing to get wrong (no parameters, no body) has no
                # negative cases.
                assert mode is GenerationMode.NEGATIVE, operation.label
