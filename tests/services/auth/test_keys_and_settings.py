"""Where the signing key comes from, and settings that must fail loudly at start."""

from __future__ import annotations

import pytest

from services.auth import create_app
from services.common.settings import SettingsError
from services.common.tokens import TokenVerifier

pytestmark = pytest.mark.timeout(60)


def test_local_mode_generates_a_key_pair_beside_the_configured_file(tmp_path):
    private = tmp_path / "keys" / "token_ed25519.pem"
    app = create_app({"token_private_key_file": str(private), "password_hash_method": "scrypt:1024:8:1"})
    public = tmp_path / "keys" / "token_ed25519.pub.pem"
    assert private.exists() and public.exists()
    assert app.test_client().get("/api/v1/auth/public-key").text == public.read_text()


def test_the_default_key_lives_in_the_var_folder(tmp_path):
    # conftest points BREAKWATER_VAR_DIR at tmp_path / "var" for every test
    create_app({"password_hash_method": "scrypt:1024:8:1"})
    assert (tmp_path / "var" / "keys" / "token_ed25519.pem").exists()
    assert (tmp_path / "var" / "keys" / "token_ed25519.pub.pem").exists()


def test_outside_local_mode_a_missing_key_is_an_error_not_a_new_key(tmp_path):
    private = tmp_path / "missing.pem"
    with pytest.raises(SettingsError, match="no token signing key"):
        create_app({"token_private_key_file": str(private), "environment": "production"})
    assert not private.exists()


def test_a_key_given_as_pem_text_with_escaped_newlines_is_used(keypair, tmp_path):
    escaped = keypair[0].strip().replace("\n", "\\n")
    app = create_app({"token_private_key": escaped, "password_hash_method": "scrypt:1024:8:1",
                      "token_private_key_file": str(tmp_path / "unused.pem")})
    assert app.test_client().get("/api/v1/auth/public-key").text.strip() == keypair[1].strip()
    assert not (tmp_path / "unused.pem").exists()


def test_tokens_signed_by_auth_verify_with_the_published_key(make_app, keypair):
    app = make_app()
    client = app.test_client()
    client.post("/api/v1/auth/register", json={"email": "a@example.com", "password": "long enough", "name": "A"})
    token = client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "long enough"}).json
    verifier = TokenVerifier(issuer="breakwater-auth", audience="breakwater", public_pem=keypair[1])
    assert verifier.verify(token["access_token"]).email == "a@example.com"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"password_hash_method": "md5-please"}, "AUTH_PASSWORD_HASH_METHOD"),
        ({"token_private_key": "not a pem"}, "not a readable PEM"),
    ],
)
def test_bad_settings_fail_at_start(config, message):
    with pytest.raises(SettingsError, match=message):
        create_app(config)
