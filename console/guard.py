"""What keeps another web page from driving the console's fault controls.

Three checks, each enough to stop a cross-site request on its own:

- the Host header must be a loopback name (or one allowed by the settings), so a DNS-rebound
  name pointing at 127.0.0.1 gets nothing, not even the live view;
- a request that changes anything must come from the console's own origin (`Origin`, or
  `Sec-Fetch-Site: same-origin` where a browser sends no Origin); a request with neither is
  refused;
- and it must carry the token minted into the page it came from (`X-Console-Token`), signed
  with a secret that lives only in this process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Collection, Mapping

TOKEN_HEADER = "X-Console-Token"
TOKEN_SECONDS = 24 * 3600


def host_name(host: str) -> str:
    """`127.0.0.1:8090` → `127.0.0.1`; `[::1]:8090` → `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: Collection[str]) -> bool:
    """Whether the Host header names this console (not a rebound foreign name)."""
    return bool(host) and host_name(host) in allowed


def same_origin(headers: Mapping[str, str], scheme: str, host: str) -> bool:
    """Whether a request comes from a page of this very origin."""
    origin = headers.get("Origin")
    if origin:
        return origin.rstrip("/").lower() == f"{scheme}://{host}".lower()
    return headers.get("Sec-Fetch-Site") == "same-origin"


class PageTokens:
    """Tokens minted into each page: `<issued>.<nonce>.<signature>`, valid for a day."""

    def __init__(self, secret: bytes | None = None, clock: Callable[[], float] = time.time,
                 lifetime: float = TOKEN_SECONDS) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.clock = clock
        self.lifetime = lifetime

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        """A new token for one page."""
        payload = f"{int(self.clock())}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._sign(payload)}"

    def valid(self, token: str | None) -> bool:
        """Whether `token` was issued here and has not expired."""
        if not token or token.count(".") != 2:
            return False
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return False
        issued = payload.split(".", 1)[0]
        return issued.isdigit() and 0 <= self.clock() - int(issued) <= self.lifetime
