"""The layout rules of ../shared/STYLE.md §1 and §3, checked by parsing every module's imports
(module-level and inside functions): base modules import only the standard library; stages import
only stages to their left; `search` sees only the store interface; front ends reach no stage's
internals and nothing imports them; no import circles."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qa"

BASE = {"qa._version", "qa.config", "qa.errors", "qa.schema", "qa.search.params", "qa.security"}
# What each stage (module or package prefix) may import inside qa, besides BASE and itself.
ALLOWED = {
    "qa.integrity": set(),  # checksums, space, fault points (numpy + errors)
    "qa.limits": set(),  # input caps (config + errors)
    "qa.documents": set(),
    "qa.chunking": set(),
    "qa.lexical": {"qa.integrity"},  # load_npy
    "qa.embedding": {"qa.integrity"},
    "qa.store": {"qa.lexical", "qa.integrity"},
    "qa.verify": {"qa.integrity", "qa.documents", "qa.store"},
    "qa.search": {"qa.lexical", "qa.store.base"},
    "qa.notfound": {"qa.lexical"},
    "qa.answer": {"qa.lexical", "qa.notfound"},
    "qa.render": set(),
    "qa.build": {"qa.documents", "qa.chunking", "qa.embedding", "qa.lexical", "qa.store", "qa.integrity", "qa.verify"},
    "qa.retriever": {"qa.build", "qa.documents", "qa.embedding", "qa.store", "qa.search", "qa.answer",
                     "qa.integrity", "qa.limits", "qa.verify"},
    "qa.api": {"qa.build", "qa.retriever"},
    "qa.evaluation": {"qa.build", "qa.retriever", "qa.embedding", "qa.store"},
    "qa.frontends": {"qa.build", "qa.retriever", "qa.render", "qa.evaluation", "qa.limits"},
    "qa": {"qa.build", "qa.retriever", "qa.frontends.cli"},  # the package face and __main__
}
HEAVY = {"torch", "sentence_transformers", "transformers", "gradio", "faiss", "onnxruntime", "fastapi",
         "pymilvus", "mcp"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import in `path`, relative ones resolved.
    `from X import name` counts as importing X.name when that is a module of qa, else X."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in MODULES else target, id(node) in top))
    return out


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def owner(name: str) -> str:
    """The ALLOWED key a qa module falls under (longest prefix)."""
    keys = [k for k in ALLOWED if name == k or name.startswith(k + ".")]
    return max(keys, key=len)


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_modules_were_found():
    assert {"qa.build", "qa.retriever", "qa.store.base", "qa.search.searcher", "qa.frontends.cli"} <= set(MODULES)


@pytest.mark.parametrize("name", sorted(BASE))
def test_base_modules_import_only_the_standard_library_and_each_other(name):
    for target, _ in GRAPH[name]:
        if target.startswith("qa"):
            assert target in BASE or target == "qa.search", f"{name} imports {target}"
        else:
            assert target.split(".")[0] in sys.stdlib_module_names or target == "__future__", f"{name} imports {target}"


@pytest.mark.parametrize("name", sorted(set(MODULES) - BASE))
def test_stages_import_only_stages_to_their_left(name):
    key = owner(name)
    for target, _ in GRAPH[name]:
        if not target.startswith("qa") or target in BASE or within(target, [key]):
            continue
        assert within(target, ALLOWED[key]), f"{name} imports {target}: {key} may import only {sorted(ALLOWED[key])}"


def test_search_sees_only_the_store_interface():
    for name in (n for n in MODULES if within(n, ["qa.search"])):
        for target, _ in GRAPH[name]:
            assert not within(target, ["qa.store"]) or target == "qa.store.base", f"{name} imports {target}"
            assert target.split(".")[0] not in HEAVY, f"{name} imports {target}"


def test_nothing_imports_a_front_end():
    for name, imports in GRAPH.items():
        if within(name, ["qa.frontends"]) or name == "qa.__main__":
            continue
        for target, _ in imports:
            assert not within(target, ["qa.frontends"]), f"{name} imports the front end {target}"


def test_heavy_libraries_are_imported_inside_functions_only():
    for name, imports in GRAPH.items():
        for target, at_top in imports:
            assert not (at_top and target.split(".")[0] in HEAVY), f"{name} imports {target} at module level"


def test_no_import_circles():
    edges = {name: {t for t, _ in imports if t in MODULES and t != name} for name, imports in GRAPH.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
