"""The suites' own pytest configuration: collecting a check makes the session a conformance run.

`pytest suites/...` with no `--target` runs against the default target (the embedded reference
server), as `pytest suites --target reference` does. `api` is the checks' name for the plugin's
`conformance_api` fixture: one check instance (a model, a mode, a path); the name stays here, so it
cannot collide with another project's fixture.
"""

import pytest

from conformance.pytest_plugin import activate


@pytest.hookimpl(trylast=True)  # after allure-pytest has registered its listener
def pytest_configure(config: pytest.Config) -> None:
    activate(config)


@pytest.fixture
def api(conformance_api):
    return conformance_api
