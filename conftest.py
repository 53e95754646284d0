"""Repository-level pytest configuration.

The conformance plugin itself is registered through the `pytest11` entry point
(conformance/plugin.py), so `pytest suites --target NAME` works from anywhere once the package
is installed.  Plain `pytest` here runs the project's own tests (testpaths = tests).
"""

collect_ignore = ["reports", "benchmarks"]
