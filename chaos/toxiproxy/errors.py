"""Errors of the control API, each carrying the HTTP status Toxiproxy answers with."""

from __future__ import annotations


class ApiError(Exception):
    """An error the API turns into `{"error": message, "status": status}`."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict:
        """The error body, shaped as Toxiproxy shapes it."""
        return {"error": self.message, "status": self.status}


def bad_request_body(reason: str) -> ApiError:
    """400 for a body that is empty, not JSON, or of the wrong shape."""
    return ApiError(f"bad request body: {reason}", 400)


def missing_field(field: str) -> ApiError:
    """400 for a required field that is absent or empty."""
    return ApiError(f"missing required field: {field}", 400)


def proxy_not_found() -> ApiError:
    return ApiError("proxy not found", 404)


def proxy_exists() -> ApiError:
    return ApiError("proxy already exists", 409)


def invalid_stream() -> ApiError:
    return ApiError("stream was invalid, can be either upstream or downstream", 400)


def invalid_toxic_type() -> ApiError:
    return ApiError("invalid toxic type", 400)


def toxic_exists() -> ApiError:
    return ApiError("toxic already exists", 409)


def toxic_not_found() -> ApiError:
    return ApiError("toxic not found", 404)


def invalid_attribute(message: str) -> ApiError:
    """400 for attribute values that would crash or hang the real Toxiproxy."""
    return ApiError(message, 400)
