"""Argument types shared by the commands: each refuses a bad value while parsing, before any
command creates a folder or starts a process, with argparse's own `breakwater X: error: …`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

MAX_PORT = 65535


def duration(text: str) -> float:
    """`30s`, `2m`, `1m30s`, `500ms`, `1h` or plain seconds, more than 0."""
    from loadtests.profiles import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be more than 0, got {text!r}")
    return seconds


def url(text: str) -> str:
    """An http:// or https:// address with a host, e.g. http://127.0.0.1:8080."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a URL: {text!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"not an http(s) URL: {text!r} (e.g. http://127.0.0.1:8080)")
    return text.rstrip("/")


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: the system picks a free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"port {value} is out of range: use 1..{MAX_PORT}, or 0 for a free one")
    return value


def _number(kind: type, least: float, inclusive: bool, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if value < least or (value == least and not inclusive):
            bound = f"at least {least:g}" if inclusive else f"more than {least:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _number(int, 1, True, "a whole number")
non_negative_int = _number(int, 0, True, "a whole number")
positive_float = _number(float, 0, False, "a number")
non_negative_float = _number(float, 0, True, "a number")


def fraction(text: str) -> float:
    """A probability, 0..1."""
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """A whole number in low..high."""

    def parse(text: str) -> int:
        value = positive_int(text) if low >= 1 else non_negative_int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {text}")
        return int(value)

    parse.__name__ = "whole_number"
    return parse
