"""A real headless Chromium for browser tests: Debian's `chromium` driven by Playwright's
driver (never a downloaded browser). Tests skip with the reason when either is missing."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def skip_without_browser() -> None:
    """Skip the calling test, saying what to install, when no browser can be driven."""
    if not CHROMIUM.exists():
        pytest.skip("no browser: install Debian's chromium (`apt-get install -y chromium`; "
                    ".ci/run does) to run the browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright's driver is not installed (`pip install -e '.[test]'`)")


@contextlib.contextmanager
def chromium(viewport: tuple[int, int] = (1400, 1000)) -> Iterator[Any]:
    """A browser context on Debian's Chromium with a fresh profile; closed afterwards."""
    skip_without_browser()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="breakwater-chromium-")
    try:
        with sync_playwright() as driver:
            context = driver.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
                viewport={"width": viewport[0], "height": viewport[1]})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
