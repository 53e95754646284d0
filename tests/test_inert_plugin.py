"""Installed beside a project's own tests, the plugin leaves that project's sessions untouched
(issue 18.1): the same fixtures and the same Allure files as when the plugin is not loaded at all.
It wakes up only when a session asks for it: aimed at a target, or collecting the suites."""

import json
import re
import subprocess
import sys
from pathlib import Path

import conformance.suites

FOREIGN_TEST = '''
import pytest


@pytest.fixture
def api():
    return "the project's own api"


@pytest.fixture
def database():
    yield {"rows": 3}


def test_uses_its_fixtures(api, database):
    assert api == "the project's own api" and database["rows"] == 3
'''


def foreign_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_app.py").write_text(FOREIGN_TEST)
    return project


def pytest_in(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project,
                          capture_output=True, text=True, timeout=120)


def fixture_names(output: str) -> list[str]:
    return sorted(re.findall(r"^([a-z_][a-z0-9_]*)(?: \[[a-z]+ scope\])? -- ", output, re.M))


VOLATILE = ("uuid", "historyId", "testCaseId", "start", "stop")


def masked(value):
    """The value with what differs from one run to the next (ids, times, the host) masked."""
    if isinstance(value, dict):
        if value.get("name") in ("host", "thread") and "value" in value:
            return {**value, "value": "*"}
        return {k: "*" if k in VOLATILE else len(v) if k == "children" else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def allure_files(directory: Path) -> list[tuple[str, str]]:
    files = [(re.sub(r"^[0-9a-f-]{36}-", "", path.name), json.dumps(masked(json.loads(path.read_text())), sort_keys=True))
             for path in directory.iterdir()]
    return sorted(files)


def test_a_foreign_session_has_the_same_fixtures_with_and_without_the_plugin(tmp_path):
    project = foreign_project(tmp_path)
    with_plugin = pytest_in(project, "--fixtures", "-q")
    without = pytest_in(project, "--fixtures", "-q", "-p", "no:conformance")
    assert with_plugin.returncode == without.returncode == 0, with_plugin.stdout + with_plugin.stderr
    assert "api" in fixture_names(without.stdout)
    assert fixture_names(with_plugin.stdout) == fixture_names(without.stdout)
    assert not any(n.startswith("conformance") for n in fixture_names(with_plugin.stdout))


def test_a_foreign_session_writes_the_same_allure_files_and_nothing_else(tmp_path):
    project = foreign_project(tmp_path)
    with_plugin = pytest_in(project, "--alluredir", "with")
    without = pytest_in(project, "--alluredir", "without", "-p", "no:conformance")
    assert with_plugin.returncode == without.returncode == 0, with_plugin.stdout + with_plugin.stderr
    written = allure_files(project / "with")
    assert any(kind == "container.json" for kind, _ in written), "the fixtures' containers must be kept"
    assert written == allure_files(project / "without")
    # No target was loaded and no run was written: no reports/ folder, no run summary.
    assert not (project / "reports").exists()
    assert "check instances" not in with_plugin.stdout


def test_collecting_the_suites_makes_the_session_a_conformance_run(tmp_path):
    models = Path(list(conformance.suites.__path__)[0]) / "models" / "test_models.py"
    result = pytest_in(tmp_path, str(models), "-q", "--no-history", "-W", "ignore::pytest.PytestAssertRewriteWarning")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "check instances of" in result.stdout  # the run's own summary
    assert list((tmp_path / "reports").glob("*/matrix.json"))


def test_aiming_at_a_target_without_paths_runs_the_suites(tmp_path):
    result = pytest_in(tmp_path, "--target", "reference", "--report-dir", "run", "--no-history", "-q",
                       "--check", "models.*", "-W", "ignore::pytest.PytestAssertRewriteWarning")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "run" / "matrix.json").is_file()
    assert list((tmp_path / "run" / "allure-results").glob("*-result.json"))
