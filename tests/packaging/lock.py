"""Reading requirements.lock and the installed distributions' own metadata."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
# What a venv holds that no lock lists: the installer itself, the project, the lock's tool.
NOT_LOCKED = frozenset({"pip", "setuptools", "wheel", "breakwater", "uv"})


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_requirements(path: Path = LOCK) -> list[Requirement]:
    """Every requirement line of the lock (the `# via` comments skipped)."""
    return [Requirement(line) for line in path.read_text().splitlines()
            if line.strip() and not line.startswith((" ", "#", "-"))]


def locked_versions(path: Path = LOCK,
                    environment: dict[str, str] | None = None) -> dict[str, str]:
    """Name → exact version for this interpreter and platform (markers evaluated)."""
    found = {}
    for requirement in lock_requirements(path):
        if requirement.marker is None or requirement.marker.evaluate(environment):
            (specifier,) = requirement.specifier
            found[normalise(requirement.name)] = specifier.version
    return found


def closure(roots: list[str], extras: tuple[str, ...] = ()) -> set[str]:
    """Every distribution the requirements `roots` pull in, walked through the metadata of the
    distributions installed here (markers evaluated, each with its own extras)."""
    seen: set[str] = set()
    pending = [(Requirement(root), extras) for root in roots]
    while pending:
        requirement, wanted = pending.pop()
        marker_env = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
        if requirement.marker is not None and not any(
                requirement.marker.evaluate(env) for env in marker_env):
            continue
        name = normalise(requirement.name)
        key = name + "[" + ",".join(sorted(requirement.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        for inner in metadata.requires(requirement.name) or []:
            pending.append((Requirement(inner), tuple(sorted(requirement.extras))))
    return {key.split("[")[0] for key in seen}
