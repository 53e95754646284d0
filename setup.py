"""Which packages an installed copy holds, found rather than listed.

The checks (`suites/`) and the target files (`targets/`) live at the top of the repository and ship
inside the package as `conformance.suites` and `conformance.target_files`, so an installed copy can
run them too; a new area folder under `suites/` (with its `__init__.py`) is found without an edit here.
Everything else about the project is in pyproject.toml.
"""

from setuptools import find_packages, setup

PACKAGE_DIR = {"conformance": "conformance", "conformance.suites": "suites", "conformance.target_files": "targets"}


def packages() -> list[str]:
    found = find_packages(include=["conformance", "conformance.*"])
    found += ["conformance.suites"] + [f"conformance.suites.{p}" for p in find_packages("suites")]
    return found + ["conformance.target_files"]


if __name__ == "__main__":
    setup(package_dir=PACKAGE_DIR, packages=packages())
