import os
from pathlib import Path

import pytest

from conformance.server import ReferenceServer

TEST_KEY = "test-key-for-the-project-tests"
OPENAPI = Path(os.environ.get("OPENAI_OPENAPI_SPEC",
                              Path(__file__).resolve().parents[2] / "shared/reference/openai-openapi/openapi.yaml"))


@pytest.fixture(scope="session")
def reference_server():
    with ReferenceServer(api_key=TEST_KEY) as server:
        yield server


# Where the document comes from, for a clone without ../shared (README, "The two commands").
OPENAPI_SOURCE = "openapi.yaml of https://github.com/openai/openai-openapi"
NO_OPENAPI = "OpenAI's OpenAPI document is not at"


@pytest.fixture(scope="session")
def openapi():
    """OpenAI's OpenAPI document (read, never copied into the project)."""
    if not OPENAPI.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"OpenAI's OpenAPI document is missing at {OPENAPI}")
        pytest.skip(f"{NO_OPENAPI} {OPENAPI}: get {OPENAPI_SOURCE} and set OPENAI_OPENAPI_SPEC to its path")
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(OPENAPI.read_text())


def pytest_terminal_summary(terminalreporter):
    """Say last, in one line, how many tests the missing OpenAPI document skipped, and where to get it:
    a fresh clone without ../shared must not read as fully tested."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_OPENAPI in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped: {NO_OPENAPI} {OPENAPI}; they check the suite's "
                                    f"facts against it. Get {OPENAPI_SOURCE} and set OPENAI_OPENAPI_SPEC to its path.",
                                    yellow=True, bold=True)
