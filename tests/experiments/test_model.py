"""Experiment definitions: the shipped ones load, broken ones are refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.experiments.model import DefinitionError, definitions, find, load_definition, parse

MINIMAL = {
    "name": "x", "version": 1, "load": {"scenario": "mixed", "duration": 20},
    "windows": {"baseline": [1, 5], "fault": [5, 10]},
    "faults": [{"target": "cart", "kind": "down", "at": 5, "until": 10}],
    "hypothesis": [{"check": "error_rate", "groups": ["catalog"], "window": "fault", "max": 0}],
}


def test_every_shipped_definition_loads() -> None:
    found = definitions()
    assert {"cart-outage", "cart-latency", "product-scaling", "flash-sale-integrity"} <= set(found)
    outage = found["cart-outage"]
    assert outage.faults[0].kind == "down" and outage.faults[0].target == "cart"
    assert {c.check for c in outage.hypothesis} >= {"error_rate", "latency",
                                                    "breaker_opens_within"}


def test_variants_replace_the_faults() -> None:
    reset = find("cart-latency.reset")
    assert reset.name == "cart-latency.reset"
    assert [f.kind for f in reset.faults] == ["reset_peer"]
    with pytest.raises(DefinitionError, match="no variant"):
        find("cart-latency.nope")


def test_scaling_stretches_every_time() -> None:
    half = parse(MINIMAL).scaled(0.5)
    assert half.duration == 10
    assert half.windows["fault"] == (2.5, 5.0)
    assert (half.faults[0].at, half.faults[0].until) == (2.5, 5.0)


@pytest.mark.parametrize(("change", "message"), [
    ({"version": "one"}, "version"),
    ({"load": {"scenario": "mixed"}}, "duration"),
    ({"faults": [{"target": "cart", "kind": "explode", "at": 1}]}, "unknown fault kind"),
    ({"faults": [{"target": "cart", "kind": "down", "at": 5, "until": 2}]}, "after `at`"),
    ({"hypothesis": [{"check": "vibes"}]}, "unknown check"),
    ({"hypothesis": [{"check": "error_rate", "groups": ["catalog"], "window": "nope",
                      "max": 0}]}, "no window named"),
    ({"hypothesis": [{"check": "latency", "groups": ["catalog"], "window": "fault"}]},
     "max_ms or max_vs_baseline"),
    ({"hypothesis": [{"check": "error_rate", "groups": ["catalog"], "window": "fault",
                      "max": 0, "colour": "red"}]}, "unknown field"),
    ({"windows": {"fault": [9, 3]}}, "start < end"),
])
def test_broken_definitions_are_refused(change: dict, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        parse({**MINIMAL, **change})


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(DefinitionError, match="bad.yaml"):
        load_definition(path)
