"""The console in a real headless Chromium against a real local stack on free ports.

One stack for the module: the page loads cleanly and only from 127.0.0.1; under light load
cart's breaker shows closed, open within seconds of `breakwater chaos down cart`, closed again
after `chaos clear`; and a fault added from the page is what `breakwater chaos list` shows.
Every wait polls the page with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from breakwater.cli import main
from local_stack import StackOptions, Supervisor
from tests.support.browser import chromium, skip_without_browser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CART_ROW = 'tr[data-upstream="cart"][data-instance="cart"]'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    supervisor = Supervisor(tmp_path_factory.mktemp("console-stack") / "var", stop_timeout=5)
    supervisor.up(StackOptions(port_base=0, profile=None, ready_timeout=60))
    try:
        yield supervisor
    finally:
        supervisor.down()


@pytest.fixture(scope="module")
def shopper(stack: Supervisor) -> str:
    """An access token of a registered user, for cart calls through the gateway."""
    gateway = stack.state().gateway_url
    account = {"email": "watcher@example.com", "password": "correct horse battery",
               "name": "Watcher"}
    requests.post(f"{gateway}/api/v1/auth/register", json=account, timeout=10)
    login = requests.post(f"{gateway}/api/v1/auth/login", timeout=10,
                          json={k: account[k] for k in ("email", "password")})
    assert login.status_code == 200, login.text
    return login.json()["access_token"]


@pytest.fixture
def light_load(stack: Supervisor, shopper: str) -> Iterator[None]:
    """Cart reads through the gateway, about 20 a second, bounded in count and time."""
    stop = threading.Event()
    gateway = stack.state().gateway_url

    def run() -> None:
        session = requests.Session()
        deadline = time.monotonic() + 120
        for _ in range(3000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            with contextlib.suppress(requests.RequestException):  # a failing cart is the point
                session.get(f"{gateway}/api/v1/cart", timeout=2,
                            headers={"Authorization": f"Bearer {shopper}"})
            stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


@pytest.fixture
def page(stack: Supervisor) -> Iterator[tuple]:
    """The console open in Chromium, with every console message and request recorded."""
    skip_without_browser()
    messages: list[tuple[str, str]] = []
    urls: list[str] = []
    with chromium() as context:
        tab = context.new_page()
        tab.on("console", lambda m: messages.append((m.type, m.text)))
        tab.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
        tab.on("request", lambda r: urls.append(r.url))
        tab.goto(stack.state().console_url)
        yield tab, messages, urls


def chaos(stack: Supervisor, *args: str) -> int:
    return main(["chaos", *args, "--toxiproxy", stack.state().toxiproxy_url])


def breaker_shows(tab, state: str, deadline: float) -> None:
    tab.wait_for_selector(f'{CART_ROW}[data-breaker="{state}"]', timeout=deadline * 1000)


def test_status_reports_the_consoles_address(stack: Supervisor, capsys) -> None:
    assert main(["status", "--json", "--var-dir", str(stack.var)]) == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported["console_url"] == stack.state().console_url
    assert urlsplit(reported["console_url"]).hostname == "127.0.0.1"
    assert requests.get(f"{reported['console_url']}/readyz", timeout=5).status_code == 200


def test_the_page_loads_cleanly_from_loopback_only(page) -> None:
    tab, messages, urls = page
    tab.wait_for_selector("#connection[data-state=live]", timeout=15_000)
    tab.wait_for_selector(f"{CART_ROW}", timeout=15_000)
    tab.wait_for_selector("#faults tr[data-proxy=cart]", timeout=15_000)
    tab.wait_for_function("document.querySelectorAll('.u-wrap').length === 3", timeout=15_000)
    errors = [m for m in messages if m[0] in ("error", "pageerror") or "panel failed" in m[1]]
    assert errors == []
    assert urls and {urlsplit(u).hostname for u in urls} == {"127.0.0.1"}


def test_cart_breaker_opens_and_closes_with_the_fault(stack: Supervisor, light_load,
                                                     page) -> None:
    tab, messages, _ = page
    breaker_shows(tab, "closed", 20)
    assert chaos(stack, "down", "cart") == 0
    try:
        breaker_shows(tab, "open", 10)
        tab.wait_for_selector('#faults tr[data-proxy="cart"][data-enabled="no"]', timeout=5000)
    finally:
        assert chaos(stack, "clear", "cart") == 0
    breaker_shows(tab, "closed", 30)
    assert [m for m in messages if m[0] in ("error", "pageerror")] == []


def test_a_fault_added_from_the_page_is_what_chaos_list_shows(stack: Supervisor, page,
                                                             capsys) -> None:
    tab, messages, _ = page
    tab.wait_for_selector("#fault-form select[name=target] option[value=product-1]",
                          state="attached", timeout=15_000)
    tab.select_option("#fault-form select[name=target]", "product-1")
    tab.select_option("#fault-form select[name=kind]", "latency")
    tab.fill("#fault-form input[name=ms]", "40")
    tab.fill("#fault-form input[name=seconds]", "60")
    tab.click("#fault-form button[type=submit]")
    dialog = tab.wait_for_selector("#confirm[open]", timeout=5000)
    assert "latency" in dialog.inner_text() and "product-1" in dialog.inner_text()
    tab.click("#confirm-ok")
    try:
        tab.wait_for_selector('#faults tr[data-proxy="product-1"] li[data-toxic='
                              '"latency_downstream"] .left', timeout=10_000)
        capsys.readouterr()
        assert chaos(stack, "list") == 0
        listed = capsys.readouterr().out
        row = next(line for line in listed.splitlines() if line.startswith("product-1"))
        assert "latency_downstream: latency latency=40" in row
    finally:
        chaos(stack, "reset")
    assert [m for m in messages if m[0] in ("error", "pageerror")] == []
