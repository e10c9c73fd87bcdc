"""The naming checker catches each kind of mistake it claims to catch."""

from __future__ import annotations

import pytest

from tests.support.metrics import naming_problems

GOOD = """# HELP breakwater_x_requests_total Requests
# TYPE breakwater_x_requests_total counter
breakwater_x_requests_total{group="a"} 3.0
# HELP breakwater_x_breaker_state Breaker state
# TYPE breakwater_x_breaker_state gauge
breakwater_x_breaker_state{replica="r",state="closed"} 1.0
breakwater_x_breaker_state{replica="r",state="open"} 0.0
"""


def test_a_conforming_exposition_has_no_problem() -> None:
    assert naming_problems(GOOD) == []


@pytest.mark.parametrize(("text", "found"), [
    ("# TYPE breakwater_x_state gauge\nbreakwater_x_state{replica=\"r\"} 2.0\n", "without a `state` label"),
    ("# TYPE breakwater_x_rejected gauge\nbreakwater_x_rejected 4.0\n", "running count"),
    ("# TYPE breakwater_x_total gauge\nbreakwater_x_total 4.0\n", "named like a counter"),
    ("# TYPE Web_Hits counter\nWeb_Hits_total 4.0\n", "namespace"),
    (GOOD.replace('state="open"} 0.0', 'state="open"} 1.0'), "one-hot"),
])
def test_each_kind_of_mistake_is_named(text: str, found: str) -> None:
    assert any(found in problem for problem in naming_problems(text)), naming_problems(text)
