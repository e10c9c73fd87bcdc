"""The errors of a call to another service, as the resilient client raises them.

Each names the service that failed (and sets `X-Breakwater-Failed-Dependency`, so the caller's
caller does not blame the service in between), why (`reason`), and whether the call may have
had its effect (`uncertain`).
"""

from __future__ import annotations

from services.common.errors import ApiError

FAILED_DEPENDENCY_HEADER = "X-Breakwater-Failed-Dependency"


class UpstreamError(ApiError):
    """A call to another service failed; names the service so the caller's caller can tell.

    `uncertain` is True when any attempt of the call may have reached the server (a timeout or
    a reset after sending, a 5xx): its effect may have happened and must be checked or undone.
    It is False when nothing was sent (refused, breaker open, bulkhead full, no instances).
    """

    def __init__(self, service: str, message: str, *, reason: str, status: int, code: str,
                 retry_after: int | None = None, instance: str | None = None,
                 uncertain: bool = False) -> None:
        details = {"service": service, "reason": reason}
        if instance:
            details["instance"] = instance
        super().__init__(message, code=code, status=status, details=details, retry_after=retry_after,
                         headers={FAILED_DEPENDENCY_HEADER: service})
        self.service, self.reason, self.instance, self.uncertain = service, reason, instance, uncertain


class UpstreamUnavailable(UpstreamError):
    """503: the service cannot answer now (breaker open, bulkhead full, refused, 5xx)."""

    def __init__(self, service: str, reason: str, message: str | None = None, *,
                 retry_after: int = 5, instance: str | None = None, uncertain: bool | None = None) -> None:
        super().__init__(
            service, message or f"the {service} service is unavailable ({reason}); try again shortly",
            reason=reason, status=503, code=f"{service}_unavailable", retry_after=retry_after,
            instance=instance, uncertain=reason == "server_error" if uncertain is None else uncertain,
        )


class UpstreamTimedOut(UpstreamError):
    """504: the service did not answer in time (its timeout, or the request's deadline)."""

    def __init__(self, service: str, timeout: float, *, instance: str | None = None,
                 reason: str = "timeout", uncertain: bool = True) -> None:
        message = (f"the {service} service did not answer within {timeout:.3g}s; try again shortly"
                   if reason == "timeout" else
                   f"no time was left in the request's budget to call the {service} service")
        super().__init__(service, message, reason=reason, status=504, code=f"{service}_timeout",
                         retry_after=2, instance=instance, uncertain=uncertain)
