"""A deployment that refuses `tools` (vLLM without a tool-call parser): the checks of what depends on
tools are `unsupported` naming tools, not inconclusive, and the verdict says tools was refused."""

import json
import tomllib
from pathlib import Path

from test_full_run import records, run_cli
from test_reports import quirk_args

ROOT = Path(__file__).resolve().parents[1]
DEPENDENT = ("chat.tool_choice.*", "chat.parallel_tool_calls.*")


def no_tools_target(tmp_path: Path) -> Path:
    """The reference target, declaring no tools (as a deployment without a tool parser would)."""
    reference = tomllib.loads((ROOT / "targets" / "reference.toml").read_text())
    parameters = [p for p in reference["declared"]["parameters"]
                  if p not in ("tools", "tool_choice", "parallel_tool_calls")]
    path = tmp_path / "no-tools.toml"
    path.write_text('name = "no-tools"\nembedded = true\nmodels = ["ref-small"]\n[limits]\ncontext_tokens = 4096\n'
                    f"[declared]\nparameters = {json.dumps(parameters)}\n"
                    f"extensions = {json.dumps(reference['declared']['extensions'])}\n")
    return path


def test_checks_that_need_tools_are_unsupported_naming_tools(tmp_path):
    checks = [a for c in DEPENDENT for a in ("--check", c)]
    result = run_cli("run", "--target", str(no_tools_target(tmp_path)), "--report-dir", "run", "--no-history",
                     *checks, *quirk_args("reject-tools"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    recs = records(tmp_path / "run")
    refused = [r for r in recs if r["check"] != "chat.tool_choice.none" or r["outcome"] != "pass"]
    assert recs and {r["outcome"] for r in refused} == {"unsupported"}, {(r["check"], r["outcome"]) for r in recs}
    assert all("'tools' was refused" in r["message"] for r in refused), [r["message"] for r in refused][:3]
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())
    tools = next(p for p in matrix["parameters"] if (p["endpoint"], p["parameter"]) == ("chat", "tools"))
    assert tools["models"]["ref-small"]["verdict"] == "rejected"


def test_a_target_that_declares_tools_and_refuses_them_fails_naming_tools(tmp_path):
    result = run_cli("run", "--report-dir", "run", "--no-history", "--check", "chat.tool_choice.required",
                     *quirk_args("reject-tools"), cwd=tmp_path)
    assert result.returncode == 1
    recs = records(tmp_path / "run")
    assert {r["outcome"] for r in recs} == {"fail"}
    assert all("expected 'tools' to be accepted (the target declares it)" in r["message"] for r in recs)
