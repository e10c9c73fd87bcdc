"""Fixtures every suite can use: key pairs and tokens, database backends, free ports."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.common.tokens import TokenSigner, generate_keypair
from tests.support.databases import database_url, mysql_available
from tests.support.processes import free_port

ISSUER, AUDIENCE = "breakwater-auth", "breakwater"
_MYSQL_UP = mysql_available()


def pytest_configure(config: pytest.Config) -> None:
    """Every worker sets its own tracing up the same way before any test builds an app in it
    (`tests.support.tracing` says why)."""
    from tests.support.tracing import trace_the_test_process

    trace_the_test_process()


@pytest.fixture(autouse=True)
def _isolated_var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's databases, keys and logs out of the checkout's var/."""
    monkeypatch.setenv("BREAKWATER_VAR_DIR", str(tmp_path / "var"))


@pytest.fixture(scope="session")
def keypair() -> tuple[str, str]:
    """An Ed25519 key pair (private PEM, public PEM) shared by the session."""
    return generate_keypair()


@pytest.fixture(scope="session")
def key_files(tmp_path_factory: pytest.TempPathFactory, keypair: tuple[str, str]) -> tuple[Path, Path]:
    """The session key pair written to files, as local mode keeps it."""
    folder = tmp_path_factory.mktemp("keys")
    private, public = folder / "token_ed25519.pem", folder / "token_ed25519.pub.pem"
    private.write_text(keypair[0])
    public.write_text(keypair[1])
    return private, public


@pytest.fixture(scope="session")
def make_token(keypair: tuple[str, str]) -> Callable[..., str]:
    """Issue a token like auth does: `make_token(user_id, ttl=3600, now=None)`."""

    def issue(user_id: int = 1, *, email: str | None = None, ttl: int = 3600,
              now: float | None = None, membership: str = "standard") -> str:
        clock = (lambda: now) if now is not None else time.time
        signer = TokenSigner(keypair[0], keypair[1], issuer=ISSUER, audience=AUDIENCE, ttl_seconds=ttl, clock=clock)
        token, _ = signer.issue(user_id, email or f"user{user_id}@example.com", f"User {user_id}", membership)
        return token

    return issue


@pytest.fixture(scope="session")
def auth_header(make_token: Callable[..., str]) -> Callable[[int], dict[str, str]]:
    """`auth_header(user_id)` → an Authorization header for that user."""
    return lambda user_id=1: {"Authorization": f"Bearer {make_token(user_id)}"}


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Run a database test on SQLite, then again on MariaDB when it answers."""
    if request.param == "mysql" and not _MYSQL_UP:
        pytest.skip("MariaDB/MySQL is not answering on 127.0.0.1:3306")
    return request.param


@pytest.fixture
def database_url_for(db_backend: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """`database_url_for("product")` → a fresh database URL on the current backend."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield lambda name: stack.enter_context(database_url(db_backend, tmp_path, name))


@pytest.fixture
def port() -> int:
    """A free loopback port."""
    return free_port()


@pytest.fixture
def service_env(key_files: tuple[Path, Path], tmp_path: Path) -> dict[str, str]:
    """Environment for a service process under test: keys, var dir, no tracing."""
    return {
        "BREAKWATER_TOKEN_PUBLIC_KEY_FILE": str(key_files[1]),
        "AUTH_TOKEN_PRIVATE_KEY_FILE": str(key_files[0]),
        "BREAKWATER_VAR_DIR": str(tmp_path / "var"),
        "OTEL_TRACES_EXPORTER": "none",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
