"""Soft expectations (checks.clauses): a check with several independent clauses reports every
failed one, the first one's message first, and its outcome is what a hard `expect` gave."""

import pytest

from conformance.harness.checks import Deviation, clauses, expect, inconclusive
from conformance.report.causes import signature


def _message(body) -> str:
    with pytest.raises(Deviation) as caught:
        with clauses() as soft:
            body(soft)
    return str(caught.value)


def test_every_failed_clause_is_reported_the_first_on_the_first_line():
    def body(soft):
        assert soft.expect(True, "a", "x") is True
        assert soft.expect(False, "HTTP 400", "HTTP 422") is False
        soft.expect(False, "error.param 'n'", "null", "the parameter unnamed")

    lines = _message(body).splitlines()
    assert lines == ["expected HTTP 400; got HTTP 422", "also: expected error.param 'n'; got null, the parameter unnamed"]
    with pytest.raises(Deviation) as hard:
        expect(False, "HTTP 400", "HTTP 422")
    assert lines[0] == str(hard.value)  # what the hard expect said is still the first line
    assert signature(lines[0]) == signature(str(hard.value))


def test_no_failed_clause_passes():
    with clauses() as soft:
        soft.expect(1, "a", "x")
        with soft.clause():
            expect(True, "b", "y")
    assert not soft.failed


def test_a_clause_judged_in_a_loop_is_listed_once():
    def body(soft):
        for number in range(5):
            soft.expect(False, f"chunk {number} valid", "no", key="valid")
        soft.expect(False, "one id", "two")

    assert _message(body).splitlines() == ["expected chunk 0 valid; got no", "also: expected one id; got two"]


def test_a_helper_is_one_clause_and_a_hard_failure_ends_the_block_last():
    def helper():
        expect(False, "the envelope", "a flat body")
        expect(False, "never reached", "-")

    def body(soft):
        with soft.clause():
            helper()
        expect(False, "a field", "absent")  # hard: a dependent step
        soft.expect(False, "not reached", "-")

    assert _message(body).splitlines() == ["expected the envelope; got a flat body", "also: expected a field; got absent"]


def test_a_check_that_already_deviated_stays_failed():
    """inconclusive (or an error) after a failed clause: still `fail`, as the hard expect made it."""
    def body(soft):
        soft.expect(False, "finish_reason 'length'", "string 'stop'")
        inconclusive("the rest cannot be judged")

    assert _message(body) == "expected finish_reason 'length'; got string 'stop'"

    def crashes(soft):
        soft.expect(False, "a", "b")
        {}["missing"]

    assert _message(crashes) == "expected a; got b"
    with pytest.raises(pytest.skip.Exception):  # with no failed clause, the outcome is the block's own
        with clauses():
            inconclusive("x")


def test_many_failed_clauses_are_counted():
    def body(soft):
        for n in range(12):
            soft.expect(False, f"clause {n}", "no")

    lines = _message(body).splitlines()
    assert lines[0] == "expected clause 0; got no" and lines[-1] == "also: 3 more failed clauses" and len(lines) == 10


def test_a_failure_with_several_clauses_is_grouped_by_its_first():
    from conformance.report.causes import signature

    alone = "expected HTTP 400; got HTTP 422 \"Invalid 'temperature'\""
    with_more = alone + "\nalso: expected error.param 'temperature' (above the maximum 2); got null"
    assert signature(with_more) == signature(alone)
