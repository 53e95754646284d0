"""Check metadata lint and the committed manifest."""

from pathlib import Path

from conformance.harness.checks import check
from conformance.registry import discover, lint, manifest, manifest_path, resolved_checks


def test_check_metadata_is_complete_and_ids_are_unique():
    assert lint() == []
    ids = [c.id for c in resolved_checks()]
    assert len(ids) == len(set(ids)) and len(ids) >= 80


def test_every_check_function_is_found():
    suites = Path(__file__).resolve().parent.parent / "suites"
    with_checks = {path.parent.name for path in suites.glob("*/test_*.py")}
    assert {where.split(":")[0].split(".")[0] for where, _ in discover()} == with_checks
    assert {"auth", "errors", "generation", "streaming", "structured", "tools"} <= with_checks


def test_the_committed_manifest_is_current():
    committed = manifest_path().read_text(encoding="utf-8")
    assert committed == manifest(), "suites/MANIFEST.md is stale: run `conformance manifest --write` and review"


def test_the_decorator_refuses_incomplete_metadata():
    import pytest

    full = dict(since="0.1.0", info="x")
    with pytest.raises(ValueError, match="level"):
        check(id="chat.x.y", level="MUST-ish", feature="chat.stop", clause="https://e", **full)
    with pytest.raises(ValueError, match="clause"):
        check(id="chat.x.y", level="MUST", feature="chat.stop", **full)
    with pytest.raises(ValueError, match="dotted"):
        check(id="Chat X", level="MUST", feature="chat.stop", clause="https://e", **full)
    with pytest.raises(ValueError, match="docstring"):
        check(id="chat.x.y", level="MUST", feature="chat.stop", clause="https://e", **full)(lambda api: None)
    with pytest.raises(ValueError, match="since"):
        check(id="chat.x.y", level="MUST", feature="chat.stop", clause="https://e", info="x")
    with pytest.raises(ValueError, match="unknown feature"):
        check(id="chat.x.y", level="MUST", feature="chat.x", clause="https://e", **full)


def test_the_manifest_says_where_each_check_is_declared():
    import re

    root = Path(__file__).resolve().parent.parent
    rows = [line for line in manifest().splitlines() if line.startswith("| `")]
    sources = [re.search(r"\| `(suites/[^`]+):(\d+)` \|$", row) for row in rows if "suites/" in row]
    assert len(sources) == len(resolved_checks())
    for found in sources:
        path, line = found.group(1), int(found.group(2))
        assert (root / path).read_text(encoding="utf-8").splitlines()[line - 1].startswith("@check("), found.group(0)
