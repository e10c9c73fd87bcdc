"""The shoppers a load test plays: seeded accounts and a pool of their access tokens.

`breakwater seed` writes var/seed.json with the accounts it registered (emails
`user{n}@breakwater.test`, one shared password) and the products (the hot one is
`flash-sale`). Logging in costs auth a password hash (scrypt) and the gateway limits logins
per client address, so a test of thousands of shoppers from one machine cannot have each
of them log in through the gateway. The runner logs the accounts in once, straight at auth
(`issue_tokens`), and hands the tokens to Locust in a file; a few users still log in
through the gateway at a modest pace so the login route is measured too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

DEFAULT_PASSWORD = "breakwater-load-1"
DEFAULT_HOT_SLUG = "flash-sale"
TOKENS_ENV = "BREAKWATER_TOKENS_FILE"
SEED_ENV = "BREAKWATER_SEED_FILE"


@dataclass(frozen=True)
class Account:
    """A shopper's login."""

    email: str
    password: str


def var_dir() -> Path:
    """BREAKWATER_VAR_DIR, else ./var in the working directory (as `services.common.settings`
    says, read here so that a Locust image needs no service code)."""
    return Path(os.environ.get("BREAKWATER_VAR_DIR") or "var").absolute()


def seed_document(path: Path | None = None) -> dict[str, Any]:
    """var/seed.json (or BREAKWATER_SEED_FILE) as a dict; {} when there is none."""
    path = path or Path(os.environ.get(SEED_ENV) or var_dir() / "seed.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def accounts_from_seed(seed: dict[str, Any], default_count: int = 50) -> list[Account]:
    """The seeded accounts; `user1..N@breakwater.test` with the default password otherwise."""
    password = str(seed.get("password") or seed.get("user_password") or DEFAULT_PASSWORD)
    users = seed.get("users") or seed.get("accounts") or []
    accounts = []
    for user in users:
        if isinstance(user, str):
            accounts.append(Account(user, password))
        elif isinstance(user, dict) and user.get("email"):
            accounts.append(Account(user["email"], str(user.get("password") or password)))
    if not accounts:
        count = int(seed.get("user_count") or default_count)
        accounts = [Account(f"user{n}@breakwater.test", password) for n in range(1, count + 1)]
    return accounts


def hot_slug(seed: dict[str, Any]) -> str:
    """The slug of the flash-sale product."""
    return str(seed.get("hot_product") or seed.get("flash_sale_slug") or DEFAULT_HOT_SLUG)


def issue_tokens(auth_url: str, accounts: Iterable[Account], *, limit: int | None = None,
                 timeout: float = 10.0, deadline_s: float = 120.0) -> dict[str, str]:
    """Log `accounts` in at `auth_url` (auth itself, or the gateway); email → token."""
    tokens: dict[str, str] = {}
    session = requests.Session()
    deadline = time.monotonic() + deadline_s
    for account in list(accounts)[:limit]:
        if time.monotonic() > deadline:
            break
        for _ in range(5):
            response = session.post(f"{auth_url.rstrip('/')}/api/v1/auth/login", timeout=timeout,
                                    json={"email": account.email, "password": account.password})
            if response.status_code == 429:  # the gateway's limiter: wait as told
                time.sleep(min(5.0, float(response.headers.get("Retry-After", "1"))))
                continue
            if response.status_code == 200:
                tokens[account.email] = response.json()["access_token"]
            break
    return tokens


def write_tokens(path: Path, tokens: dict[str, str]) -> Path:
    """Save a token pool for Locust (`BREAKWATER_TOKENS_FILE`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"issued_at": time.time(), "tokens": tokens}))
    return path


def read_tokens(path: str | Path | None = None) -> list[tuple[str, str]]:
    """(email, token) pairs from a token pool file; [] when there is none."""
    path = path or os.environ.get(TOKENS_ENV)
    if not path:
        return []
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    return sorted(document.get("tokens", {}).items())
