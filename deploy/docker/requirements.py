"""Print the requirements of Breakwater's dependencies plus the extras named as arguments.

    python requirements.py            # the service image: pyproject's dependencies
    python requirements.py load       # the Locust image: + the `load` extra

Read from pyproject.toml itself (one source of what is needed); the versions come from
requirements.lock, which the image passes to pip as constraints. An extra that names
`breakwater[other]` brings in `other`'s requirements too.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

SELF = re.compile(r"^breakwater\[([^\]]+)\]\s*$", re.IGNORECASE)


def requirements(project: dict, extras: list[str]) -> list[str]:
    """The dependencies and every requirement of `extras`, self-references expanded."""
    found = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no extra {extra!r}")
        seen.add(extra)
        for requirement in optional[extra]:
            inner = SELF.match(requirement)
            if inner:
                pending.extend(name.strip() for name in inner.group(1).split(","))
            elif requirement not in found:
                found.append(requirement)
    return found


def main(argv: list[str]) -> int:
    """Print one requirement a line."""
    path = Path("pyproject.toml")
    project = tomllib.loads(path.read_text())["project"]
    print("\n".join(requirements(project, argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
