"""The Allure 3 report as Allure itself renders it (`npx allure@3.18.0`, through render_html), from a
merge of a clean run and a run against a server with quirks: the same target and the same model
names, as two providers serving one model are. Every assertion reads the report's own data (the
files Allure embeds in its single-file page), not the results the suite hands it."""

import base64
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from test_full_run import records, run_cli
from test_reports import QUIRKS, SUBSET, quirk_args

# Outcome of a check instance -> Allure status of its result (pytest's: fail, error, skip, pass).
ALLURE_STATUS = {"pass": "passed", "fail": "failed", "error": "broken", "unsupported": "skipped",
                 "inconclusive": "skipped"}


def require_npx() -> None:
    if shutil.which("npx") is None:
        if os.environ.get("CI"):
            pytest.fail("Node.js (npx) is not installed; the Allure 3 report cannot be rendered")
        pytest.skip("Node.js (npx) is not installed")


def report_data(index_html: Path) -> dict[str, object]:
    """The JSON files Allure embedded in its single-file report (one `d("name","base64")` each),
    without the per-test data and attachments."""
    html = index_html.read_text(encoding="utf-8")
    found = {name: json.loads(base64.b64decode(data))
             for name, data in re.findall(r'd\("(widgets/[^"]+\.json)","([A-Za-z0-9+/=]*)"\)', html)}
    assert "widgets/statistic.json" in found, "Allure's single-file report no longer embeds its data this way"
    return found


def title(record: dict, identity: str) -> str:
    dims = record["dimensions"]
    variant = f" {record['variant']}" if record.get("variant") else ""
    return f"{record['check']}{variant} [{dims['model']} · {dims['mode']} · {dims['path']}] on {identity}"


def leaves(nodes: dict, node_id: str) -> list[dict]:
    """The test results under a node of Allure's categories tree."""
    node = nodes[node_id]
    if node["type"] == "tr":
        return [node]
    return [leaf for child in node.get("childrenIds", []) for leaf in leaves(nodes, child)]


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """`conformance report clean broken`: its Allure report's data, and the two runs' records."""
    require_npx()
    work = tmp_path_factory.mktemp("allure")
    clean = run_cli("run", "--report-dir", "reports/clean", "-k", SUBSET, cwd=work)
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]
    broken = run_cli("run", "--report-dir", "reports/broken", "-k", SUBSET, *quirk_args(*QUIRKS), cwd=work)
    assert broken.returncode == 1, broken.stdout[-2000:] + broken.stderr[-2000:]
    report = run_cli("report", "reports/clean", "reports/broken", "--out", "reports/merged", cwd=work)
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    index = work / "reports" / "merged" / "allure-report" / "index.html"
    assert f"Allure HTML: {Path('reports/merged/allure-report/index.html')}" in report.stdout, report.stdout
    return {"work": work, "data": report_data(index), "clean": records(work / "reports" / "clean"),
            "broken": records(work / "reports" / "broken")}


def test_the_merged_report_counts_every_result_of_both_targets_and_no_retries(merged):
    clean, broken, data = merged["clean"], merged["broken"], merged["data"]
    expected = Counter(ALLURE_STATUS[r["outcome"]] for r in clean + broken)
    assert expected["failed"] > 0  # the quirks made deviations
    statistic = data["widgets/statistic.json"]
    assert statistic.get("retries", 0) == 0, statistic  # no result of one target taken for a retry of the other
    assert statistic == {"total": len(clean) + len(broken), **expected}
    # The tree opens by target, each with its own counts: the failures are the quirky run's.
    tree = data["widgets/tree.json"]
    by_target = {tree["groupsById"][g]["name"]: tree["groupsById"][g]["statistic"] for g in tree["root"]["groups"]}
    quirky = f"reference · quirks {', '.join(sorted(QUIRKS))}"
    assert by_target == {"reference": {"total": len(clean), **Counter(ALLURE_STATUS[r["outcome"]] for r in clean)},
                         quirky: {"total": len(broken), **Counter(ALLURE_STATUS[r["outcome"]] for r in broken)}}
    assert by_target["reference"]["total"] == by_target["reference"]["passed"]


