"""The reports are one pipeline, one way: records -> model -> renderers -> files (issue 18, point 6).

Read from the source, not run: which module of conformance/report imports which, at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parent.parent / "conformance" / "report"
RENDERERS = ("render", "render_merged", "evidence", "allure", "export")
# What each stage may import from its own package: only stages before it.
ALLOWED = {
    "terms": set(), "causes": {"terms"}, "history": set(),
    "results": {"evidence"},  # the records, written by the workers with their evidence pages
    "model": {"terms", "causes", "history"},
    "evidence": {"terms"}, "render": {"terms"}, "render_merged": {"render", "terms"}, "allure": {"terms", "causes", "evidence"},
    "export": set(),
    "matrix": {"evidence", "model", "render", "results"},
    "merge": {"evidence", "matrix", "model", "render_merged"},
    "finish": {"history", "allure", "matrix", "model", "render"},
    "shards": {"finish", "history", "merge", "model", "results"},  # a run's shards -> one run, by finish's path
}


def _runtime_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(sibling module, names) of every `from .x import ...` / `from . import x` outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and id(node) not in skipped:
            names = [a.name for a in node.names]
            if node.module:
                out.append((node.module, names))
            else:
                out += [(name, []) for name in names]
    return out


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_each_stage_imports_only_the_stages_before_it(module):
    imported = {m for m, _ in _runtime_imports(REPORT / f"{module}.py")}
    assert imported <= ALLOWED[module], f"{module} imports {sorted(imported - ALLOWED[module])}"


def test_every_module_of_the_package_has_its_place():
    assert {p.stem for p in REPORT.glob("*.py")} - {"__init__"} == set(ALLOWED)


def test_no_renderer_reads_the_history_or_builds_the_model():
    for module in RENDERERS:
        assert not {"history", "model", "matrix", "merge", "finish"} & {m for m, _ in _runtime_imports(REPORT / f"{module}.py")}


def test_no_private_name_crosses_a_module():
    for path in [*REPORT.glob("*.py"), REPORT.parent / "migrate" / "report.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
