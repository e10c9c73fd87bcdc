"""The shared app factory: JSON errors for everything, limits, probes and OpenAPI."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import marshmallow as ma
import pytest
from flask import Flask
from flask_smorest import Blueprint

from services.common.app import accepts, build_app
from services.common.config import ServiceSettings
from services.common.db import make_db
from services.common.errors import Conflict
from services.common.tokens import current_principal, login_required


@dataclasses.dataclass(frozen=True)
class DemoSettings(ServiceSettings):
    prefix: ClassVar[str] = "DEMO"
    service_name: ClassVar[str] = "demo"


class ItemIn(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=50))
    quantity = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1))


@pytest.fixture
def app(tmp_path: Path, key_files) -> Flask:
    blueprint = Blueprint("items", __name__, url_prefix="/api/v1/items")

    @blueprint.route("", methods=["POST"])
    @blueprint.arguments(ItemIn)
    @blueprint.response(201, ItemIn)
    def create(data: dict) -> dict:
        if data["name"] == "taken":
            raise Conflict("an item with this name exists", details={"name": "taken"})
        return data

    @blueprint.route("/form", methods=["POST"])
    @accepts("application/x-www-form-urlencoded")
    def form_post() -> dict:
        return {"ok": True}

    @blueprint.route("/mine", methods=["GET"])
    @login_required
    def mine() -> dict:
        return {"user": current_principal().user_id}

    @blueprint.route("/crash", methods=["GET"])
    def crash() -> dict:
        raise RuntimeError("secret internal detail")

    settings = DemoSettings.from_env({
        "database_url": f"sqlite:///{tmp_path / 'demo.db'}", "max_content_length": 1024,
        "token_public_key_file": str(key_files[1]),
    })
    return build_app(settings, make_db(), [blueprint], migrations_dir=tmp_path / "migrations",
                     api_title="Demo")


def error_of(response) -> tuple[int, str]:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return response.status_code, body["error"]["code"]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"data": "{bad", "content_type": "application/json"}, (400, "bad_request")),
    ({"json": {"name": "a", "quantity": -1}}, (422, "invalid_field")),
    ({"json": {"name": "a", "quantity": "2"}}, (422, "invalid_field")),
    ({"json": {"name": "a"}}, (422, "invalid_field")),
    ({"json": [1, 2]}, (422, "invalid_field")),
    ({"data": "name=a", "content_type": "text/plain"}, (415, "unsupported_media_type")),
    ({"data": "x" * 5000, "content_type": "application/json"}, (413, "payload_too_large")),
    ({"json": {"name": "taken", "quantity": 1}}, (409, "conflict")),
])
def test_bad_input_gets_the_right_status_and_json_shape(app: Flask, kwargs: dict, expected: tuple) -> None:
    assert error_of(app.test_client().post("/api/v1/items", **kwargs)) == expected


def test_field_errors_are_listed_in_details(app: Flask) -> None:
    body = app.test_client().post("/api/v1/items", json={"name": "", "quantity": 0}).get_json()
    assert set(body["error"]["details"]["fields"]["json"]) == {"name", "quantity"}


def test_routing_errors_and_crashes_are_json_without_internals(app: Flask) -> None:
    client = app.test_client()
    assert error_of(client.get("/nowhere")) == (404, "not_found")
    assert error_of(client.delete("/api/v1/items")) == (405, "method_not_allowed")
    crash = client.get("/api/v1/items/crash")
    assert error_of(crash) == (500, "internal_error")
    assert b"secret internal detail" not in crash.data and b"Traceback" not in crash.data


def test_declared_form_endpoint_accepts_form_posts(app: Flask) -> None:
    response = app.test_client().post("/api/v1/items/form", data={"a": "1"})
    assert response.status_code == 200


def test_protected_view_needs_a_valid_token(app: Flask, auth_header) -> None:
    client = app.test_client()
    assert error_of(client.get("/api/v1/items/mine")) == (401, "missing_token")
    assert error_of(client.get("/api/v1/items/mine", headers={"Authorization": "Bearer x"})) == (401, "invalid_token")
    assert client.get("/api/v1/items/mine", headers=auth_header(5)).get_json() == {"user": 5}


def test_probes_metrics_and_openapi(app: Flask) -> None:
    client = app.test_client()
    client.post("/api/v1/items", json={"name": "a", "quantity": 1})
    assert client.get("/healthz").get_json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["database"]["ok"] is True
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'breakwater_http_requests_total{method="POST",route="/api/v1/items",service="demo",status="201"} 1.0' in metrics
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/api/v1/items" in spec["paths"]


def test_readyz_reports_an_unreachable_database(tmp_path: Path) -> None:
    settings = DemoSettings.from_env({"database_url": "mysql+pymysql://nobody@127.0.0.1:1/none"})
    app = build_app(settings, make_db(), [], migrations_dir=tmp_path, api_title="Demo")
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"]["ok"] is False


@pytest.mark.parametrize("service", ["auth", "product", "cart", "order"])
def test_every_services_metrics_follow_prometheus_naming(service: str, tmp_path: Path,
                                                         key_files, monkeypatch) -> None:
    from tests.support.metrics import naming_problems

    monkeypatch.setenv("BREAKWATER_VAR_DIR", str(tmp_path))
    module = __import__(f"services.{service}", fromlist=["create_app"])
    app = module.create_app({"database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
                             "auto_migrate": True})
    client = app.test_client()
    client.get("/healthz")
    client.get("/api/v1/nothing-here")
    assert naming_problems(client.get("/metrics").get_data(as_text=True)) == []
