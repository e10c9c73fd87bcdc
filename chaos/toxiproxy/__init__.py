"""An asyncio TCP fault proxy that speaks Toxiproxy 2.12's control API.

    handle = run_in_thread()          # on 127.0.0.1, a free port
    requests.post(f"{handle.url}/proxies", json={...})
    handle.stop()

or `python -m chaos.toxiproxy --port 8474`. The contract is /work/shared/TOXIPROXY.md.
"""

from .api import VERSION
from .server import Server, ServerThread, load_config, run_in_thread

__all__ = ["VERSION", "Server", "ServerThread", "load_config", "run_in_thread"]
