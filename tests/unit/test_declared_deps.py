"""Every third-party module orgate imports (at any depth of a function) belongs to a declared dependency.

A module that only arrives transitively (yarl through aiohttp) or through the test extras (urllib3 through
botocore) works in this checkout and fails in the operator's plain install. tests/test_plain_install.py
checks the same thing end to end; this is the quick, static half.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib

from tests.paths import REPO


def _guarded(tree: ast.AST) -> set[int]:
    """ids of import nodes inside a `try:` that handles ImportError (an optional dependency's import)."""
    out: set[int] = set()
    for t in ast.walk(tree):
        if isinstance(t, ast.Try) and any("ImportError" in ast.unparse(h.type or ast.Name("")) for h in t.handlers):
            out |= {id(n) for stmt in t.body for n in ast.walk(stmt)}
    return out


def _imports() -> list[tuple[str, str, bool]]:
    """(top-level module, file, guarded by an ImportError handler) for every third-party import in orgate."""
    out = []
    for path in (REPO / "orgate").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        guarded = _guarded(tree)
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("orgate", "__future__"):
                    out.append((top, str(path.relative_to(REPO)), id(node) in guarded))
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    """The dependencies plus the optional extras an operator may choose (never the test extra)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra, reqs in project.get("optional-dependencies", {}).items():
        deps += [] if extra == "test" else reqs
    return {_norm(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0]) for d in deps}


def test_every_imported_module_is_a_declared_dependency() -> None:
    dists = md.packages_distributions()
    declared = _declared()
    undeclared = {}
    for top, where, _ in _imports():
        owners = {_norm(d) for d in dists.get(top, [])}
        if not owners & declared:
            undeclared[top] = (where, sorted(owners))
    assert not undeclared, f"imported but not declared in pyproject dependencies: {undeclared}"


def test_optional_extras_are_imported_only_where_an_import_error_is_handled() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {_norm(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    dists = md.packages_distributions()
    optional = [(top, where, guarded) for top, where, guarded in _imports()
                if dists.get(top) and not {_norm(d) for d in dists[top]} & core]
    assert ("botocore", "orgate/upstreams/sigv4.py", True) in optional
    unguarded = [(top, where) for top, where, guarded in optional if not guarded]
    assert not unguarded, f"optional dependencies imported without an ImportError fallback: {unguarded}"


def test_vertex_token_transport_comes_with_the_declared_extra() -> None:
    # google.auth.transport.urllib3 needs urllib3 and packaging, which google-auth declares only in its extra
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"google-auth\[[^\]]*urllib3", d) for d in deps), deps
    assert ("urllib3", "orgate/upstreams/vertex.py", False) in _imports()
