"""The mutation self-test: the suite against every quirk of the reference server (killmatrix.py),
re-judging under pytest only the check instances a quirk can change (pruning.py)."""

from .killmatrix import BASELINE, SELFTEST_MODEL, KillMatrix, QuirkRun, prune_passed_evidence, run_all, run_one

__all__ = ["BASELINE", "SELFTEST_MODEL", "KillMatrix", "QuirkRun", "prune_passed_evidence", "run_all", "run_one"]
