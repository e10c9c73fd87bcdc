"""Fixtures of the gateway suite: fake upstreams and the gateway running against them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.fakes import FakeUpstream, RunningGateway

SERVICES = ("auth", "product", "cart", "order")


@pytest.fixture
def upstreams() -> Iterator[dict[str, FakeUpstream]]:
    """One fake upstream per service, stopped after the test."""
    fakes = {name: FakeUpstream(name) for name in SERVICES}
    yield fakes
    for fake in fakes.values():
        fake.stop()


@pytest.fixture
def fake_factory() -> Iterator[Callable[[str], FakeUpstream]]:
    """`fake_factory(name)` → an extra fake upstream (another replica), stopped afterwards."""
    made: list[FakeUpstream] = []

    def make(name: str) -> FakeUpstream:
        made.append(FakeUpstream(name))
        return made[-1]

    yield make
    for fake in made:
        fake.stop()


@pytest.fixture
def start_gateway(
    upstreams: dict[str, FakeUpstream], key_files: tuple[Path, Path]
) -> Iterator[Callable[..., RunningGateway]]:
    """`start_gateway(threads=32, front=True, **settings)` → the gateway serving on a free
    port (through its Granian front, or, `front=False`, as a WSGI app on a plain thread pool).

    Upstreams default to the fakes; the token key is the session key file.
    """
    running: list[RunningGateway] = []

    def start(threads: int = 32, front: bool = True, **overrides: Any) -> RunningGateway:
        config: dict[str, Any] = {f"upstream_{name}": fake.url for name, fake in upstreams.items()}
        config.update(resilience=True, token_public_key_file=str(key_files[1]), registry_file="")
        config.update(overrides)
        running.append(RunningGateway(config, threads=threads, front=front))
        return running[-1]

    yield start
    for fake in upstreams.values():
        fake.release.set()  # let hung requests finish so the servers stop promptly
    for gateway in running:
        gateway.stop()


@pytest.fixture
def bearer(make_token: Callable[..., str]) -> dict[str, str]:
    """An Authorization header with a valid token for user 1."""
    return {"Authorization": f"Bearer {make_token(1)}"}
