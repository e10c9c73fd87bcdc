"""Auth's own limits: registrations and failed logins per client and per account (memory and
Redis storage), the client address behind trusted proxies, and the cap on concurrent hashing."""

from __future__ import annotations

import secrets
import threading

import pytest

from services.auth.attempts import HashingSlots
from services.common.errors import DependencyUnavailable
from tests.services.auth.conftest import PASSWORD

pytestmark = pytest.mark.timeout(60)
REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:  # noqa: BLE001 - any failure means: not there
        return False


@pytest.fixture
def db_backend() -> str:
    """Limits do not depend on the database: SQLite is enough."""
    return "sqlite"


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str:
    """Run a limit test with in-memory counts, then with counts in Redis."""
    if request.param == "redis":
        if not _redis_answers():
            pytest.skip("Redis is not answering on 127.0.0.1:6379")
        return REDIS_URL
    return "memory://"


def _client_ip() -> str:
    # A fresh address per test, so counts kept in Redis by earlier runs never interfere.
    return "10." + ".".join(str(b) for b in secrets.token_bytes(3))


def _email(prefix: str = "u") -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.com"


def _register(client, email, ip, **headers):
    return client.post("/api/v1/auth/register", environ_base={"REMOTE_ADDR": ip}, headers=headers,
                       json={"email": email, "password": PASSWORD, "name": "N"})


def _login(client, email, password, ip, **environ):
    return client.post("/api/v1/auth/login", environ_base={"REMOTE_ADDR": ip, **environ},
                       json={"email": email, "password": password})


def test_registrations_from_one_client_are_limited(make_app, storage):
    client = make_app(rate_limit_storage=storage).test_client()
    ip = _client_ip()
    statuses = [_register(client, _email(), ip).status_code for _ in range(12)]
    assert statuses[:10] == [201] * 10 and statuses[10:] == [429, 429]
    refused = _register(client, _email(), ip)
    assert refused.json["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert _register(client, _email(), _client_ip()).status_code == 201  # others still may


def test_registrations_for_one_email_are_limited_from_any_client(make_app, storage):
    client = make_app(rate_limit_storage=storage).test_client()
    email = _email()
    statuses = [_register(client, email, _client_ip()).status_code for _ in range(4)]
    assert statuses == [201, 409, 409, 429]


def test_an_admin_token_lifts_the_registration_limits(make_app, make_token, storage):
    client = make_app(rate_limit_storage=storage).test_client()
    ip = _client_ip()
    admin = {"Authorization": f"Bearer {make_token(1, membership='admin')}"}
    shopper = {"Authorization": f"Bearer {make_token(2)}"}
    assert [_register(client, _email(), ip, **admin).status_code for _ in range(12)] == [201] * 12
    again = _email()  # the seed registers the same shoppers on every run: 409, never 429
    assert [_register(client, again, ip, **admin).status_code for _ in range(5)] == [201] + [409] * 4
    assert [_register(client, _email(), ip, **shopper).status_code
            for _ in range(11)][-1] == 429  # a shopper's token changes nothing


def test_failed_logins_lock_the_account_even_for_the_right_password(make_app, register, storage):
    client = make_app(rate_limit_storage=storage).test_client()
    email = _email("victim")
    assert _register(client, email, _client_ip()).status_code == 201
    wrong = [_login(client, email, "wrong password", _client_ip()).status_code for _ in range(6)]
    assert wrong == [401] * 5 + [429]
    locked = _login(client, email, PASSWORD, _client_ip())
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    other = _email("other")
    assert _register(client, other, _client_ip()).status_code == 201
    assert _login(client, other, PASSWORD, _client_ip()).status_code == 200


def test_failed_logins_from_one_client_are_limited_across_accounts(make_app, storage):
    client = make_app(rate_limit_storage=storage).test_client()
    ip = _client_ip()
    statuses = [_login(client, _email("nobody"), "guess", ip).status_code for _ in range(21)]
    assert statuses == [401] * 20 + [429]
    assert _login(client, _email("nobody"), "guess", _client_ip()).status_code == 401


def test_successful_logins_are_not_counted(make_app):
    client = make_app().test_client()
    email, ip = _email(), _client_ip()
    assert _register(client, email, ip).status_code == 201
    assert {_login(client, email, PASSWORD, ip).status_code for _ in range(25)} == {200}


def test_the_client_is_read_from_the_right_of_x_forwarded_for_behind_trusted_hops(make_app):
    client = make_app(trusted_proxy_hops=1).test_client()
    gateway = "127.0.0.1"
    # The attacker varies the leftmost entry; the gateway appends the address it saw.
    statuses = [
        _login(client, _email(), "guess", gateway,
               HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.9").status_code
        for n in range(21)
    ]
    assert statuses[-1] == 429
    fresh = _login(client, _email(), "guess", gateway, HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert fresh.status_code == 401  # another client behind the same gateway is not locked out


def test_without_trusted_hops_x_forwarded_for_is_ignored(make_app):
    client = make_app().test_client()
    ip = _client_ip()
    statuses = [_login(client, _email(), "guess", ip, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
                for n in range(21)]
    assert statuses[-1] == 429


def test_unreadable_limit_settings_fail_at_start(make_app):
    from services.common.settings import SettingsError

    with pytest.raises(SettingsError, match="AUTH_REGISTER_LIMIT_PER_CLIENT"):
        make_app(register_limit_per_client="lots")
    with pytest.raises(SettingsError, match="AUTH_RATE_LIMIT_STORAGE"):
        make_app(rate_limit_storage="carrier-pigeon://")
    with pytest.raises(SettingsError, match="not a network"):
        make_app(trusted_proxies=("10.0.0.0/33",))


def test_hashing_waits_for_a_slot_then_answers_503_with_retry_after():
    slots = HashingSlots(1, wait_seconds=0.05, retry_after=2)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with slots.slot():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(DependencyUnavailable) as refused, slots.slot():
            pass
        assert refused.value.status == 503 and refused.value.retry_after == 2
    finally:
        release.set()
        holder.join(10)
    with slots.slot():  # the slot is free again
        pass


def test_a_busy_hasher_answers_503_through_the_api(make_app):
    app = make_app(max_concurrent_password_hashes=1, password_hash_wait_seconds=0.05)
    slots = app.extensions["auth.hasher"]._slots
    with slots.slot():  # another request is hashing
        response = app.test_client().post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": PASSWORD})
    assert response.status_code == 503
    assert response.json["error"]["code"] == "auth_busy" and response.headers["Retry-After"] == "1"
