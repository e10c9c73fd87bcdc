"""A real local stack for the auth and catalog attack tests: every process on loopback, one
per session, stopped afterwards. Tests reach it through the gateway and each service directly."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from local_stack import StackOptions, Supervisor, load_state
from local_stack import commands as stack_commands
from local_stack.admins import AdminCredentials, admin_token, create_admin
from services.common.settings import project_root

PASSWORD = "a long shopper passphrase"


@dataclass
class AttackStack:
    """Where the stack's parts are, and how to act as its operator."""

    var: Path
    gateway: str
    auth: str
    product: str
    admin: AdminCredentials
    _admin_token: str = ""

    def admin_token(self) -> str:
        """The operator's token (logged in once: logins through the gateway are limited)."""
        if not self._admin_token:
            self._admin_token = admin_token(self.gateway, self.admin)
        return self._admin_token

    def shopper_token(self, base: str | None = None) -> str:
        """Register a fresh shopper (directly at auth: no limits shared with the tests) and
        log them in through `base` (the gateway by default)."""
        email = f"shopper-{secrets.token_hex(4)}@example.com"
        registered = requests.post(f"{self.auth}/api/v1/auth/register", timeout=10,
                                   headers={"Authorization": f"Bearer {self.admin_token()}"},
                                   json={"email": email, "password": PASSWORD, "name": "S"})
        assert registered.status_code == 201, registered.text
        login = requests.post(f"{base or self.gateway}/api/v1/auth/login", timeout=10,
                              json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return login.json()["access_token"]

    def auth_command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`flask --app services.auth ARGS` against this stack's auth, as an operator runs it."""
        state = load_state(self.var)
        assert state is not None
        keys = (self.var / "keys" / "token_ed25519.pem", self.var / "keys" / "token_ed25519.pub.pem")
        base = stack_commands.base_environment(self.var, keys, Path(state.registry_file), True)
        env = stack_commands.migrate_environment(base, "auth", f"sqlite:///{self.var / 'auth.db'}")
        return subprocess.run([stack_commands.python(), "-m", "flask", "--app", "services.auth",
                               *args], env=env, cwd=project_root(), capture_output=True,
                              text=True, timeout=120)


@pytest.fixture(scope="session")
def attack_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AttackStack]:
    """The local stack (free ports, no CPU quotas, no console), with an admin made by command.

    Auth trusts one proxy hop, as behind the gateway in compose: through the gateway every
    test client is 127.0.0.1, straight at auth a test can stand for other clients. One
    password hash at a time, so a burst of logins shows the cap."""
    var = tmp_path_factory.mktemp("attack-stack") / "var"
    supervisor = Supervisor(var, stop_timeout=5)
    auth_env = {"AUTH_TRUSTED_PROXY_HOPS": "1", "AUTH_MAX_CONCURRENT_PASSWORD_HASHES": "1",
                "AUTH_PASSWORD_HASH_WAIT_SECONDS": "0.01"}
    state = supervisor.up(StackOptions(port_base=0, profile=None, console=False, ready_timeout=60,
                                       env={"auth": auth_env}))
    try:
        admin = AdminCredentials("operator@example.com", "an operator passphrase")
        create_admin(var, admin.email, admin.password, name="Operator")
        yield AttackStack(var, state.gateway_url.rstrip("/"), state.instances["auth"].url,
                          state.instances["product-1"].url, admin)
    finally:
        supervisor.down()
