"""Fixtures of the service suites: the order service's own token, as auth issues it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.auth.service_tokens import ServiceTokenIssuer
from services.common.service_identity import ACTING_USER_HEADER
from services.common.tokens import TokenSigner

SERVICE_SECRET = "test-order-service-secret"


@pytest.fixture(scope="session")
def service_token(keypair: tuple[str, str]) -> Callable[..., str]:
    """`service_token(service="order")` → a token auth would issue to that service."""
    signer = TokenSigner(keypair[0], keypair[1], issuer="breakwater-auth",
                         audience="breakwater", ttl_seconds=300)
    issuer = ServiceTokenIssuer(signer.sign, issuer="breakwater-auth",
                                secrets={"order": SERVICE_SECRET, "cart": SERVICE_SECRET},
                                ttl_seconds=300)

    def issue(service: str = "order") -> str:
        return issuer.issue(service, SERVICE_SECRET)["access_token"]

    return issue


@pytest.fixture(scope="session")
def service_header(service_token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """`service_header(user_id)` → the headers of order's call acting for that user."""
    return lambda user_id=1, service="order": {"Authorization": f"Bearer {service_token(service)}",
                                               ACTING_USER_HEADER: str(user_id)}
