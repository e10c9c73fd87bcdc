"""Errors as exceptions, mapped to one JSON shape in one place.

Every error a client sees is `{"error": {"code", "message", "details"}}` with the right status;
no HTML error page and no stack trace ever leaves a process.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Codes for werkzeug's own HTTP errors (routing, size limit, method) in the shop's language.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_field",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable machine-readable code and a human message."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or {}
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of this error."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class InvalidField(ApiError):
    status, code = 422, "invalid_field"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


class DependencyUnavailable(ApiError):
    """A service this one depends on cannot answer now; the client may retry later."""

    status, code = 503, "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kwargs)


class UpstreamTimeout(ApiError):
    status, code = 504, "upstream_timeout"


def error_response(error: ApiError) -> Response:
    """Serialise an ApiError into a JSON response (with `Retry-After` when it has one)."""
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    response.headers.update(error.headers)
    return response


def _from_http_exception(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    details: dict[str, Any] = {}
    data = getattr(exc, "data", None)  # webargs/flask-smorest put validation messages here
    if isinstance(data, dict) and data.get("messages"):
        details["fields"] = data["messages"]
    message = exc.description or exc.name
    if status == 422:
        message = "some fields are invalid; see details.fields"
    elif status == 400 and isinstance(data, dict) and "json" in (data.get("messages") or {}):
        message = "the request body is not valid JSON"
    elif status == 413:
        message = "the request body is larger than this service accepts"
    error = ApiError(message, code=HTTP_CODES.get(status, "http_error"), details=details, status=status)
    if status == 405 and getattr(exc, "valid_methods", None):
        error.details["allowed"] = sorted(exc.valid_methods)
    return error


def register_error_handlers(app: Flask) -> None:
    """Map every exception a request can raise to the JSON error shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return error_response(_from_http_exception(exc))

    @app.errorhandler(RecursionError)
    def _too_deep(_exc: RecursionError) -> Response:
        # Input nested past what a parser can follow is the client's error, not ours.
        return error_response(BadRequest("the request nests too deeply; flatten it",
                                         code="too_deeply_nested"))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(ApiError("the service hit an unexpected error; it has been logged"))
