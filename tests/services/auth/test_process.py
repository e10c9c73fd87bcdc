"""`python -m services.auth` on a fresh var folder: it migrates, makes keys and serves."""

from __future__ import annotations

import pytest
import requests

from tests.services.auth.conftest import CHEAP_SCRYPT, PASSWORD
from tests.support.processes import start_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_a_fresh_process_generates_keys_migrates_and_serves_the_shop_flow(service_env, tmp_path):
    env = {k: v for k, v in service_env.items() if k != "AUTH_TOKEN_PRIVATE_KEY_FILE"}
    env["AUTH_PASSWORD_HASH_METHOD"] = CHEAP_SCRYPT
    auth = start_service("auth", env, tmp_path)
    try:
        keys = tmp_path / "var" / "keys"
        assert (keys / "token_ed25519.pem").exists() and (keys / "token_ed25519.pub.pem").exists()
        user = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
        created = requests.post(f"{auth.url}/api/v1/auth/register", json=user, timeout=10)
        assert created.status_code == 201, created.text
        login = requests.post(f"{auth.url}/api/v1/auth/login", json=user | {"name": None}, timeout=10)
        assert login.status_code == 422  # unknown/extra fields are refused, not ignored
        login = requests.post(
            f"{auth.url}/api/v1/auth/login",
            json={"email": user["email"], "password": PASSWORD}, timeout=10,
        )
        assert login.status_code == 200, login.text
        me = requests.get(
            f"{auth.url}/api/v1/users/me",
            headers={"Authorization": f"Bearer {login.json()['access_token']}"}, timeout=10,
        )
        assert me.json()["email"] == "ada@example.com"
        public = requests.get(f"{auth.url}/api/v1/auth/public-key", timeout=10).text
        assert public == (keys / "token_ed25519.pub.pem").read_text()
    finally:
        auth.stop()
