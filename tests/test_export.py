"""`conformance export`: measured support as data a gateway uses (LiteLLM's model list) or a plain
profile; only what was measured as working is listed as supported."""

import json

import pytest

from test_full_run import run_cli
from test_reports import quirk_args

CHECKS = ["*.n.*", "*.temperature.*", "*.stop.excluded-from-output", "*.repetition_penalty.*"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("export")
    args = [a for pattern in CHECKS for a in ("--check", pattern)]
    result = run_cli("run", "--report-dir", "run", "--no-history", *args, *quirk_args("ignore-n", "stop-kept"),
                     cwd=work)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    return work


def test_litellm_lists_only_the_openai_parameters_measured_as_working(run):
    yaml = pytest.importorskip("yaml")
    result = run_cli("export", "run", "--format", "litellm", "--api-key-env", "PROVIDER_KEY", cwd=run)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    by_model = {m["model_name"]: m for m in config["model_list"]}
    assert set(by_model) == {"ref-small", "ref-large"}
    for model, entry in by_model.items():
        assert entry["litellm_params"] == {"model": f"openai/{model}", "api_key": "os.environ/PROVIDER_KEY"}
        supported = entry["model_info"]["supported_openai_params"]
        assert "temperature" in supported  # honoured
        assert "n" not in supported  # ignored by the server
        assert "stop" not in supported  # deviates: named in a comment instead
        assert "repetition_penalty" not in supported  # an extension, not an OpenAI parameter
        assert "seed" not in supported  # not measured in this run: unknown is not support
    assert "a check about it fails: stop" in result.stdout


def test_json_is_a_verdict_per_parameter_with_the_run(run):
    out = run / "support.json"
    result = run_cli("export", "run", "--format", "json", "--out", str(out), cwd=run)
    assert result.returncode == 0, result.stderr
    profile = json.loads(out.read_text())
    matrix = json.loads((run / "run" / "matrix.json").read_text())
    assert profile["run"] == matrix["run"]["id"]
    small = profile["models"]["ref-small"]
    assert small["chat.n"] == "ignored" and small["chat.stop"] == "deviates" and small["chat.temperature"] == "honoured"
    assert small["chat.seed"] == "not measured"


def test_export_of_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    result = run_cli("export", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no matrix.json" in result.stderr
