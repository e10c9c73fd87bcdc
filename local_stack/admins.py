"""Admins of the local stack: made with auth's own command, logged in through the gateway.

Catalog writes need an admin token in every stack. `create_admin` runs `flask --app
services.auth admin create` against this stack's auth database, as an operator would run it
in the auth container of compose or Kubernetes. `local_admin` is the seed's admin: made once
with a random password kept in `var/keys/admin.json` (mode 0600, beside the signing key).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from local_stack import commands, databases
from local_stack.options import StackError
from local_stack.state import load_state
from services.common.settings import project_root

SEED_ADMIN_EMAIL = "admin@breakwater.test"
ADMIN_FILE = Path("keys") / "admin.json"
REMOTE_HINT = ("for compose or Kubernetes run `flask --app services.auth admin create EMAIL` "
               "where auth runs (docker compose exec auth … / kubectl exec deploy/auth -- …)")


@dataclass(frozen=True)
class AdminCredentials:
    """An admin's email and password."""

    email: str
    password: str


def admin_command(email: str, name: str) -> list[str]:
    """Auth's own command that creates (or promotes) an admin; the password comes on stdin."""
    return [commands.python(), "-m", "flask", "--app", "services.auth", "admin", "create", email,
            "--name", name, "--password-stdin"]


def create_admin(var: str | Path, email: str, password: str, name: str = "Admin") -> str:
    """Create or promote the admin `email` in the auth database of the stack in `var`;
    auth's one-line answer ("created admin …" or "promoted admin …")."""
    var = Path(var).resolve()
    state = load_state(var)
    if state is None:
        raise StackError(f"no local stack in {var}: `breakwater up` first; {REMOTE_HINT}")
    options = state.options or {}
    keys = (var / "keys" / "token_ed25519.pem", var / "keys" / "token_ed25519.pub.pem")
    base = commands.base_environment(var, keys, Path(state.registry_file),
                                     bool(options.get("resilience", True)))
    url = databases.database_url(options.get("db") or databases.SQLITE, "auth", var)
    env = commands.migrate_environment(base, "auth", url)
    env.update((options.get("env") or {}).get("auth") or {})
    env["AUTH_INSTANCE_ID"] = "auth-admin"
    env["OTEL_TRACES_EXPORTER"] = "none"
    result = subprocess.run(admin_command(email, name), input=password + "\n", env=env,
                            cwd=project_root(), capture_output=True, text=True, timeout=120)
    answer = [line for line in result.stdout.splitlines() if "admin" in line]
    if result.returncode != 0 or not answer:
        problem = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise StackError(f"auth could not make {email} an admin: {problem}")
    return answer[-1]


def local_admin(var: str | Path) -> AdminCredentials:
    """The seed's admin of the stack in `var`, made on first use."""
    path = Path(var) / ADMIN_FILE
    if path.is_file():
        stored = json.loads(path.read_text())
        return AdminCredentials(stored["email"], stored["password"])
    credentials = AdminCredentials(SEED_ADMIN_EMAIL, secrets.token_urlsafe(18))
    create_admin(var, credentials.email, credentials.password, name="Seed admin")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(asdict(credentials), handle)
    return credentials


def admin_token(gateway: str, credentials: AdminCredentials, *, var: str | Path | None = None,
                session: requests.Session | None = None) -> str:
    """An access token of the admin, logged in through the gateway. With `var` (a local
    stack) an admin whose account is gone (a fresh database) is made again first."""
    http = session or requests.Session()
    url = gateway.rstrip("/") + "/api/v1/auth/login"
    body = asdict(credentials)
    response = http.post(url, json=body, timeout=30)
    if response.status_code == 401 and var is not None:
        create_admin(var, credentials.email, credentials.password, name="Seed admin")
        response = http.post(url, json=body, timeout=30)
    if response.status_code != 200:
        raise StackError(f"the admin {credentials.email} cannot log in at {url}: "
                         f"{response.status_code} {response.text[:200]}")
    token = response.json()["access_token"]
    if response.json().get("user", {}).get("membership") != "admin":
        raise StackError(f"{credentials.email} is not an admin: `breakwater admin create "
                         f"{credentials.email}`, or {REMOTE_HINT}")
    return token
