"""The layers point one way, read from the imports themselves (ast; nothing is imported).

    observability → runtime (services, gateway, the fault proxy and its client library, the console)
      → local stack → load and experiments → reports → CLI

A package may import its own layer and the layers before it, never one after it. On top of
that: a service never imports another service (only the shared kit, `services.common`), the
gateway, the fault proxy and the console import no service but the kit, and nothing imports the CLI
(`breakwater`). Benchmarks (`bench/`) stand beside the stack: they may use any layer but the
CLI, and nothing imports them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# (layer, module prefixes), lowest first. The longest matching prefix decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("observability", ("observability",)),
    ("runtime", ("services", "gateway", "chaos", "chaos.toxiproxy", "chaos.client",
                 "chaos.faults", "console")),
    ("local stack", ("local_stack",)),
    ("load and experiments", ("loadtests", "chaos.experiments")),
    ("reports", ("chaos.reports",)),
    ("CLI", ("breakwater",)),
]
BESIDE = ("bench",)  # may use every layer but the CLI; used by none
TOP_LEVEL = {"observability", "services", "gateway", "chaos", "local_stack", "loadtests",
             "breakwater", "bench", "console"}


def layer_of(module: str) -> int | None:
    """The index in LAYERS of `module` (its longest matching prefix); None outside them."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def module_name(path: Path) -> str:
    """`services/product/routes.py` → `services.product.routes` (packages by their folder)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in the file, module-level or inside functions, and of
    `importlib.import_module("…")` with a literal name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from chaos import reports` names a module too
                yield node.lineno, f"{target}.{alias.name}" if alias.name != "*" else target
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def project_files() -> list[Path]:
    """Every Python file of the project's packages (not tests, not migrations' versions)."""
    files = []
    for top in sorted(TOP_LEVEL):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts and "versions" in path.parts:
                continue
            files.append(path)
    return files


def is_project(module: str) -> bool:
    return module.split(".")[0] in TOP_LEVEL


def existing(module: str) -> str:
    """The longest prefix of `module` that is a project module (`from x import name` names
    may be functions, not modules)."""
    parts = module.split(".")
    while parts:
        candidate = ROOT.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return module


def violations() -> list[str]:
    """Every import that breaks a rule above, as `file:line: importer → imported (why)`."""
    found = []
    for path in project_files():
        importer = module_name(path)
        own = layer_of(importer)
        seen = set()
        for line, raw in imports_of(path):
            if not is_project(raw) or (line, existing(raw)) in seen:
                continue
            imported = existing(raw)
            seen.add((line, imported))
            where = f"{path.relative_to(ROOT)}:{line}: {importer} → {imported}"
            if imported.split(".")[0] == "breakwater" and importer.split(".")[0] != "breakwater":
                found.append(f"{where} (nothing imports the CLI)")
                continue
            if imported.split(".")[0] in BESIDE and importer.split(".")[0] not in BESIDE:
                found.append(f"{where} (nothing imports the benchmarks)")
                continue
            if importer.split(".")[0] in BESIDE:
                continue
            target = layer_of(imported)
            if own is not None and target is not None and target > own:
                found.append(f"{where} ({LAYERS[own][0]} may not import {LAYERS[target][0]})")
            found.extend(f"{where} ({why})" for why in _runtime_rule(importer, imported))
    return found


def _runtime_rule(importer: str, imported: str) -> list[str]:
    """Services import only themselves and the kit; gateway, fault proxy and console only the
    kit; the console imports no gateway code either (it reads the gateway over HTTP)."""
    a, b = importer.split("."), imported.split(".")
    if a[0] == "console" and b[0] == "gateway":
        return ["the console talks to the gateway over HTTP only"]
    if b[0] != "services" or len(b) < 2 or b[1] == "common":
        return []
    if a[0] == "services" and len(a) > 1 and a[1] != b[1]:
        return [f"a service imports another service: {a[1]} → {b[1]}"]
    if a[0] in ("gateway", "chaos", "console") and layer_of(importer) == 1:
        return ["the gateway, the fault proxy and the console use only the shared kit of services"]
    return []


def test_no_import_runs_back_up_the_layers() -> None:
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


@pytest.mark.parametrize(("module", "layer"), [
    ("observability.tracing", "observability"), ("services.product.routes", "runtime"),
    ("chaos.toxiproxy.link", "runtime"), ("chaos.faults", "runtime"), ("console.app", "runtime"),
    ("local_stack.stack", "local stack"), ("chaos.experiments.runner", "load and experiments"),
    ("loadtests.runner", "load and experiments"), ("chaos.reports.html", "reports"),
    ("breakwater.cli", "CLI"),
])
def test_every_package_has_its_layer(module: str, layer: str) -> None:
    index = layer_of(module)
    assert index is not None and LAYERS[index][0] == layer


def test_the_checker_catches_each_kind_of_wrong_arrow(tmp_path: Path, monkeypatch) -> None:
    """Plant one wrong import of each kind in a copy of a tiny tree; each one is reported."""
    planted = {
        "observability/__init__.py": "from chaos.experiments import runner\n",
        "services/__init__.py": "", "services/common/__init__.py": "",
        "services/cart/__init__.py": "from services.product import models\n",
        "services/product/__init__.py": "", "services/product/models.py": "",
        "gateway/__init__.py": "import services.order\n", "services/order/__init__.py": "",
        "chaos/__init__.py": "", "chaos/experiments/__init__.py": "",
        "chaos/experiments/runner.py": "from chaos.reports import write_report\n",
        "chaos/reports/__init__.py": "def write_report(): pass\n",
        "local_stack/__init__.py": "def f():\n    from breakwater import cli\n",
        "loadtests/__init__.py": "import importlib\nimportlib.import_module('bench.stats')\n",
        "breakwater/__init__.py": "", "breakwater/cli.py": "",
        "bench/__init__.py": "", "bench/stats.py": "",
        "console/__init__.py": "import gateway.proxy\nfrom services.cart import domain\n",
        "gateway/proxy.py": "", "services/cart/domain.py": "",
    }
    for name, text in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    found = "\n".join(violations())
    assert "observability may not import load and experiments" in found
    assert "a service imports another service: cart → product" in found
    assert "gateway → services.order (the gateway, the fault proxy and the console use only" \
        in found
    assert "load and experiments may not import reports" in found
    assert "nothing imports the CLI" in found
    assert "nothing imports the benchmarks" in found
    assert "the console talks to the gateway over HTTP only" in found
    assert "console → services.cart.domain (the gateway, the fault proxy and the console" in found
    assert len(violations()) == 8, found
