"""The set of proxies and every change the API can make to it, recorded in the event log.

These are the domain functions behind the routes: they take decoded JSON, apply Toxiproxy's
rules, and raise `ApiError` (or `ProxyError` for runtime failures, answered with 500).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from . import errors
from .addresses import ProxyError, resolve_listen
from .events import EventLog
from .proxy import Proxy
from .toxics import Toxic, fold_keys, parse_new, parse_update


def _proxy_fields(body: Any, where: str = "") -> dict[str, Any]:
    """The proxy fields of a request body, type-checked; absent keys are absent."""
    if not isinstance(body, dict):
        raise errors.bad_request_body(f"expected a JSON object{where}")
    body = fold_keys(body)
    fields: dict[str, Any] = {}
    for key in ("name", "listen", "upstream"):
        if key in body:
            if not isinstance(body[key], str):
                raise errors.bad_request_body(f"{key} must be a string{where}")
            fields[key] = body[key]
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise errors.bad_request_body(f"enabled must be a boolean{where}")
        fields["enabled"] = body["enabled"]
    return fields


class PopulateError(Exception):
    """Populate stopped at a runtime error; the proxies done so far go with the answer."""

    def __init__(self, error: errors.ApiError, done: list[Proxy]) -> None:
        super().__init__(error.message)
        self.error = error
        self.done = done


class Registry:
    """Every proxy by name, and the operations of the control API on them."""

    def __init__(self, events: EventLog | None = None, rng: random.Random | None = None) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.events = events or EventLog()
        self.rng = rng or random.Random()
        # Operations that bind sockets await; serialise them so two requests never interleave.
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        """The proxy called `name`, or 404."""
        try:
            return self.proxies[name]
        except KeyError:
            raise errors.proxy_not_found() from None

    # -- proxies -------------------------------------------------------------------------
    async def create(self, body: Any) -> Proxy:
        """POST /proxies: a new proxy, bound before answering when enabled (the default)."""
        fields = _proxy_fields(body)
        if not fields.get("name"):
            raise errors.missing_field("name")
        if not fields.get("upstream"):
            raise errors.missing_field("upstream")
        async with self.lock:
            if fields["name"] in self.proxies:
                raise errors.proxy_exists()
            proxy = Proxy(fields["name"], fields.get("listen", ""), fields["upstream"], self.rng)
            if fields.get("enabled", True):
                await proxy.start()  # a bind failure raises and the proxy is not kept
            self.proxies[proxy.name] = proxy
            self.events.record("proxy_created", proxy.name, listen=proxy.listen,
                               upstream=proxy.upstream, enabled=proxy.enabled)
            return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        """POST/PATCH /proxies/{name}: omitted fields keep their values."""
        async with self.lock:
            proxy = self.get(name)
            fields = _proxy_fields(body)
            listen = fields.get("listen", proxy.listen)
            upstream = fields.get("upstream", proxy.upstream)
            enabled = fields.get("enabled", proxy.enabled)
            listen_changed = listen != proxy.listen and await resolve_listen(listen) != proxy.listen
            if listen_changed or upstream != proxy.upstream:
                await proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
                self.events.record("proxy_updated", name, listen=listen, upstream=upstream)
            if enabled and not proxy.enabled:
                await proxy.start()
                self.events.record("proxy_enabled", name, listen=proxy.listen)
            elif not enabled and proxy.enabled:
                await proxy.stop()
                self.events.record("proxy_disabled", name)
            return proxy

    async def delete(self, name: str) -> None:
        """DELETE /proxies/{name}: stop it and forget it."""
        async with self.lock:
            proxy = self.get(name)
            await proxy.stop()
            del self.proxies[name]
            self.events.record("proxy_deleted", name)

    async def populate(self, body: Any) -> list[Proxy]:
        """POST /populate: create or replace the proxies named, in order; validate all first."""
        if not isinstance(body, list):
            raise errors.bad_request_body("expected a JSON array of proxies")
        entries = [_proxy_fields(entry, f" at proxy {i}") for i, entry in enumerate(body, 1)]
        for i, entry in enumerate(entries, 1):
            if not entry.get("name"):
                raise errors.missing_field(f"name at proxy {i}")
            if not entry.get("upstream"):
                raise errors.missing_field(f"upstream at proxy {i}")
        done: list[Proxy] = []
        async with self.lock:
            for entry in entries:
                try:
                    done.append(await self._add_or_replace(entry))
                except ProxyError as exc:
                    raise PopulateError(errors.ApiError(str(exc), 500), done) from None
        return done

    async def _add_or_replace(self, entry: dict[str, Any]) -> Proxy:
        listen = entry.get("listen", "")
        existing = self.proxies.get(entry["name"])
        if existing is not None:
            same = await resolve_listen(listen) == existing.listen
            if same and entry["upstream"] == existing.upstream:
                return existing  # left exactly as it is: toxics, connections, enabled state
            await existing.stop()
        proxy = Proxy(entry["name"], listen, entry["upstream"], self.rng)
        if entry.get("enabled", True):
            await proxy.start()
        self.proxies[proxy.name] = proxy
        self.events.record(
            "proxy_replaced" if existing else "proxy_created", proxy.name,
            listen=proxy.listen, upstream=proxy.upstream, enabled=proxy.enabled,
        )
        return proxy

    async def reset(self) -> None:
        """POST /reset: every proxy enabled again, every toxic removed, nothing deleted."""
        async with self.lock:
            for proxy in self.proxies.values():
                if not proxy.enabled:
                    await proxy.start()
                    self.events.record("proxy_enabled", proxy.name, listen=proxy.listen)
                for toxic in proxy.remove_all_toxics():
                    self.events.record("toxic_removed", proxy.name, toxic=toxic.to_json())
                self.events.record("proxy_reset", proxy.name)

    # -- toxics --------------------------------------------------------------------------
    def get_toxic(self, proxy_name: str, toxic_name: str) -> Toxic:
        """The toxic, or 404 (`proxy not found` first)."""
        toxic = self.get(proxy_name).find_toxic(toxic_name)
        if toxic is None:
            raise errors.toxic_not_found()
        return toxic

    async def add_toxic(self, proxy_name: str, body: Any) -> Toxic:
        """POST /proxies/{p}/toxics: the toxic acts on open connections at once."""
        async with self.lock:
            proxy = self.get(proxy_name)
            toxic = parse_new(body, lambda name: proxy.find_toxic(name) is not None)
            proxy.add_toxic(toxic)
            self.events.record("toxic_added", proxy.name, toxic=toxic.to_json())
            return toxic

    async def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> Toxic:
        """POST/PATCH /proxies/{p}/toxics/{t}: attributes merged, toxicity only when sent."""
        async with self.lock:
            proxy = self.get(proxy_name)
            toxic = self.get_toxic(proxy_name, toxic_name)
            attributes, toxicity = parse_update(toxic, body)
            proxy.update_toxic(toxic, attributes, toxicity)
            self.events.record("toxic_updated", proxy.name, toxic=toxic.to_json())
            return toxic

    async def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        """DELETE /proxies/{p}/toxics/{t}."""
        async with self.lock:
            proxy = self.get(proxy_name)
            toxic = self.get_toxic(proxy_name, toxic_name)
            proxy.remove_toxic(toxic)
            self.events.record("toxic_removed", proxy.name, toxic=toxic.to_json())

    async def close(self) -> None:
        """Stop every proxy (server shutdown)."""
        for proxy in list(self.proxies.values()):
            await proxy.stop()
