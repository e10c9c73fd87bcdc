"""Service tokens: order's client credentials for a short-lived token of the internal audience."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from services.common.service_identity import INTERNAL_AUDIENCE, default_secret_file

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"])


def test_local_mode_generates_the_secret_order_reads_and_auth_accepts(client, keypair) -> None:
    import os

    secret_file = default_secret_file(Path(os.environ["BREAKWATER_VAR_DIR"]), "order")
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32 and (secret_file.stat().st_mode & 0o777) == 0o600
    response = client.post("/api/v1/auth/service-token",
                           json={"client_id": "order", "client_secret": secret})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer" and 30 <= body["expires_in"] <= 300
    claims = jwt.decode(body["access_token"], keypair[1], algorithms=["EdDSA"],
                        audience=INTERNAL_AUDIENCE, issuer="breakwater-auth")
    assert (claims["sub"], claims["svc"]) == ("service:order", "order")
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    # Not a shopper's token: the shopper audience does not accept it.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(body["access_token"], keypair[1], algorithms=["EdDSA"], audience="breakwater")


@pytest.mark.parametrize("credentials", [
    {"client_id": "order", "client_secret": "wrong"},
    {"client_id": "order", "client_secret": "from-env-but-one-char-off"},
])
def test_wrong_secrets_get_401(make_app, monkeypatch, credentials) -> None:
    monkeypatch.setenv("BREAKWATER_ORDER_SERVICE_SECRET", "from-env-but-one-char-of")
    client = make_app().test_client()
    response = client.post("/api/v1/auth/service-token", json=credentials)
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_client"
    good = client.post("/api/v1/auth/service-token",
                       json={"client_id": "order", "client_secret": "from-env-but-one-char-of"})
    assert good.status_code == 200


@pytest.mark.parametrize("body", [{}, {"client_id": "gateway", "client_secret": "x"},
                                  {"client_id": "order"}, {"client_id": "order", "client_secret": ""}])
def test_malformed_requests_get_422(client, body) -> None:
    response = client.post("/api/v1/auth/service-token", json=body)
    assert response.status_code == 422, response.json


def test_without_a_secret_outside_local_mode_nobody_gets_a_token(make_app, monkeypatch) -> None:
    client = make_app(environment="compose").test_client()
    response = client.post("/api/v1/auth/service-token",
                           json={"client_id": "order", "client_secret": "anything"})
    assert response.status_code == 401
