"""When tries at temperature 0 count as greedy decoding that repeats (harness.oracles.Tries)."""

from conformance.harness.oracles import Tries
from conformance.wire.reply import Reply


def tries(*texts: str) -> Tries:
    return Tries([Reply("completions", "regular", "http", 200, None,
                        body={"choices": [{"index": 0, "text": text, "finish_reason": "length"}]})
                  for text in texts])


def test_long_outputs_that_begin_alike_repeat_though_drift_moved_their_ends():
    assert tries(" was part of the", " was part of the", " was part of a").repeatable(whole=False)


def test_long_outputs_that_begin_differently_do_not_repeat():
    assert not tries(" was part of the", " person who", " government of").repeatable(whole=False)


def test_whole_outputs_repeat_only_when_all_are_the_same():
    """Drift has no late part to move in a one-token output: a majority is what sampling a peaked
    token gives (the reference server's sampled ' was', 4 tries in 10). A token may be longer than
    the beginning compared (' research'), so one token is `whole` by its count (max_tokens 1), not
    by its length."""
    assert tries(" was", " was", " was", " was", " was").repeatable(whole=True)
    assert not tries(" was", " was", " was", " idea", " 4").repeatable(whole=True)
    assert not tries(" was", " research", " was", " was", " was").repeatable(whole=True)
    # Most alike, the rule for long outputs, is what let sampled one-token tries fail:
    assert tries(" was", " research", " was", " was", " was").repeatable(whole=False)


def test_outputs_that_fit_in_their_beginning_are_short():
    assert tries(" was", " 9").short
    assert not tries(" was", " research").short
