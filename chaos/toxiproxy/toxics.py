"""Toxics as the API sees them: types, attributes, defaults, JSON parsing and validation.

What a toxic *does* to a connection lives in `stages.py`; this module only knows the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors

STREAMS = ("upstream", "downstream")

# Every attribute of every type, with Toxiproxy's zero defaults. A toxic's JSON always lists
# all of them, whatever the request sent.
ATTRIBUTES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


@dataclass
class Toxic:
    """One toxic of a proxy: shared by every connection of that proxy in its stream."""

    name: str
    type: str
    stream: str
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        """`upstream` or `downstream`: the stream as sent may be in any case (`Upstream`)."""
        return self.stream.lower()

    def to_json(self) -> dict[str, Any]:
        """The toxic as the API shows it."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


def fold_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """Lower-case the keys, as Go's JSON decoder matches them case-insensitively.

    A null value counts as absent, since Go leaves the field untouched for a null.
    """
    return {key.lower(): value for key, value in obj.items() if value is not None}


def _string(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise errors.bad_request_body(f"{key} must be a string")
    return value


def _toxicity(body: dict[str, Any], default: float) -> float:
    value = body.get("toxicity", default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.bad_request_body("toxicity must be a number")
    return float(value)


def _attributes(toxic_type: str, raw: Any, current: dict[str, int]) -> dict[str, int]:
    """Merge the attributes sent into `current`, ignoring keys the type does not have."""
    if not isinstance(raw, dict):
        raise errors.bad_request_body("attributes must be an object")
    merged = dict(current)
    known = ATTRIBUTES[toxic_type]
    for key, value in fold_keys(raw).items():
        if key not in known:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.bad_request_body(f"attribute {key} must be an integer")
        merged[key] = value
    return merged


def validate(toxic_type: str, attributes: dict[str, int]) -> None:
    """Reject values that make the real Toxiproxy crash or spin, with a clear 400.

    A bandwidth rate of 0 (or less) is accepted: Toxiproxy holds the data until the toxic is
    removed, and clients such as `toxiproxy-cli toxic add -t bandwidth` rely on that.
    """
    if toxic_type == "slicer":
        if attributes["average_size"] < 1:
            raise errors.invalid_attribute("slicer average_size must be at least 1 byte")
        if attributes["size_variation"] < 0:
            raise errors.invalid_attribute("slicer size_variation must not be negative")
        if attributes["size_variation"] > attributes["average_size"]:
            raise errors.invalid_attribute("slicer size_variation must not exceed average_size")


def parse_new(body: Any, name_taken: Callable[[str], bool]) -> Toxic:
    """Build a toxic from a create request, applying Toxiproxy's defaults and checks in order."""
    if not isinstance(body, dict):
        raise errors.bad_request_body("expected a JSON object")
    body = fold_keys(body)
    # Kept as sent, as Toxiproxy keeps it; only its meaning is case-insensitive.
    stream = _string(body, "stream", "downstream")
    if stream.lower() not in STREAMS:
        raise errors.invalid_stream()
    toxic_type = _string(body, "type", "")
    name = _string(body, "name", "") or f"{toxic_type}_{stream}"
    if toxic_type not in ATTRIBUTES:
        raise errors.invalid_toxic_type()
    if name_taken(name):
        raise errors.toxic_exists()
    toxicity = _toxicity(body, 1.0)
    attributes = _attributes(toxic_type, body.get("attributes", {}), ATTRIBUTES[toxic_type])
    validate(toxic_type, attributes)
    return Toxic(name, toxic_type, stream, toxicity, attributes)


def parse_update(toxic: Toxic, body: Any) -> tuple[dict[str, int], float]:
    """The attributes and toxicity an update request asks for, merged over the toxic's own."""
    if not isinstance(body, dict):
        raise errors.bad_request_body("expected a JSON object")
    body = fold_keys(body)
    attributes = _attributes(toxic.type, body.get("attributes", {}), toxic.attributes)
    toxicity = _toxicity(body, toxic.toxicity)
    validate(toxic.type, attributes)
    return attributes, toxicity
