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


@pytest.fixture(scope="session")
def openapi():
    """OpenAI's OpenAPI document (read, never copied into the project)."""
    if not OPENAPI.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"OpenAI's OpenAPI document is missing at {OPENAPI}")
        pytest.skip(f"OpenAI's OpenAPI document is not at {OPENAPI} (set OPENAI_OPENAPI_SPEC)")
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(OPENAPI.read_text())
