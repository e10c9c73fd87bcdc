"""Retake the README's console screenshots with the browser set-up of the tests.

    .venv/bin/python docs/images/screenshots.py http://127.0.0.1:8090

Run it against a console whose stack is busy (load running, a fault on, an experiment under
way) so the pictures show something. Writes console.png and console-trace.png beside itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.support.browser import chromium  # noqa: E402


def main(url: str) -> int:
    """Open the console, wait for live data, take the page and one trace's waterfall."""
    with chromium(viewport=(1440, 1000)) as context:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#connection[data-state=live]", timeout=20_000)
        page.wait_for_selector("#traffic tbody tr[data-group]", timeout=30_000)
        page.wait_for_function("document.querySelectorAll('.u-wrap').length === 3")
        page.wait_for_timeout(8_000)  # let the charts fill a little
        page.screenshot(path=str(HERE / "console.png"), full_page=True)
        # A checkout (gateway → order → cart and product) among the slowest, else the slowest.
        checkout = page.locator("#traces-slowest li[data-trace]", has_text="/api/v1/orders")
        chosen = checkout.first if checkout.count() else \
            page.locator("#traces-slowest li[data-trace]").first
        chosen.locator("button").click()
        page.wait_for_selector("#waterfall .span-row", timeout=10_000)
        page.locator("#traces-section").screenshot(path=str(HERE / "console-trace.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8090"))
