"""Expectations: a run compared with a target's known deviations."""

import pytest

from conformance.config import expectations as ex


def matrix(**outcomes):
    return {"checks": [{"id": c, "clause": "https://c", "outcomes": {o: 1},
                        "instances": [{"outcome": o, "message": f"{c} said {o}"}]}
                       for c, o in outcomes.items()]}


def write(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def test_unexpected_failures_and_passes_are_what_changed(tmp_path):
    known = ex.load(write(tmp_path, '[[expect]]\ncheck = "a"\noutcome = "fail"\n'
                                    '[[expect]]\ncheck = "b"\noutcome = "fail"\n'))
    result = ex.compare(matrix(a="fail", b="pass", c="fail", d="pass"), known)
    assert result.expected_deviations == ["a"]
    assert result.unexpected_passes == [("b", "fail", "pass")]
    assert result.unexpected_failures == [("c", "pass", "fail")]
    assert result.changed


def test_nothing_changed_when_every_deviation_is_known(tmp_path):
    known = ex.load(write(tmp_path, '[[expect]]\ncheck = "a"\noutcome = "fail"\n'))
    assert not ex.compare(matrix(a="fail", b="pass"), known).changed


def test_an_intermittent_deviation_accepts_either_outcome(tmp_path):
    known = ex.load(write(tmp_path, '[[expect]]\ncheck = "a"\noutcome = ["pass", "fail"]\n'))
    assert not ex.compare(matrix(a="fail"), known).changed
    assert not ex.compare(matrix(a="pass"), known).changed


def test_update_keeps_notes_and_intermittent_outcomes(tmp_path):
    path = write(tmp_path, '# Known deviations of target \'t\': ...\n# Verified with curl against engine 1.0.\n'
                           '# Last updated from run r1.\n'
                           '[[expect]]\ncheck = "a"\noutcome = "fail"\nnote = "mine"\nevidence = "curl"\n'
                           '[[expect]]\ncheck = "b"\noutcome = ["pass", "fail"]\nnote = "flaky"\n')
    text = ex.render("t", matrix(a="fail", b="pass", c="inconclusive"), ex.load(path),
                     ex.hand_written_header(path.read_text()))
    assert text.count("# Verified with curl against engine 1.0.") == 1 and "run r1" not in text
    path.write_text(text)
    again = ex.load(path)
    assert again["a"].note == "mine" and again["a"].evidence == "curl"
    assert again["b"].allowed == ("pass", "fail")
    assert again["c"].outcome == "inconclusive" and again["c"].note == "c said inconclusive"


@pytest.mark.parametrize("text, message", [
    ('[[expect]]\ncheck = "a"\n', "needs 'check' and 'outcome'"),
    ('[[expect]]\ncheck = "a"\noutcome = "broken"\n', "outcome must be one of"),
    ('[[expect]]\ncheck = "a"\noutcome = "fail"\nwhy = "x"\n', "unknown key"),
    ('[[expect]\n', "not valid TOML"),
])
def test_malformed_expectations_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(ex.ExpectationsError, match=message.replace("(", r"\(")) as info:
        ex.load(write(tmp_path, text))
    assert "\n" not in str(info.value)
