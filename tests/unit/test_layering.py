"""The dependency rules of the architecture guide, checked on the import graph (AST, no imports run)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "orgate"

# layer -> layers it must never import
FORBIDDEN = {
    # the shared value types: below every layer, importing none
    "core": {"server", "pipeline", "routing", "upstreams", "dialects", "governance", "store", "keyauth", "cli",
             "config"},
    "errors": {"server", "pipeline", "routing", "upstreams", "dialects", "governance", "store", "keyauth", "cli",
               "config", "core"},
    "dialects": {"server", "pipeline", "routing", "upstreams", "governance", "store", "keyauth", "cli"},
    "governance": {"server", "pipeline", "routing", "upstreams", "dialects", "cli"},
    "routing": {"server", "pipeline", "governance", "store", "keyauth", "cli"},
    "upstreams": {"server", "pipeline", "governance", "store", "keyauth", "cli"},
    "store": {"server", "pipeline", "routing", "upstreams", "dialects", "cli"},
    "pipeline": {"server", "cli"},
    "observe": {"server", "pipeline", "cli", "routing", "upstreams", "dialects"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orgate."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("orgate."))
    return out


def test_layers_respect_the_dependency_direction():
    problems = []
    for path in PKG.rglob("*.py"):
        layer = _layer(path)
        bad = _imports(path) & FORBIDDEN.get(layer, set())
        if bad:
            problems.append(f"{path.relative_to(PKG)} imports {sorted(bad)}")
    assert problems == []


def test_nothing_imports_the_server_but_the_composition_root():
    offenders = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                 if _layer(p) not in ("server", "cli") and "server" in _imports(p)]
    assert offenders == []
