"""The image: every Dockerfile passes hadolint, and what it copies and runs exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import ROOT, need, tool

DOCKERFILES = sorted({ROOT / "Dockerfile", *ROOT.glob("deploy/docker/**/Dockerfile*")})


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need(lambda: tool("hadolint")), "--failure-threshold", "warning",
                           str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_bad_dockerfile(tmp_path: Path) -> None:
    """Negative control: an unpinned base and an unpinned apt install must fail."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_ignored_rules_say_why() -> None:
    for dockerfile in DOCKERFILES:
        for number, line in enumerate(dockerfile.read_text().splitlines(), 1):
            if "hadolint ignore" in line:
                assert re.search(r"hadolint ignore=\S+\s+\S.{10,}", line), (
                    f"{dockerfile}:{number}: an ignored rule needs a reason on the same line")


def test_the_image_runs_as_a_non_root_user_from_a_pinned_slim_base() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm\b", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and not users[-1].startswith(("root", "0")), users
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    # Dependencies are installed before the sources are copied (a cached layer).
    assert text.index("COPY pyproject.toml") < text.index("pip install") < text.index("COPY services")


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    text = (ROOT / "Dockerfile").read_text()
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for line in re.findall(r"^COPY\s+(.+)$", text, re.M):
        if "--from=" in line:
            continue  # from another stage of the build, not from the context
        *sources, _ = [part for part in line.split() if not part.startswith("--")]
        for source in sources:
            matches = list(ROOT.glob(source))
            assert matches, f"COPY {source}: nothing there"
            assert any(source == inc or source.startswith(inc + "/") for inc in included), (
                f"COPY {source}: .dockerignore keeps it out of the build context")


def test_the_entry_point_knows_every_role_compose_and_kubernetes_use() -> None:
    entrypoint = (ROOT / "deploy" / "docker" / "entrypoint.sh").read_text()
    for role in ("serve)", "gateway)", "migrate)", "keys)"):
        assert role in entrypoint
    for name in ("auth", "product", "cart", "order"):
        assert (ROOT / "services" / name / "migrations").is_dir()
        assert (ROOT / "services" / name / "__init__.py").is_file()
    assert (ROOT / "gateway" / "__main__.py").is_file() and "python -m gateway" in entrypoint
