"""Attacks on auth's doors, through the gateway and straight at auth: bulk registration and
password guessing (auth's own limits, the client read from the right of X-Forwarded-For),
concurrent hashing, the /register page in a hostile browser, and tokens signed with keys auth
does not publish, before and after a key rotation."""

from __future__ import annotations

import re
import secrets
import threading

import jwt
import pytest
import requests

from services.common.tokens import TokenSigner, generate_keypair
from tests.attacks.auth_stack import PASSWORD, attack_stack  # noqa: F401 - the fixture
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _email(prefix: str = "x") -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.com"


def _register(base: str, email: str, **headers: str) -> requests.Response:
    return requests.post(f"{base}/api/v1/auth/register", headers=headers, timeout=10,
                         json={"email": email, "password": PASSWORD, "name": "N"})


def _login(base: str, email: str, password: str, **headers: str) -> requests.Response:
    return requests.post(f"{base}/api/v1/auth/login", headers=headers, timeout=10,
                         json={"email": email, "password": password})


def _auths_own_429(response: requests.Response) -> bool:
    # The gateway's limiter answers 429 too; auth's names the limit it applied.
    return response.status_code == 429 and "limit" in response.json()["error"]["details"]


def test_bulk_registration_is_limited_by_auth_whatever_x_forwarded_for_says(attack_stack):  # noqa: F811
    answers = [_register(attack_stack.gateway, _email(), **{"X-Forwarded-For": f"198.51.100.{n}"})
               for n in range(12)]
    statuses = [a.status_code for a in answers]
    assert statuses[:10] == [201] * 10 and _auths_own_429(answers[10]), statuses
    assert int(answers[10].headers["Retry-After"]) >= 1
    # Straight at auth from the same address: the same count, auth keeps it, not the gateway.
    assert _auths_own_429(_register(attack_stack.auth, _email()))


def test_password_guessing_locks_the_account_through_the_gateway_and_at_auth(attack_stack):  # noqa: F811
    victim = _email("victim")
    assert _register(attack_stack.auth, victim,
                     Authorization=f"Bearer {attack_stack.admin_token()}").status_code == 201
    guesses = [_login(attack_stack.gateway, victim, f"guess {n}") for n in range(6)]
    assert [g.status_code for g in guesses[:5]] == [401] * 5 and _auths_own_429(guesses[5])
    # From another client straight at auth, even with the right password: locked for now.
    locked = _login(attack_stack.auth, victim, PASSWORD, **{"X-Forwarded-For": "203.0.113.77"})
    assert _auths_own_429(locked) and int(locked.headers["Retry-After"]) >= 1


def test_failed_logins_are_counted_per_client_read_from_the_right(attack_stack):  # noqa: F811
    attacker = "203.0.113.50"
    for n in range(20):
        spoofed = f"10.9.{n}.1, {attacker}"  # the leftmost part is the attacker's own choice
        answer = _login(attack_stack.auth, _email("nobody"), "guess", **{"X-Forwarded-For": spoofed})
        assert answer.status_code == 401, answer.text
    refused = _login(attack_stack.auth, _email("nobody"), "guess",
                     **{"X-Forwarded-For": f"10.9.99.1, {attacker}"})
    assert _auths_own_429(refused)
    other = _login(attack_stack.auth, _email("nobody"), "guess", **{"X-Forwarded-For": "203.0.113.51"})
    assert other.status_code == 401  # the next client is not punished for the attacker


def test_a_burst_of_logins_waits_for_a_hashing_slot_or_gets_503(attack_stack):  # noqa: F811
    start = threading.Barrier(12)
    answers: list[requests.Response] = []

    def attempt(n: int) -> None:
        start.wait(10)
        answers.append(_login(attack_stack.auth, _email("burst"), "guess",
                              **{"X-Forwarded-For": f"203.0.113.{100 + n}"}))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {401, 503} and 503 in statuses, statuses
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.json()["error"]["code"] == "auth_busy" and busy.headers["Retry-After"] == "1"


def test_the_register_page_refuses_framing_and_sniffing(attack_stack):  # noqa: F811
    for base in (attack_stack.gateway, attack_stack.auth):
        page = requests.get(f"{base}/register", timeout=10)
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert "Secure" not in page.headers["Set-Cookie"]  # plain HTTP, nobody said otherwise
    # Auth trusts one hop here: when that hop (the test stands in for it) says the client
    # used HTTPS, the cookie is Secure. (Untrusted senders: tests/services/auth.)
    behind_tls = requests.get(f"{attack_stack.auth}/register", timeout=10,
                              headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.8"})
    assert "Secure" in behind_tls.headers["Set-Cookie"]


@pytest.mark.parametrize(("field", "value"), [
    ("password", "password"), ("password", "Qwerty123"),
    ("name", "Ada\u202egnp.exe"), ("name", "\u200b\u200b"), ("name", "Ad\u2066a"),
])
def test_common_passwords_and_hidden_characters_are_refused(attack_stack, field, value):  # noqa: F811
    body = {"email": _email(), "password": PASSWORD, "name": "Ada", field: value}
    for base in (attack_stack.gateway, attack_stack.auth):
        answer = requests.post(f"{base}/api/v1/auth/register", json=body, timeout=10,
                               headers={"Authorization": f"Bearer {attack_stack.admin_token()}"})
        assert answer.status_code == 422, (base, answer.text)
        assert field in answer.json()["error"]["details"]["fields"]["json"]


def _forged_admin_token() -> str:
    private, public = generate_keypair()
    signer = TokenSigner(private, public, issuer="breakwater-auth", audience="breakwater")
    return signer.issue(1, "mallory@example.com", "Mallory", "admin")[0]


def _create(base: str, token: str) -> requests.Response:
    return requests.post(f"{base}/api/v1/products", timeout=10,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"name": "K", "slug": f"k-{secrets.token_hex(3)}", "price": "1"})


def test_tokens_are_verified_by_kid_and_survive_a_key_rotation(attack_stack):  # noqa: F811
    forged = _forged_admin_token()
    for base in (attack_stack.gateway, attack_stack.product):
        refused = _create(base, forged)
        assert refused.status_code == 401 and "not published" in refused.text, (base, refused.text)

    before = attack_stack.admin_token()
    published = requests.get(f"{attack_stack.gateway}/.well-known/jwks.json", timeout=10).json()
    current, upcoming = [key["kid"] for key in published["keys"]]
    assert jwt.get_unverified_header(before)["kid"] == current

    rotated = attack_stack.auth_command("keys", "rotate")
    assert rotated.returncode == 0 and f"{upcoming} signs now" in rotated.stdout, rotated.stderr

    def new_token() -> str | None:
        login = _login(attack_stack.gateway, attack_stack.admin.email, attack_stack.admin.password)
        token = login.json().get("access_token", "") if login.status_code == 200 else ""
        return token if token and jwt.get_unverified_header(token)["kid"] == upcoming else None

    after = wait_until(new_token, timeout=15, interval=0.5, message="auth signs with the next key")
    kids = [k["kid"] for k in requests.get(f"{attack_stack.auth}/.well-known/jwks.json",
                                           timeout=10).json()["keys"]]
    assert kids[0] == upcoming and kids[2] == current and len(kids) == 3
    for base in (attack_stack.gateway, attack_stack.product):
        assert _create(base, after).status_code == 201, base   # the new key, known ahead
        assert _create(base, before).status_code == 201, base  # the old one until it expires
    shown = attack_stack.auth_command("keys", "show").stdout
    assert re.search(rf"current\s+{upcoming}", shown)
