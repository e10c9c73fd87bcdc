"""Keys by `kid`: auth publishes current and next, rotation promotes next, verifiers follow
the published set (reloading on an unknown kid, at a bounded rate) and drop retired keys."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest

from gateway.edge import EdgeAuth
from services.auth import create_app
from services.auth.config import AuthSettings
from services.auth.keys import KeyFiles, load_signing_keys, sign_with_current_key
from services.common.errors import Unauthorized
from services.common.tokens import TokenSigner, TokenVerifier, generate_keypair, key_id
from tests.services.auth.conftest import CHEAP_SCRYPT, PASSWORD
from tests.support.processes import wait_until

pytestmark = pytest.mark.timeout(60)
ISSUER, AUDIENCE = "breakwater-auth", "breakwater"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def auth(tmp_path, database_url_for):
    """An auth app keeping its own keys in tmp_path/keys, with a shopper registered."""
    import flask_migrate

    private = tmp_path / "keys" / "token_ed25519.pem"
    app = create_app({"database_url": database_url_for("auth"), "testing": True,
                      "token_private_key_file": str(private), "password_hash_method": CHEAP_SCRYPT})
    with app.app_context():
        flask_migrate.upgrade()
    client = app.test_client()
    client.post("/api/v1/auth/register",
                json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"})
    return app


def _login(app) -> str:
    response = app.test_client().post("/api/v1/auth/login",
                                      json={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _published(app) -> list[str]:
    return [k["kid"] for k in app.test_client().get("/.well-known/jwks.json").json["keys"]]


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_auth_publishes_current_and_next_and_signs_with_current(auth, tmp_path):
    token = _login(auth)
    current, upcoming = _published(auth)
    assert _kid(token) == current != upcoming
    files = KeyFiles(tmp_path / "keys" / "token_ed25519.pem")
    assert files.next.exists() and json.loads(files.jwks.read_text())["keys"][1]["kid"] == upcoming
    assert _kid(token) == key_id(files.public.read_text())


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_rotation_promotes_next_keeps_old_tokens_valid_and_services_follow(auth, tmp_path):
    files = KeyFiles(tmp_path / "keys" / "token_ed25519.pem")
    service = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_file=str(files.jwks),
                            reload_seconds=0.0)
    before = _login(auth)
    old, upcoming = _published(auth)
    assert service.verify(before).email == "ada@example.com"

    result = auth.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and f"{upcoming} signs now" in result.output
    after = wait_until(lambda: (t := _login(auth)) and _kid(t) == upcoming and t,
                       message="auth signs with the promoted key")
    current, new_next, previous = _published(auth)
    assert (current, previous) == (upcoming, old) and new_next not in (old, upcoming)
    # The service learns the new kid from the published set; the old token still verifies.
    assert service.verify(after).email == "ada@example.com"
    assert service.verify(before).email == "ada@example.com"
    shown = auth.test_cli_runner().invoke(args=["keys", "show"]).output
    assert f"current\t{upcoming}" in shown and f"previous\t{old}" in shown


def test_the_retired_key_is_published_only_while_its_tokens_may_live(tmp_path):
    settings = AuthSettings.from_env({"token_private_key_file": str(tmp_path / "k" / "t.pem"),
                                      "token_ttl_seconds": 900})
    from services.auth.keys import rotate_keys

    load_signing_keys(settings)
    retired, _, _ = rotate_keys(settings)
    now = time.time()
    assert key_id(load_signing_keys(settings, now=now).previous_public_pem) == retired
    assert load_signing_keys(settings, now=now + 900 + 61).previous_public_pem == ""


def test_keys_from_the_environment_cannot_be_rotated_in_place(keypair, tmp_path):
    from services.auth.keys import rotate_keys
    from services.common.settings import SettingsError

    settings = AuthSettings.from_env({"token_private_key": keypair[0]})
    with pytest.raises(SettingsError, match="AUTH_TOKEN_NEXT_PRIVATE_KEY"):
        rotate_keys(settings)


def test_a_verifier_rejects_unknown_kids_and_reloads_at_a_bounded_rate(keypair):
    other_private, other_public = generate_keypair()
    published = [keypair[1]]
    reads = []

    def fetch() -> str:
        reads.append(1)
        return "\n".join(published)

    clock = Clock()
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, fetch=fetch, reload_seconds=10,
                             clock=clock)
    mine = TokenSigner(*keypair, issuer=ISSUER, audience=AUDIENCE).issue(1, "a@x.io", "A", "standard")[0]
    assert verifier.verify(mine).user_id == 1
    stranger = TokenSigner(other_private, other_public, issuer=ISSUER, audience=AUDIENCE)
    forged = stranger.issue(1, "a@x.io", "A", "admin")[0]
    clock.now += 11
    for _ in range(20):  # made-up key ids: one read, then refused from memory
        with pytest.raises(Unauthorized, match="not published"):
            verifier.verify(forged)
    assert len(reads) == 2
    published.append(other_public)  # auth publishes it (it was the next key, say)
    clock.now += 11
    assert verifier.verify(forged).membership == "admin"
    assert len(reads) == 3


def test_a_verifier_drops_keys_auth_no_longer_publishes(keypair):
    old_private, old_public = generate_keypair()
    published = [old_public, keypair[1]]
    clock = Clock()
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, fetch=lambda: "\n".join(published),
                             max_age_seconds=300, clock=clock)
    old = TokenSigner(old_private, old_public, issuer=ISSUER, audience=AUDIENCE).issue(
        1, "a@x.io", "A", "standard")[0]
    assert verifier.verify(old).user_id == 1
    published.remove(old_public)
    clock.now += 301
    with pytest.raises(Unauthorized, match="not published"):
        verifier.verify(old)
    assert verifier.key_ids() == [key_id(keypair[1])]


def test_a_verifier_keeps_its_keys_when_auth_cannot_be_asked(keypair):
    answers = ["\n".join([keypair[1]])]

    def fetch() -> str:
        if not answers:
            raise ValueError("auth is down")
        return answers.pop()

    clock = Clock()
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, fetch=fetch, clock=clock)
    token = TokenSigner(*keypair, issuer=ISSUER, audience=AUDIENCE).issue(1, "a@x.io", "A", "standard")[0]
    assert verifier.verify(token).user_id == 1
    clock.now += 1000
    assert verifier.verify(token).user_id == 1


def test_the_gateway_drops_keys_no_longer_published(keypair):
    old_private, old_public = generate_keypair()
    published = [(key_id(old_public), old_public), (key_id(keypair[1]), keypair[1])]
    clock = Clock()
    edge = EdgeAuth(issuer=ISSUER, audience=AUDIENCE, fetch_keys=lambda: list(published),
                    retry_seconds=1, max_age_seconds=300, clock=clock)
    old = TokenSigner(old_private, old_public, issuer=ISSUER, audience=AUDIENCE).issue(
        1, "a@x.io", "A", "standard")[0]
    assert edge.verify(f"Bearer {old}").user_id == 1
    published.pop(0)  # rotated out
    clock.now += 301
    with pytest.raises(Unauthorized):
        edge.verify(f"Bearer {old}")
    assert edge.known_key_ids() == [key_id(keypair[1])]


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_sign_with_current_key_signs_with_the_key_auth_publishes_as_current(auth):
    with auth.app_context():
        token = sign_with_current_key({"sub": "order", "iss": ISSUER, "aud": AUDIENCE,
                                       "iat": int(time.time()), "exp": int(time.time()) + 60})
    assert _kid(token) == _published(auth)[0]
    current = auth.test_client().get("/api/v1/auth/public-key").text
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(current.encode())
    assert jwt.decode(token, key, algorithms=["EdDSA"], audience=AUDIENCE)["sub"] == "order"


def test_services_read_the_jwks_file_auth_writes_in_local_mode(tmp_path):
    settings = AuthSettings.from_env({"token_private_key_file": str(tmp_path / "keys" / "t.pem")})
    keys = load_signing_keys(settings)
    document = json.loads((tmp_path / "keys" / "jwks.json").read_text())
    assert [k["kid"] for k in document["keys"]] == [key_id(p) for p in keys.published_pems()]
    assert Path(tmp_path / "keys" / "t.pub.pem").read_text() == keys.public_pem
