"""The control API: Toxiproxy 2.12's routes, plus `/metrics` and `/events`.

`POST /events` takes one kind of note from clients, `fault_timed`: whoever time-boxes a fault
says when it will be removed, so a watcher (the console) can show the time left.

Routes are thin: decode the body, call the registry, serialise. Errors are exceptions turned
into `{"error", "status"}` bodies in one place, `ControlApi.handle`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from . import errors, metrics
from .addresses import ProxyError
from .http import Request, Response
from .registry import PopulateError, Registry

VERSION = "2.12.0"

RouteHandler = Callable[..., Awaitable[Response]]


def json_response(status: int, payload: Any) -> Response:
    """A JSON response, as Toxiproxy's handlers write them."""
    body = json.dumps(payload).encode()
    return Response(status, body, {"Content-Type": "application/json"})


def error_response(status: int, message: str) -> Response:
    """The uniform error body."""
    return json_response(status, errors.ApiError(message, status).to_json())


def text_response(status: int, text: str) -> Response:
    """What Go's `http.Error` writes: plain text and a newline, never sniffed as HTML."""
    return Response(status, f"{text}\n".encode(), {
        "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"})


class NoRoute(Exception):
    """No route answers this request: gorilla/mux's own 404 or 405, before any middleware."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def decode_body(request: Request) -> Any:
    """The request's JSON, or 400 `bad request body: …`."""
    if not request.body.strip():
        raise errors.bad_request_body("EOF (empty body)")
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request_body(str(exc)) from None


