"""The dependency rules of docs architecture.md, checked on the import graph (AST, no imports run).

    server/ -> pipeline -> routing -> upstreams -> dialects        pipeline -> governance -> store (ports)
    core/, errors.py: the shared value types (usage, target, SSE framer, the error tree with UpstreamError),
    below every layer, so routing and upstreams never need each other.

Every top-level module has a rule (a new one needs one), and there are no per-file exceptions: a module
that needs one is in the wrong place.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "orgate"

# layer -> layers it must never import (module-level and function-level imports alike)
FORBIDDEN: dict[str, set[str]] = {
    "core": {"server", "pipeline", "routing", "upstreams", "dialects", "governance", "store", "keyauth", "cli",
             "config", "errors", "observe", "sso"},
    "errors": {"server", "pipeline", "routing", "upstreams", "dialects", "governance", "store", "keyauth", "cli",
               "config", "core", "observe", "sso"},
    "dialects": {"server", "pipeline", "routing", "upstreams", "governance", "store", "keyauth", "cli", "observe",
                 "sso", "config"},
    "upstreams": {"server", "pipeline", "routing", "governance", "store", "keyauth", "cli", "observe", "sso"},
    "routing": {"server", "pipeline", "governance", "store", "keyauth", "cli", "observe", "sso"},
    "governance": {"server", "pipeline", "routing", "upstreams", "dialects", "cli", "observe"},
    "store": {"server", "pipeline", "routing", "upstreams", "dialects", "cli", "observe"},
    "observe": {"server", "pipeline", "cli", "routing", "upstreams", "dialects"},
    "pipeline": {"server", "cli", "sso"},
    "keyauth": {"server", "pipeline", "routing", "upstreams", "dialects", "cli"},
    "sso": {"server", "pipeline", "routing", "upstreams", "dialects", "cli"},
    "config": {"server", "pipeline", "routing", "upstreams", "dialects", "store", "keyauth", "cli", "observe"},
    "config_check": {"server", "pipeline", "routing", "upstreams", "dialects", "store", "keyauth", "cli", "observe"},
    "config_env": {"server", "pipeline", "routing", "upstreams", "dialects", "governance", "store", "keyauth",
                   "cli", "observe", "sso"},
    "model_families": {"server", "pipeline", "routing", "upstreams", "dialects", "governance", "store", "keyauth",
                       "cli", "observe", "sso"},
    "logs": {"server", "routing", "upstreams", "dialects", "governance", "store", "keyauth", "cli", "sso"},
    "web": {"server", "pipeline", "routing", "upstreams", "dialects", "governance", "store", "keyauth", "cli"},
    "server": {"cli"},
    # the composition root: builds and wires everything
    "cli": set(),
    "cli_accounts": {"server", "pipeline", "routing", "upstreams", "dialects"},
    "__init__": set(),
    "__main__": set(),
}

# server/: the composition root (builds the app, its stores, router and upstreams; dispatches, with the
# key check before the body, preauth; runs workers; drains at shutdown) ...
SERVER_ROOT = {"app", "workers", "host_state", "drain", "preauth", "trim", "__init__"}
# ... and the request surfaces, which parse, pick a plan (pipeline/flow.py) and render: every request runs in
# Pipeline.serve. They never reach the router, an upstream adapter or the upstream HTTP client (only the
# upstream port's value types, upstreams/base.py), a store, or the rate/concurrency/budget machinery.
SURFACES = {"anthropic_api", "openai_api", "openai_passthrough", "models_api", "render", "responses_extras",
            "keepalive", "asgi", "guard", "cycle", "intake", "read_limits"}
SURFACE_FORBIDDEN = ("orgate.routing.router", "orgate.store", "orgate.governance.limits", "orgate.governance.leases",
                     "orgate.governance.admission", "orgate.keyauth")
UPSTREAM_PORT = "orgate.upstreams.base"


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _modules(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orgate."):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("orgate."))
    return out


def _imports(path: Path) -> set[str]:
    return {m.split(".")[1] for m in _modules(path)}


def test_every_top_level_module_has_a_rule():
    layers = {_layer(p) for p in PKG.rglob("*.py")}
    assert layers - FORBIDDEN.keys() == set()


def test_layers_respect_the_dependency_direction():
    problems = []
    for path in PKG.rglob("*.py"):
        layer = _layer(path)
        bad = _imports(path) & FORBIDDEN[layer]
        if bad:
            problems.append(f"{path.relative_to(PKG)} imports {sorted(bad)}")
    assert problems == []


def test_nothing_imports_the_server_but_the_composition_root():
    offenders = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                 if _layer(p) not in ("server", "cli") and "server" in _imports(p)]
    assert offenders == []


def test_routing_and_upstreams_do_not_import_each_other():
    both = [str(p.relative_to(PKG)) for p in (PKG / "upstreams").rglob("*.py") if "routing" in _imports(p)]
    assert both == []


def test_request_surfaces_do_not_reach_into_routing_upstreams_stores_or_limits():
    problems = []
    for path in (PKG / "server").glob("*.py"):
        name = path.stem
        assert name in SURFACES or name in SERVER_ROOT or name.startswith(("admin_", "sso_", "usage_", "ops_",
                                                                           "web_", "response_store",
                                                                           "extensions")), name
        if name not in SURFACES:
            continue
        bad = sorted(m for m in _modules(path) if m.startswith(SURFACE_FORBIDDEN)
                     or m.startswith("orgate.upstreams") and not m.startswith(UPSTREAM_PORT))
        if bad:
            problems.append(f"server/{path.name} imports {bad}")
    assert problems == []


def test_every_request_surface_enters_the_one_flow():
    """No surface strings the steps together itself: the flow's steps are called from the pipeline only."""
    steps = ("pipeline.limit(", "pipeline.reserve(", "pipeline.finish(", "access_log(", "watched(", "router.")
    surfaces = SURFACES - {"asgi", "guard", "cycle", "keepalive", "intake"}  # the HTTP primitives: asgi.watched is the server's watcher
    offenders = [f"server/{p.name}: {s}" for p in (PKG / "server").glob("*.py") if p.stem in surfaces
                 for s in steps if s in p.read_text()]
    assert offenders == []
