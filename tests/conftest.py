import pytest

from conformance.server import ReferenceServer

TEST_KEY = "test-key-for-the-project-tests"


@pytest.fixture(scope="session")
def reference_server():
    with ReferenceServer(api_key=TEST_KEY) as server:
        yield server
