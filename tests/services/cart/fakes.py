"""Upstreams for cart and order tests: a fake product service and a fault-injecting server.

`UpstreamServer` serves any WSGI app on a free loopback port in a thread and can make chosen
requests fail the ways real dependencies do: answer 500, answer slowly, or do the work and
lose the answer (slow *after* the effect). A closed port stands in for a service that is down.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from tests.support.processes import free_port

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Fault:
    """What to do to requests whose "METHOD /path" fully matches `pattern`."""

    pattern: str
    kind: str  # "error" (500, no effect) | "slow" (wait, then 503, no effect) | "lost" (effect, then wait)
    delay: float = 10.0
    times: int | None = None  # None: every matching request


class UpstreamServer:
    """A WSGI app on 127.0.0.1:<free port>, served by a thread, with injectable faults."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._serve, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})

    def __enter__(self) -> UpstreamServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Wake every delayed request, stop serving and close the port."""
        self._stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def fault(self, pattern: str, kind: str, *, delay: float = 10.0, times: int | None = None) -> None:
        """Make matching requests fail; see `Fault`."""
        with self._lock:
            self.faults.append(Fault(pattern, kind, delay, times))

    def heal(self) -> None:
        """Remove every fault."""
        with self._lock:
            self.faults.clear()

    def _take_fault(self, line: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if re.fullmatch(fault.pattern, line):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        line = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
        with self._lock:
            self.requests.append(line)
        fault = self._take_fault(line)
        if fault is None:
            return self.app(environ, start_response)
        if fault.kind == "error":
            start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "application/json")])
            return [b'{"error": {"code": "internal_error", "message": "injected", "details": {}}}']
        if fault.kind == "slow":
            self._stopping.wait(fault.delay)
            start_response("503 SERVICE UNAVAILABLE", [("Content-Type", "application/json")])
            return [b'{"error": {"code": "too_slow", "message": "injected", "details": {}}}']
        if fault.kind == "lost":
            body = b"".join(self.app(environ, start_response))
            self._stopping.wait(fault.delay)
            return [body]
        raise ValueError(f"unknown fault kind {fault.kind!r}")


def closed_port_url() -> str:
    """The URL of a loopback port nothing listens on (a service that is down)."""
    return f"http://127.0.0.1:{free_port()}"


class FakeProduct:
    """Product's API as cart and order use it: products and all-or-nothing reservations."""

    def __init__(self) -> None:
        self.products: dict[int, dict[str, Any]] = {}
        self.reservations: dict[int, dict[str, Any]] = {}
        self.acting_users: list[str] = []  # X-Breakwater-Acting-User of each reservation call
        self.lock = threading.Lock()
        self.app = self._build()

    def add(self, product_id: int, name: str, price_cents: int, stock: int = 10) -> None:
        """Put a product in the catalog."""
        self.products[product_id] = {"id": product_id, "name": name, "slug": name.lower().replace(" ", "-"),
                                     "image": f"{product_id}.jpg", "price_cents": price_cents, "stock": stock}

    def stock(self, product_id: int) -> int:
        """Stock available now (held and sold units are not available)."""
        return self.products[product_id]["stock"]

    def with_status(self, status: str) -> list[dict[str, Any]]:
        """The reservations in this status."""
        return [r for r in self.reservations.values() if r["status"] == status]

    def expire(self, reservation_id: int) -> None:
        """Let a hold lapse, as product's sweeper would: its units come back."""
        with self.lock:
            reservation = self.reservations[reservation_id]
            assert reservation["status"] == "held"
            for line in reservation["lines"]:
                self.products[line["product_id"]]["stock"] += line["quantity"]
            reservation["status"] = "expired"

    def _body(self, product: dict[str, Any]) -> dict[str, Any]:
        cents = product["price_cents"]
        return {**product, "price": f"{cents // 100}.{cents % 100:02d}"}

    def _build(self) -> Flask:
        app = Flask("fake_product")

        def error(status: int, code: str) -> tuple[Any, int]:
            return jsonify(error={"code": code, "message": code.replace("_", " "), "details": {}}), status

        @app.get("/healthz")
        def healthz() -> Any:
            return {"status": "ok"}

        @app.get("/api/v1/products/<int:product_id>")
        def show(product_id: int) -> Any:
            if not request.headers.get("Authorization", "").startswith("Bearer "):
                return error(401, "missing_token")
            product = self.products.get(product_id)
            return self._body(product) if product else error(404, "product_not_found")

        @app.before_request
        def service_calls_only() -> Any:
            # Order's reservation calls carry its service token and the user it acts for.
            if request.path.startswith("/api/v1/reservations"):
                acting = request.headers.get("X-Breakwater-Acting-User")
                if not acting or not request.headers.get("Authorization", "").startswith("Bearer "):
                    return error(400, "acting_user_required")
                with self.lock:
                    self.acting_users.append(acting)
            return None

        @app.get("/api/v1/reservations/by-ref/<order_ref>")
        def by_ref(order_ref: str) -> Any:
            with self.lock:
                for existing in self.reservations.values():
                    if existing["order_ref"] == order_ref:
                        return existing, 200
            return error(404, "reservation_not_found")

        @app.post("/api/v1/reservations")
        def reserve() -> Any:
            body = request.get_json()
            with self.lock:
                for existing in self.reservations.values():
                    if existing["order_ref"] == body["order_ref"]:
                        return existing, 200
                for line in body["lines"]:
                    product = self.products.get(line["product_id"])
                    if product is None:
                        return error(404, "product_not_found")
                    if product["stock"] < line["quantity"]:
                        return error(409, "insufficient_stock")
                for line in body["lines"]:
                    self.products[line["product_id"]]["stock"] -= line["quantity"]
                reservation = {"id": len(self.reservations) + 1, "order_ref": body["order_ref"],
                               "status": "held", "lines": body["lines"], "expires_at": "later"}
                self.reservations[reservation["id"]] = reservation
                return reservation, 201

        @app.post("/api/v1/reservations/<int:rid>/<action>")
        def settle(rid: int, action: str) -> Any:
            with self.lock:
                reservation = self.reservations.get(rid)
                if reservation is None:
                    return error(404, "reservation_not_found")
                wanted = {"confirm": "confirmed", "release": "released"}[action]
                if reservation["status"] not in ("held", wanted):
                    return error(409, f"reservation_{reservation['status']}")
                if reservation["status"] == "held" and action == "release":
                    for line in reservation["lines"]:
                        self.products[line["product_id"]]["stock"] += line["quantity"]
                reservation["status"] = wanted
                return reservation, 200

        return app