def test_the_rendered_report_sorts_failures_into_the_suites_categories(merged):
    from conformance.report.allure import CATEGORIES

    data = merged["data"]
    quirky = f"reference · quirks {', '.join(sorted(QUIRKS))}"
    # The run's causes (matrix.json), not each record's own view: one category per cause.
    matrix = json.loads((merged["work"] / "reports" / "broken" / "matrix.json").read_text())
    named = {c["id"]: f"{c['id']}: {c['name']}" for c in matrix["causes"]}
    expected, causes = {}, {}
    for row in matrix["checks"]:
        for i in row["instances"]:
            if i["outcome"] == "fail":
                name = i["category"][0].upper() + i["category"][1:]
                record = {"check": row["id"], "variant": i["variant"],
                          "dimensions": {"model": i["model"], "mode": i["mode"], "path": i["path"]}}
                expected.setdefault(name, []).append(title(record, quirky))
                causes.setdefault(name, set()).add(named[i["cause"]])
    assert {c["category"] for c in matrix["causes"]} == {i["category"] for row in matrix["checks"]
                                                         for i in row["instances"] if i["outcome"] == "fail"}
    assert {"Rejected parameter", "Ignored parameter", "Schema mismatch", "Stream framing",
            "Error envelope"} <= set(expected)
    tree = data["widgets/categories.json"]
    nodes = tree["nodes"]
    shown = {nodes[root]["name"]: root for root in tree["roots"]}
    order = [name[0].upper() + name[1:] for name, _ in CATEGORIES]
    assert list(shown) == [name for name in order if name in expected]  # none in Allure's default "Product errors"
    for name, root in shown.items():
        assert sorted(leaf["name"] for leaf in leaves(nodes, root)) == sorted(expected[name]), name
        assert all(leaf["status"] == "failed" for leaf in leaves(nodes, root))
        # Within a category, the failures are grouped by the target they are failures of.
        groups = [nodes[child] for child in nodes[root]["childrenIds"]]
        assert [(g["key"], g["value"]) for g in groups] == [("target", quirky)], name
        # ... and within a target, by root cause (its id and name in words).
        by_cause = [nodes[child] for child in groups[0]["childrenIds"]]
        assert {(g["key"], g["value"]) for g in by_cause} == {("cause", c) for c in causes[name]}, name


def test_runs_of_the_same_target_with_the_same_settings_share_their_history_in_allure(merged, tmp_path):
    """Two nights of one target, unchanged: Allure must see the same tests (their retries), or its
    history and trend across nights would break."""
    from conformance.report.allure import render_html

    work, clean = merged["work"], merged["clean"]
    again = run_cli("run", "--report-dir", "reports/clean-again", "-k", SUBSET, cwd=work)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    said = render_html([work / "reports" / name / "allure-results" for name in ("clean", "clean-again")], tmp_path)
    assert said.startswith("Allure HTML:"), said
    statistic = report_data(tmp_path / "allure-report" / "index.html")["widgets/statistic.json"]
    assert statistic == {"total": len(clean), "retries": len(clean), "passed": len(clean)}


def test_the_identity_of_what_was_tested_tells_settings_apart_and_only_them():
    from conformance.report.allure import target_identity
    from conformance.server.faults import parse_faults

    assert target_identity("reference") == "reference"
    assert target_identity("reference", ("stop-kept", "ignore-n")) == \
        target_identity("reference", ("ignore-n", "stop-kept", "ignore-n"))
    identities = {target_identity("reference"), target_identity("reference", ("ignore-n",)),
                  target_identity("reference", ("ignore-n", "stop-kept")), target_identity("other"),
                  target_identity("reference", (), parse_faults("429=0.2")),
                  target_identity("reference", (), parse_faults("429=0.2", seed=7)),
                  target_identity("reference", (), parse_faults("429=0.1,reset=0.05"))}
    assert len(identities) == 7
    assert target_identity("reference", (), parse_faults("429=0.2", seed=7)) == \
        target_identity("reference", (), parse_faults("429=0.2", seed=7))
    assert "ignore-n" in target_identity("reference", ("ignore-n",)) and \
        "429=0.2" in target_identity("reference", (), parse_faults("429=0.2"))
