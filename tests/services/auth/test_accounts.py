"""Register, login and `/users/me`: the happy paths and every way they refuse."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from services.common.settings import SettingsError
from services.common.tokens import TokenSigner, generate_keypair
from tests.services.auth.conftest import PASSWORD

pytestmark = pytest.mark.timeout(60)


def test_register_creates_a_user_with_a_normalised_email(client):
    response = client.post(
        "/api/v1/auth/register",
        json={"email": "  Ada@Example.COM ", "password": PASSWORD, "name": " Ada Lovelace "},
    )
    assert response.status_code == 201
    body = response.json
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada Lovelace"
    assert body["membership"] == "standard"
    assert "password" not in body and "password_hash" not in body


def test_a_second_account_with_the_same_email_in_other_case_is_a_conflict(client, register):
    register("ada@example.com")
    response = client.post(
        "/api/v1/auth/register", json={"email": "ADA@example.com", "password": PASSWORD, "name": "X"}
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == "email_taken"


def test_emails_differing_only_in_accents_are_different_accounts(client, register):
    # MySQL's default collation would call these equal; the email column compares exactly.
    register("jose@example.com")
    register("josé@example.com")


def test_login_returns_a_bearer_token_for_the_user(client, register, keypair):
    user = register("ada@example.com")
    response = client.post("/api/v1/auth/login", json={"email": "ADA@example.com", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900  # 15 minutes by default (AUTH_TOKEN_TTL_SECONDS)
    assert body["user"] == user
    claims = jwt.decode(body["access_token"], keypair[1], algorithms=["EdDSA"], audience="breakwater")
    assert claims["sub"] == str(user["id"]) and claims["membership"] == "standard"


@pytest.mark.parametrize(
    ("email", "password"),
    [("ada@example.com", "wrong password"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_wrong_credentials_get_the_same_401_whichever_part_is_wrong(client, register, email, password):
    register("ada@example.com")
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 401
    assert response.json["error"] == {
        "code": "invalid_credentials", "message": "the email or password is not correct", "details": {},
    }


def test_me_shows_name_email_and_membership(client, register, login):
    register("ada@example.com", name="Ada")
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {login()}"})
    assert response.status_code == 200
    assert {k: response.json[k] for k in ("name", "email", "membership")} == {
        "name": "Ada", "email": "ada@example.com", "membership": "standard",
    }


def test_registering_never_makes_an_admin(make_app):
    with pytest.raises(SettingsError, match="admin_emails"):
        make_app(admin_emails=("boss@example.com",))  # the old promotion by email is gone
    client = make_app().test_client()
    response = client.post(
        "/api/v1/auth/register",
        json={"email": "admin@example.com", "password": PASSWORD, "name": "B", "membership": "admin"},
    )
    assert response.status_code == 422  # no field to ask for it either
    response = client.post(
        "/api/v1/auth/register", json={"email": "admin@example.com", "password": PASSWORD, "name": "B"}
    )
    assert response.json["membership"] == "standard"


def test_the_admin_command_creates_promotes_lists_and_revokes_admins(app, register, login):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["admin", "create", "Boss@Example.com", "--name", "Boss",
                               "--password-stdin"], input=PASSWORD + "\n")
    assert made.exit_code == 0 and "created admin boss@example.com" in made.output
    client = app.test_client()
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {login('boss@example.com')}"})
    assert me.json["membership"] == "admin"
    register("ada@example.com")
    promoted = runner.invoke(args=["admin", "create", "ada@example.com"], input="")
    assert promoted.exit_code == 0 and "promoted" in promoted.output
    assert login("ada@example.com")  # promoting without a password keeps the old one
    listed = runner.invoke(args=["admin", "list"]).output
    assert "boss@example.com" in listed and "ada@example.com" in listed
    assert runner.invoke(args=["admin", "revoke", "ada@example.com"]).exit_code == 0
    assert "ada@example.com" not in runner.invoke(args=["admin", "list"]).output


def test_the_admin_command_refuses_a_bad_email_or_password(app):
    runner = app.test_cli_runner()
    short = runner.invoke(args=["admin", "create", "x@example.com", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "password" in short.output
    bad = runner.invoke(args=["admin", "create", "not-an-email", "--password-stdin"], input=PASSWORD + "\n")
    assert bad.exit_code == 2 and "email" in bad.output
    none = runner.invoke(args=["admin", "create", "y@example.com", "--password-stdin"], input="\n")
    assert none.exit_code == 2 and "password" in none.output


def _tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"


def _signed_by(private_pem: str, public_pem: str, *, audience: str = "breakwater", ttl: int = 60) -> str:
    signer = TokenSigner(private_pem, public_pem, issuer="breakwater-auth", audience=audience, ttl_seconds=ttl)
    return signer.issue(1, "ada@example.com", "Ada", "standard")[0]


@pytest.mark.parametrize(
    ("make_header", "code"),
    [
        (lambda kp, tok: {}, "missing_token"),
        (lambda kp, tok: {"Authorization": f"Basic {tok}"}, "invalid_token"),
        (lambda kp, tok: {"Authorization": "Bearer not.a.token"}, "invalid_token"),
        (lambda kp, tok: {"Authorization": f"Bearer {_tampered(tok)}"}, "invalid_token"),
        (lambda kp, tok: {"Authorization": f"Bearer {_signed_by(*kp, audience='other')}"}, "invalid_token"),
        (lambda kp, tok: {"Authorization": f"Bearer {_signed_by(*kp, ttl=-60)}"}, "token_expired"),
        (lambda kp, tok: {"Authorization": f"Bearer {_signed_by(*generate_keypair())}"}, "invalid_token"),
    ],
    ids=["missing", "not-bearer", "garbage", "tampered", "wrong-audience", "expired", "foreign-key"],
)
def test_me_refuses_requests_without_a_valid_token(client, register, login, keypair, make_header, code):
    register("ada@example.com")
    response = client.get("/api/v1/users/me", headers=make_header(keypair, login()))
    assert response.status_code == 401
    assert response.json["error"]["code"] == code


def test_me_refuses_a_valid_token_of_an_account_that_does_not_exist(client, make_token):
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {make_token(999)}"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unknown_user"


def test_public_key_endpoints_publish_the_signing_key(client, keypair):
    pem = client.get("/api/v1/auth/public-key")
    assert pem.status_code == 200 and pem.mimetype == "application/x-pem-file"
    assert pem.text.strip() == keypair[1].strip()
    jwks = client.get("/.well-known/jwks.json").json
    jwk, upcoming = jwks["keys"]  # the current key, then the next one (published ahead)
    assert upcoming["kid"] != jwk["kid"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["alg"] == "EdDSA"
    from_jwk = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert from_jwk.decode().strip() == keypair[1].strip()
