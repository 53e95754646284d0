"""The package's layers, as the tree shows them (issue 18.3): imports go down, never round, never into
another module's private names; a check imports the authoring API and nothing else."""

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "conformance"
# Lowest first: a module may import from its own layer and the layers before it, never after.
LAYERS = ("vocabulary", "config", "server", "wire", "harness", "suites", "registry", "report", "migrate",
          "options", "pytest_plugin", "selftest", "cli", "__main__")


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def modules() -> dict[str, tuple[Path, bool]]:
    return {module_name(p)[0]: (p, module_name(p)[1]) for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, is_package: bool, known: dict) -> list[tuple[str, str]]:
    """(imported module, imported name) for every `from ... import` of the package in the module."""
    package = name if is_package else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            if module.startswith("conformance"):
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    found.append((sub if sub in known else module, alias.name))
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("conformance")]
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m, _ in imports(name, path, pkg, known) if m != name and m in known}
            for name, (path, pkg) in known.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_module_imports_itself_round_a_cycle():
    edges, cycles = graph(), []

    def visit(node, trail):
        for nxt in sorted(edges.get(node, ())):
            if nxt in trail:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, trail + [nxt])
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        if start not in done:
            visit(start, [start])
    assert cycles == []


def test_imports_go_down_the_layers():
    upward = [f"{a} -> {b}" for a, targets in graph().items() for b in targets
              if layer(a) != layer(b) and layer(b) != "__init__" and LAYERS.index(layer(b)) > LAYERS.index(layer(a))]
    assert upward == []


def test_no_module_imports_another_modules_private_names():
    known = modules()
    private = [f"{name} imports {module}.{imported}" for name, (path, pkg) in known.items()
               for module, imported in imports(name, path, pkg, known)
               if imported.startswith("_") and not imported.startswith("__") and module != name]
    assert private == []


def test_checks_import_the_authoring_api_only():
    wrong = []
    for path in (ROOT / "suites").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("conformance"):
                allowed = ("conformance.harness",) + (("conformance.pytest_plugin",) if path.name == "conftest.py" else ())
                if node.module not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert wrong == []


def test_the_authoring_api_exports_what_it_lists():
    import conformance.harness as harness

    assert sorted(harness.__all__) == sorted(set(harness.__all__))
    assert [name for name in harness.__all__ if not hasattr(harness, name)] == []


def test_every_suites_folder_ships_in_an_installed_copy():
    spec = importlib.util.spec_from_file_location("project_setup", ROOT / "setup.py")
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)  # not run as __main__: setup() is not called
    shipped = set(setup.packages())
    folders = {p.parent for p in (ROOT / "suites").rglob("test_*.py")}
    missing = [str(f.relative_to(ROOT)) for f in folders
               if "conformance." + ".".join(f.relative_to(ROOT).parts) not in shipped]
    assert missing == [], "a folder of checks without __init__.py is left out of an installed copy"
