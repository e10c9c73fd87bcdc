"""Ed25519 access tokens: signed by auth, verified anywhere with the public key."""

from __future__ import annotations

import time

import jwt
import pytest

from services.common.errors import DependencyUnavailable, Unauthorized
from services.common.tokens import (
    TokenSigner,
    TokenVerifier,
    bearer_token,
    ensure_keypair,
    generate_keypair,
    public_jwk,
)

ISSUER, AUDIENCE = "breakwater-auth", "breakwater"


@pytest.fixture
def verifier(keypair: tuple[str, str]) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, public_pem=keypair[1])


def test_a_fresh_token_verifies_to_its_user(make_token, verifier: TokenVerifier) -> None:
    principal = verifier.verify(make_token(42, email="ann@example.com", membership="gold"))
    assert (principal.user_id, principal.email, principal.membership) == (42, "ann@example.com", "gold")


def test_an_expired_token_is_refused_with_its_own_code(make_token, verifier: TokenVerifier) -> None:
    with pytest.raises(Unauthorized) as error:
        verifier.verify(make_token(1, ttl=60, now=time.time() - 3600))
    assert error.value.code == "token_expired" and error.value.status == 401


def test_a_token_signed_by_another_key_is_refused(verifier: TokenVerifier) -> None:
    private, public = generate_keypair()
    token, _ = TokenSigner(private, public, issuer=ISSUER, audience=AUDIENCE).issue(1, "a@b.c", "A", "standard")
    with pytest.raises(Unauthorized) as error:
        verifier.verify(token)
    assert error.value.code == "invalid_token"


@pytest.mark.parametrize(("issuer", "audience"), [("someone-else", AUDIENCE), (ISSUER, "another-app")])
def test_wrong_issuer_or_audience_is_refused(keypair, verifier, issuer: str, audience: str) -> None:
    token, _ = TokenSigner(*keypair, issuer=issuer, audience=audience).issue(1, "a@b.c", "A", "standard")
    with pytest.raises(Unauthorized):
        verifier.verify(token)


def test_a_tampered_or_unsigned_token_is_refused(make_token, verifier: TokenVerifier) -> None:
    header, payload, signature = make_token(1).split(".")
    forged = jwt.encode({"sub": "2", "iss": ISSUER, "aud": AUDIENCE, "exp": time.time() + 60,
                         "iat": time.time()}, key=None, algorithm="none")
    for token in (f"{header}.{payload}x.{signature}", forged, "not-a-token"):
        with pytest.raises(Unauthorized):
            verifier.verify(token)


def test_missing_key_is_a_503_that_says_what_to_set(tmp_path, make_token) -> None:
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, public_key_file=str(tmp_path / "none.pem"))
    with pytest.raises(DependencyUnavailable, match="BREAKWATER_TOKEN_PUBLIC_KEY_FILE"):
        verifier.verify(make_token(1))


def test_key_file_written_after_start_is_picked_up(tmp_path, make_token, keypair) -> None:
    public_file = tmp_path / "pub.pem"
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, public_key_file=str(public_file))
    with pytest.raises(DependencyUnavailable):
        verifier.verify(make_token(1))
    public_file.write_text(keypair[1])
    assert verifier.verify(make_token(7)).user_id == 7


def test_ensure_keypair_writes_once_and_keeps_the_private_key_private(tmp_path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    ensure_keypair(private, public)
    first = private.read_text()
    ensure_keypair(private, public)
    assert private.read_text() == first and private.stat().st_mode & 0o077 == 0
    assert public_jwk(public.read_text())["kty"] == "OKP"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Token x"])
def test_bearer_header_must_be_well_formed(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)
