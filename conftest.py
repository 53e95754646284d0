"""Repository-level pytest configuration.

The conformance plugin is registered through the `pytest11` entry point (conformance/pytest_plugin/),
inert until a session is aimed at a target or collects the suites, so `pytest suites --target NAME`
works from anywhere once the package is installed.  Plain `pytest` here runs the project's own tests
(testpaths = tests).
"""

collect_ignore = ["reports", "benchmarks"]
