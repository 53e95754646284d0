"""stop: up to 4 sequences where generation stops; the returned text does not contain them."""

from conformance.checks import check, expect, inconclusive
from conformance.oracles import (
    REPEATING_PROMPT,
    STORY_PROMPT,
    greedy_baseline,
    is_legible,
    prompt_body,
    require_endpoint,
    send_judged,
)


def _stop_sequences(text: str, count: int) -> list[tuple[int, str]]:
    """`count` stop sequences taken from the greedy output, as (first index, sequence).

    Whole words whose first occurrence anywhere is that whole word come first; for output
    without spaces (a random-weight model's), 4-character pieces that occur first where they
    stand.  The picks never overlap, so the earliest of them is also the first to be generated;
    illegible pieces (control characters, a split UTF-8 character) are never picked.
    """
    picked: list[tuple[int, str]] = []

    def free(index: int, piece: str) -> bool:
        return all(index + len(piece) <= i or i + len(p) <= index for i, p in picked)

    for word in dict.fromkeys(text.split()):
        index = text.find(word)
        end = index + len(word)
        whole = index > 0 and text[index - 1].isspace() and (end == len(text) or text[end].isspace())
        if whole and is_legible(word) and free(index, word):
            picked.append((index, word))
    for index in range(1, len(text) - 3):
        piece = text[index:index + 4]
        if len(picked) >= count:
            break
        if piece.strip() == piece and is_legible(piece) and text.find(piece) == index and free(index, piece):
            picked.append((index, piece))
    if len(picked) < count:
        inconclusive(f"the greedy output {text[:80]!r} offers no {count} legible pieces to stop at")
    return sorted(picked)[:count]


def _baseline(api, endpoint):
    return greedy_baseline(api, endpoint, prompt_body(endpoint, STORY_PROMPT), max_tokens=48)


def _observe(api, endpoint, reply, base):
    verdict = "ignored" if reply.text == base.text else "honoured"
    api.observe(endpoint, "stop", verdict)


def _stopped_at_one_word(api, endpoint):
    """The greedy baseline, a word of it, and the same request with stop=[word]."""
    require_endpoint(api, endpoint)
    base = _baseline(api, endpoint)
    index, word = _stop_sequences(base.text, 1)[0]
    body = {**prompt_body(endpoint, STORY_PROMPT), "temperature": 0, "max_tokens": 48, "stop": [word]}
    reply = send_judged(api, endpoint, body, "stop")
    _observe(api, endpoint, reply, base)
    return base, index, word, reply


@check(id="{endpoint}.stop.excluded-from-output", level="MUST", feature="{endpoint}.stop", parameter="stop")
def test_stop_excluded(api, endpoint):
    """With stop=[s], the output is the greedy output up to the first s, without s."""
    base, index, word, reply = _stopped_at_one_word(api, endpoint)
    expect(reply.text == base.text[:index], f"the greedy output up to {word!r}: {base.text[:index]!r}", repr(reply.text))


@check(id="{endpoint}.stop.finish-reason-stop", level="MUST", feature="{endpoint}.stop", parameter="stop")
def test_stop_finish_reason(api, endpoint):
    """Generation ended by a stop sequence reports finish_reason 'stop'."""
    *_, reply = _stopped_at_one_word(api, endpoint)
    expect(reply.finish_reason == "stop", "finish_reason 'stop'", reply.finish_reason)


@check(id="{endpoint}.stop.string-form", level="MUST", feature="{endpoint}.stop", parameter="stop")
def test_stop_string(api, endpoint):
    """stop given as a single string (not a list) stops generation the same way."""
    require_endpoint(api, endpoint)
    base = greedy_baseline(api, endpoint, prompt_body(endpoint, REPEATING_PROMPT), max_tokens=48)
    index, word = _stop_sequences(base.text, 1)[0]
    body = {**prompt_body(endpoint, REPEATING_PROMPT), "temperature": 0, "max_tokens": 48, "stop": word}
    reply = send_judged(api, endpoint, body, "stop")
    _observe(api, endpoint, reply, base)
    expect(reply.text == base.text[:index], f"the greedy output up to {word!r}: {base.text[:index]!r}", repr(reply.text))


# Sequences no model writes, to fill the list of four when the output offers fewer words.
ABSENT = ["\u00a7\u00a7\u00a7", "\u00a4\u00a4\u00a4"]


@check(id="{endpoint}.stop.earliest-of-four", level="MUST", feature="{endpoint}.stop", parameter="stop")
def test_stop_earliest_of_four(api, endpoint):
    """With four stop sequences, generation stops at whichever occurs first, wherever it is listed."""
    require_endpoint(api, endpoint)
    base = _baseline(api, endpoint)
    words = _stop_sequences(base.text, 2)
    earliest = min(words)
    # Two sequences that never occur, then the later word, then the earliest: a target that only
    # honours the first sequence, or the first in the list that occurs, is caught.
    ordered = ABSENT + [w for _, w in sorted(words, reverse=True)]
    body = {**prompt_body(endpoint, STORY_PROMPT), "temperature": 0, "max_tokens": 48, "stop": ordered}
    reply = send_judged(api, endpoint, body, "stop")
    _observe(api, endpoint, reply, base)
    expect(reply.text == base.text[: earliest[0]],
           f"the greedy output up to the earliest sequence {earliest[1]!r}: {base.text[:earliest[0]]!r}", repr(reply.text))
