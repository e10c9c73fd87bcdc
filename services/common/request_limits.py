"""Bounds on what a request may hold, checked once for every service before any route runs.

Hostile input gets a 4xx with the usual JSON error, never a 5xx:
- `Content-Length` must be plain digits (a negative or malformed length is 400 before any byte
  of the body is read, on gunicorn and the development server alike);
- JSON bodies nest at most `MAX_JSON_DEPTH` levels (deeper is 400, not a RecursionError);
- path parameters are bounded: `<int:…>` is 1–32 digits (views check their own ranges), a segment
  at most `MAX_SEGMENT` characters (longer does not match: 404);
- no route redirects on its own (`//` and a trailing slash are not corrected by a redirect), and
  any `Location` a view sets leaves as a path, never naming the host the request reached.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.routing import BaseConverter, IntegerConverter

from services.common.errors import ApiError, BadRequest

MAX_JSON_DEPTH = 32
MAX_SEGMENT = 200
# Far below int()'s 4300-digit limit; each view still checks the range its column holds.
MAX_INT_DIGITS = 32
JSON_TYPES = ("application/json",)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BoundedIntConverter(IntegerConverter):
    """`<int:…>` of at most 32 digits (a longer number matches no route: 404)."""

    regex = rf"\d{{1,{MAX_INT_DIGITS}}}"


class BoundedStringConverter(BaseConverter):
    """`<…>` / `<string:…>`: one path segment of 1–200 characters."""

    def __init__(self, map: Any, minlength: int = 1, maxlength: int | None = None,  # noqa: A002
                 length: int | None = None) -> None:
        super().__init__(map)
        if length is not None:
            bounds = f"{{{int(length)}}}"
        else:
            upper = min(int(maxlength), MAX_SEGMENT) if maxlength is not None else MAX_SEGMENT
            bounds = f"{{{int(minlength)},{upper}}}"
        self.regex = f"[^/]{bounds}"


class ContentLengthGuard:
    """WSGI middleware: 400 for a `Content-Length` that is not plain digits, before the body
    is touched (werkzeug would read a negative length as 0 and a server might read past it)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH")
        if length and not (length.isascii() and length.strip().isdigit()):
            error = BadRequest(
                f"Content-Length {length[:32]!r} is not a number of bytes; send the body's "
                "exact length (or no Content-Length)", code="bad_content_length")
            body = json.dumps(error.to_dict()).encode()
            start_response("400 Bad Request", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body))),
                                               ("Connection", "close")])
            return [body]
        return self.app(environ, start_response)


def json_depth(document: Any) -> int:
    """How deep a parsed JSON document nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_depth(data: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """400 when a JSON body nests deeper than `limit` (cheap unless it has many brackets)."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    too_deep = BadRequest(f"the JSON body nests deeper than {limit} levels; flatten it",
                          code="json_too_deep", details={"max_depth": limit})
    try:
        document = json.loads(data)
    except RecursionError:
        raise too_deep from None
    except ValueError:
        return  # not JSON at all: the route's own parser says so (400)
    if json_depth(document) > limit:
        raise too_deep


def _check_json_body() -> None:
    if request.mimetype in JSON_TYPES and request.content_length:
        check_json_depth(request.get_data(cache=True))


def relative_location(value: str) -> str:
    """`http://host:port/path?q` → `/path?q`: the address this process answers on is internal."""
    parts = urlsplit(value.strip())
    if not parts.scheme and not parts.netloc:
        return value
    path = "/" + parts.path.lstrip("/")  # never "//host", which names another host
    return path + (f"?{parts.query}" if parts.query else "") + (
        f"#{parts.fragment}" if parts.fragment else "")


def _relative_locations(response: Response) -> Response:
    for header in ("Location", "Content-Location"):
        if header in response.headers:
            response.headers[header] = relative_location(response.headers[header])
    return response


def prepare_url_map(app: Flask) -> None:
    """Bounded converters and no corrective redirects; call before registering blueprints."""
    app.url_map.converters.update(default=BoundedStringConverter, string=BoundedStringConverter,
                                  int=BoundedIntConverter)
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False


def install_request_limits(app: Flask) -> None:
    """The body checks (length, JSON depth) and relative `Location`s on `app`."""
    app.wsgi_app = ContentLengthGuard(app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(_check_json_body)
    app.after_request(_relative_locations)


__all__ = ["ApiError", "MAX_JSON_DEPTH", "check_json_depth", "install_request_limits",
           "prepare_url_map", "relative_location"]