class ControlApi:
    """Dispatches requests to handlers; one instance per server."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        segment = "([^/]+)"
        table: list[tuple[str, dict[str, RouteHandler]]] = [
            (r"/version", {"GET": self.version}),
            (r"/reset", {"POST": self.reset}),
            (r"/populate", {"POST": self.populate}),
            (r"/proxies", {"GET": self.list_proxies, "POST": self.create_proxy}),
            (rf"/proxies/{segment}", {
                "GET": self.show_proxy, "POST": self.update_proxy,
                "PATCH": self.update_proxy, "DELETE": self.delete_proxy,
            }),
            (rf"/proxies/{segment}/toxics", {"GET": self.list_toxics, "POST": self.add_toxic}),
            (rf"/proxies/{segment}/toxics/{segment}", {
                "GET": self.show_toxic, "POST": self.update_toxic,
                "PATCH": self.update_toxic, "DELETE": self.remove_toxic,
            }),
            (r"/metrics", {"GET": self.metrics}),
            (r"/events", {"GET": self.events, "POST": self.note_timed_fault}),
        ]
        self.routes = [(re.compile(pattern), methods) for pattern, methods in table]

    async def handle(self, request: Request) -> Response:
        """Answer one request; every answer carries an `X-Toxiproxy-Request-Id`."""
        try:
            handler, params = self._route(request.method, request.path)
            if request.headers.get("user-agent", "").startswith("Mozilla/"):
                # Toxiproxy refuses browsers, so a web page cannot drive it cross-site.
                raise NoRoute(text_response(403, "User agent not allowed"))
            response = await handler(request, *params)
        except NoRoute as exc:
            response = exc.response
        except errors.ApiError as exc:
            response = json_response(exc.status, exc.to_json())
        except ProxyError as exc:
            response = error_response(500, str(exc))
        except PopulateError as exc:
            payload = {**exc.error.to_json(), "proxies": _proxy_list(exc.done)}
            response = json_response(exc.error.status, payload)
        response.headers["X-Toxiproxy-Request-Id"] = secrets.token_hex(10)
        return response

    def _route(self, method: str, path: str) -> tuple[RouteHandler, tuple[str, ...]]:
        for pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if match:
                if method not in methods:
                    raise NoRoute(Response(405))  # gorilla/mux writes the status only
                return methods[method], match.groups()
        raise NoRoute(text_response(404, "404 page not found"))

    # -- server --------------------------------------------------------------------------
    async def version(self, request: Request) -> Response:
        body = f'{{"version": "{VERSION}"}}\n'.encode()  # api.go writes it by hand
        return Response(200, body, {"Content-Type": "application/json;charset=utf-8"})

    async def reset(self, request: Request) -> Response:
        await self.registry.reset()
        return Response(204)

    async def populate(self, request: Request) -> Response:
        try:
            proxies = await self.registry.populate(decode_body(request))
        except errors.ApiError as exc:
            # api.go `Populate` answers every error with the proxies done, here none: null.
            return json_response(exc.status, {**exc.to_json(), "proxies": None})
        return json_response(201, {"proxies": _proxy_list(proxies)})

    async def metrics(self, request: Request) -> Response:
        text = metrics.render(self.registry.proxies.values())
        return Response(200, text.encode(), {"Content-Type": "text/plain; version=0.0.4"})

    async def events(self, request: Request) -> Response:
        since = request.query.get("since", [None])[0]
        try:
            cutoff = float(since) if since is not None else None
        except ValueError:
            raise errors.ApiError("since must be a unix timestamp", 400) from None
        return json_response(200, self.registry.events.since(cutoff))

    async def note_timed_fault(self, request: Request) -> Response:
        """POST /events `{"event": "fault_timed", "proxy", "fault", "until"}`: `fault` (a
        toxic's name, or `down`) on `proxy` is due to be removed at the unix time `until`."""
        body = decode_body(request)
        if not isinstance(body, dict) or body.get("event") != "fault_timed":
            raise errors.ApiError('only {"event": "fault_timed", "proxy": …, "fault": …, '
                                  '"until": …} may be posted', 400)
        self.registry.get(str(body.get("proxy") or ""))  # 404 for an unknown proxy
        fault, until = body.get("fault"), body.get("until")
        if not isinstance(fault, str) or not fault.strip():
            raise errors.ApiError("fault must name a toxic or be 'down'", 400)
        if isinstance(until, bool) or not isinstance(until, int | float):
            raise errors.ApiError("until must be a unix time in seconds", 400)
        event = self.registry.events.record("fault_timed", str(body["proxy"]), fault=fault,
                                            until=float(until))
        return json_response(201, event)

    # -- proxies -------------------------------------------------------------------------
    async def list_proxies(self, request: Request) -> Response:
        proxies = self.registry.proxies
        return json_response(200, {name: proxy.to_json() for name, proxy in proxies.items()})

    async def create_proxy(self, request: Request) -> Response:
        proxy = await self.registry.create(decode_body(request))
        return json_response(201, proxy.to_json())

    async def show_proxy(self, request: Request, name: str) -> Response:
        return json_response(200, self.registry.get(name).to_json())

    async def update_proxy(self, request: Request, name: str) -> Response:
        self.registry.get(name)  # 404 before complaining about the body
        proxy = await self.registry.update(name, decode_body(request))
        return json_response(200, proxy.to_json())

    async def delete_proxy(self, request: Request, name: str) -> Response:
        await self.registry.delete(name)
        return Response(204)

    # -- toxics --------------------------------------------------------------------------
    async def list_toxics(self, request: Request, name: str) -> Response:
        toxics = self.registry.get(name).all_toxics()
        return json_response(200, [toxic.to_json() for toxic in toxics])

    async def add_toxic(self, request: Request, name: str) -> Response:
        self.registry.get(name)
        toxic = await self.registry.add_toxic(name, decode_body(request))
        return json_response(200, toxic.to_json())

    async def show_toxic(self, request: Request, name: str, toxic: str) -> Response:
        return json_response(200, self.registry.get_toxic(name, toxic).to_json())

    async def update_toxic(self, request: Request, name: str, toxic: str) -> Response:
        self.registry.get_toxic(name, toxic)
        updated = await self.registry.update_toxic(name, toxic, decode_body(request))
        return json_response(200, updated.to_json())

    async def remove_toxic(self, request: Request, name: str, toxic: str) -> Response:
        await self.registry.remove_toxic(name, toxic)
        return Response(204)


def _proxy_list(proxies: list) -> list[dict[str, Any]] | None:
    """Go's `proxiesWithToxics`: the proxies as JSON, or null when there are none."""
    return [proxy.to_json() for proxy in proxies] or None
