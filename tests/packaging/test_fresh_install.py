"""A fresh Python venv, its own pip (no upgrade), the lock, a normal (non-editable) install of
what the service image installs: it resolves, holds no Locust or matplotlib, runs a service,
and keeps its state in ./var of the working directory, not beside the installed packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.packaging.lock import LOCK, NOT_LOCKED, ROOT, locked_versions, normalise
from tests.packaging.test_lock import HEAVY, TEST_TOOLS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# What a build reads: pyproject.toml, the README it names, every package it finds.
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "packages"]["find"]["include"]
SOURCES = ("pyproject.toml", "README.md", *(pattern.rstrip("*") for pattern in PACKAGES))
PROBE = """
import json, services
from chaos.experiments.runs import reports_root
from loadtests.accounts import var_dir as load_var_dir
from observability.settings import TracingSettings
from importlib.resources import files
from services.common.settings import var_dir
templates = files("chaos").joinpath("reports", "templates")
print(json.dumps({"package": services.__file__, "var": str(var_dir()),
                  "templates": sorted(p.name for p in templates.iterdir()),
                  "traces": str(TracingSettings.from_env().traces_dir),
                  "load_var": str(load_var_dir()), "reports": str(reports_root().absolute())}))
"""
SERVE = """
from services.product import create_app
app = create_app({"auto_migrate": True})  # as `python -m services.product` does
client = app.test_client()
print(client.get("/healthz").status_code, client.get("/api/v1/products").status_code)
import console.app, console.server  # the live console runs from the service image too
print("console")
"""


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BREAKWATER_", "PRODUCT_"))}
    return {**env, **extra}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv made by the base interpreter, with the pip it ships, and the sources installed
    (built into a wheel, not editable) with the lock as constraints."""
    work = tmp_path_factory.mktemp("fresh-install")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    venv = work / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-compile",
                             "-c", str(LOCK), str(source)], capture_output=True, text=True,
                            timeout=540, env=_environment())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return venv


def _run(venv: Path, code: str, cwd: Path, **env: str) -> str:
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=cwd,
                            capture_output=True, text=True, timeout=120, env=_environment(**env))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_venvs_own_pip_installs_the_service_dependencies_from_the_lock(venv: Path) -> None:
    listing = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format",
                              "json"], capture_output=True, text=True, timeout=120, check=True)
    installed = {normalise(d["name"]): d["version"] for d in json.loads(listing.stdout)}
    assert installed["pip"].startswith("23.2"), "the venv's own pip, not an upgraded one"
    locked = locked_versions()
    assert {n: v for n, v in installed.items()
            if n not in NOT_LOCKED and locked.get(n) != v} == {}
    assert installed.keys() & (HEAVY | TEST_TOOLS) == set()
    assert {"flask", "gunicorn", "opentelemetry-sdk", "greenlet"} <= installed.keys()


def test_a_service_runs_on_the_service_dependencies_alone(venv: Path, tmp_path: Path) -> None:
    out = _run(venv, SERVE, tmp_path)
    assert out.split() == ["200", "200", "console"]
    assert (tmp_path / "var" / "product.db").exists()


def test_the_state_folder_is_dot_var_in_the_working_directory(venv: Path, tmp_path: Path) -> None:
    found = json.loads(_run(venv, PROBE, tmp_path))
    assert found["package"].startswith(str(venv)), "imported from the install, not the checkout"
    assert found["var"] == found["load_var"] == str(tmp_path / "var")
    assert found["traces"] == str(tmp_path / "var" / "traces")
    assert found["reports"] == str(tmp_path / "reports")
    # The reports' templates are package data of every install.
    assert {"base.html", "index.html", "report.html"} <= set(found["templates"])

    elsewhere = tmp_path / "state"
    found = json.loads(_run(venv, PROBE, tmp_path, BREAKWATER_VAR_DIR=str(elsewhere)))
    assert found["var"] == found["load_var"] == str(elsewhere)
    assert found["traces"] == str(elsewhere / "traces")


def test_grpc_without_its_extra_is_a_clear_error(venv: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "from observability.tracing import init_tracing; init_tracing('product')"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=_environment(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="grpc"))
    assert result.returncode != 0
    assert "TracingConfigError: OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs OpenTelemetry's gRPC " \
        "exporter: pip install 'breakwater[grpc]'" in result.stderr
