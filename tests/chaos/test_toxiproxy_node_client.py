"""The embedded server driven by the Node client `toxiproxy-node-client`, unchanged.

`tests/chaos/node/drive.js` makes the calls through the client's own classes and measures
round trips on the wire; this test judges what it saw. `make test` installs the client from
the committed lock file (`npm ci`); without node and npm the test is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="module")
def node_client() -> Path:
    """The client installed from package-lock.json (installed here if `make` has not)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the Node client cannot be exercised")
    if not (NODE_DIR / "node_modules" / "toxiproxy-node-client").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR,
                       check=True, timeout=300)
    return NODE_DIR / "drive.js"


def test_node_client_drives_proxies_and_toxics(node_client, server, echo):
    """Create a proxy, add, update and remove a latency toxic, disable and enable the proxy,
    populate, reset and remove — each effect measured through the proxy on the wire."""
    result = subprocess.run(["node", str(node_client), server.url, echo.address],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["version"] == "2.12.0"
    assert seen["created"]["name"] == "wire" and seen["created"]["enabled"] is True
    assert seen["created"]["upstream"] == echo.address
    assert not seen["created"]["listen"].endswith(":0")
    assert seen["baselineMs"] < 195
    assert seen["added"] == {"attributes": {"latency": 200, "jitter": 0}, "name": "slow",
                             "stream": "downstream", "toxicity": 1, "type": "latency"}
    assert 195 <= seen["slowedMs"] < 395  # 200 ms asked, and not yet the updated 400
    assert seen["updated"]["attributes"] == {"latency": 400, "jitter": 0}
    assert seen["fetched"] == seen["updated"]
    assert seen["slowerMs"] >= 395
    assert seen["curedMs"] < 195
    assert seen["disabled"] == {"enabled": False, "wire": "refused"}
    assert seen["enabled"]["enabled"] is True and seen["enabled"]["rttMs"] < 195
    assert seen["populated"] == ["other", "wire"] and seen["all"] == ["other", "wire"]
    assert seen["toxicsBeforeReset"] == 1
    assert seen["afterReset"]["enabled"] is True and seen["afterReset"]["toxics"] == 0
    assert seen["missing"] == "Request failed with status code 404"
    assert seen["afterRemove"] == []
