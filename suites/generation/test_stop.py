"""stop: up to 4 sequences where generation stops; the returned text does not contain them.

The common case (a sequence that begins well inside the output, and stops it well before
max_tokens) is judged apart from each edge case (a sequence at the very start of the output, one
spanning two tokens, one completing at or across the max_tokens limit), so that a server that
fails one edge case is named for that case and `stop` is not called ignored.
"""

from conformance.harness import (
    CallPath, Level, Mode, OTHER_PROMPT, REPEATING_PROMPT, STORY_PROMPT, Verdict, check, clauses, expect,
    finish_finding, greedy_baseline, greedy_paths, inconclusive, is_legible, not_in_openai, prompt_body,
    require_endpoint, send_judged, until_greedy_related, until_related,
)

STOP_INFO = ("Up to 4 sequences where the API will stop generating further tokens. The returned text will not "
             "contain the stop sequence.")

MAX_TOKENS = 48
# Where a common-case sequence may stand in the greedy output: past the first few tokens of any
# tokenizer (so the start-of-output edge case is not what is judged), and ending in the first two
# thirds of the output (so it stops well before max_tokens).
EARLIEST_START = 16
LATEST_END_SHARE = 2 / 3
# Prompts tried in turn until one's greedy output offers the sequences: a random-weight model soon
# repeats itself, and a repeated piece can only be stopped at where it first occurs.
STORY_PROMPTS = (STORY_PROMPT, OTHER_PROMPT)
LIST_PROMPTS = (REPEATING_PROMPT, STORY_PROMPT, OTHER_PROMPT)
# Sequences no model writes, to fill the list of four when the output offers fewer words.
ABSENT = ["\u00a7\u00a7\u00a7", "\u00a4\u00a4\u00a4"]


def _stop_sequences(text: str, count: int) -> list[tuple[int, str]] | None:
    """`count` common-case stop sequences taken from the greedy output, as (first index, sequence).

    Whole words whose first occurrence anywhere is that whole word come first; for output
    without spaces (a random-weight model's), 4-character pieces that occur first where they
    stand.  Each begins at EARLIEST_START or later and ends within LATEST_END_SHARE of the output.
    The picks never overlap, so the earliest of them is also the first to be generated;
    illegible pieces (control characters, a split UTF-8 character) are never picked.
    """
    picked: list[tuple[int, str]] = []
    latest_end = int(len(text) * LATEST_END_SHARE)

    def fits(index: int, piece: str) -> bool:
        return (EARLIEST_START <= index and index + len(piece) <= latest_end and is_legible(piece)
                and all(index + len(piece) <= i or i + len(p) <= index for i, p in picked))

    for word in dict.fromkeys(text.split()):
        index = text.find(word)
        end = index + len(word)
        whole = index > 0 and text[index - 1].isspace() and (end == len(text) or text[end].isspace())
        if whole and fits(index, word):
            picked.append((index, word))
    for index in range(EARLIEST_START, len(text) - 3):
        piece = text[index:index + 4]
        if len(picked) >= count:
            break
        if piece.strip() == piece and text.find(piece) == index and fits(index, piece):
            picked.append((index, piece))
    return sorted(picked)[:count] if len(picked) >= count else None


def _common_case(api, endpoint, prompts, count):
    """The first of `prompts` whose greedy output offers `count` common-case stop sequences:
    (prompt, baseline, sequences)."""
    require_endpoint(api, endpoint)
    for prompt in prompts:
        base = greedy_baseline(api, endpoint, prompt_body(endpoint, prompt), max_tokens=MAX_TOKENS)
        picked = _stop_sequences(base.text, count)
        if picked:
            return prompt, base, picked
    inconclusive(f"no greedy output (the last: {base.text[:80]!r}) offers {count} legible pieces that first occur "
                 f"at character {EARLIEST_START} or later and end in its first two thirds")


def _observe(api, endpoint, reply, base):
    verdict = Verdict.IGNORED if reply.text == base.text else Verdict.HONOURED
    api.observe(endpoint, "stop", verdict)


def _stopped(api, endpoint, prompt, stop, expected, finish=None, max_tokens=MAX_TOKENS):
    """The greedy request with `stop`, sent until its text is `expected` (and its finish_reason one of
    `finish`) or RELATION_TRIES ran out: drift (legal) can move any one reply off the greedy path.
    The last reply is judged; the message says how many tries there were."""
    body = {**prompt_body(endpoint, prompt), "temperature": 0, "max_tokens": max_tokens, "stop": stop}

    def send():
        return send_judged(api, endpoint, body, "stop")

    def finished(r) -> bool:
        return finish is None or r.finish_reason in finish

    stops = [stop] if isinstance(stop, str) else stop
    if max_tokens != MAX_TOKENS:  # an edge at the limit: its text is reckoned from the baseline's tokens
        def as_expected(r) -> bool:
            return r.text == expected and finished(r)

        replies = until_related(send, as_expected)
        kept = as_expected(replies[-1])
    else:
        # Drift can move the baseline itself off the likeliest path: a reply that stops as it should
        # on another greedy output seen is as good (the same sequences, cut where they occur in it),
        # and is judged against that output.
        base = greedy_baseline(api, endpoint, prompt_body(endpoint, prompt), MAX_TOKENS)

        def related(r, greedy: str) -> bool:
            return finished(r) and r.text == (expected if greedy == base.text else _cut(greedy, stops))

        replies, greedy = until_greedy_related(api, endpoint, prompt_body(endpoint, prompt), MAX_TOKENS, send,
                                               related)
        kept = related(replies[-1], greedy)
        if kept and greedy != base.text:
            replies[-1].judged_on = (greedy, len(_cut(greedy, stops)))
    if not kept:
        replies = _not_drift(api, endpoint, prompt, stops, replies)
    reply = replies[-1]
    reply.tries = len(replies)
    return reply


def _not_drift(api, endpoint, prompt, stops, replies):
    """The tries that missed, one that holds a stop sequence last; inconclusive when drift explains them.

    Drift (legal) can leave the baseline itself on a path that a near tie resolved otherwise than
    the likeliest (two drifted tries can agree), and move any try off it, to a path on which the
    sequences stand elsewhere or nowhere. So where this target's greedy outputs differ, tries of
    which some departed from the baseline's and none holds a stop sequence show nothing about stop.
    A sequence in the text is a deviation whatever the path, and tries that all keep to the
    baseline's path (cut short, say) are judged as where nothing drifts."""
    paths = greedy_paths(api, endpoint, prompt_body(endpoint, prompt), MAX_TOKENS)
    holding = [r for r in replies if any(s in r.text for s in stops)]
    departed = [r for r in replies if not paths[0].startswith(r.text)]
    if len(paths) > 1 and not holding and departed:
        inconclusive(f"the greedy outputs of this prompt differ ({len(paths)} seen: drift), and {len(departed)} of "
                     f"{len(replies)} tries departed from the baseline's {paths[0][:60]!r}, none holding any of "
                     f"{stops!r}: where an output departs, what there was to cut is not known "
                     f"({', '.join(repr(r.text[:60]) for r in replies)})")
    return [r for r in replies if all(r is not h for h in holding)] + holding


def _cut(text: str, stops: list[str]) -> str | None:
    """`text` up to the earliest of `stops` in it (None when none occurs)."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return text[:min(found)] if found else None


def _in_tries(reply) -> str:
    tries = getattr(reply, "tries", 1)
    return "" if tries == 1 else f" (in none of {tries} tries)"


def _what_came_back(text: str, full: str, index: int, sequence: str) -> tuple[str, str]:
    """The text that came back, quoted, and in one phrase how it differs from the greedy output
    `full` cut before `sequence` at `index`; and that difference as a finding (report/causes.py)."""
    expected = full[:index]
    if text == full[:index + len(sequence)]:
        why, finding = "the stop sequence was left in", "the stop sequence is left in the output"
    elif text == full:
        why = "the whole greedy output: it did not stop at the sequence"
        finding = "generation goes on past the stop sequence"
    elif text.startswith(expected):
        why = f"it ran {len(text) - index} characters past where the sequence begins"
        finding = "generation goes on past the stop sequence"
    elif expected.startswith(text):
        why = f"{len(expected) - len(text)} characters short of where the sequence begins"
        finding = "the output ends before the stop sequence"
    else:
        why, finding = "not the greedy output", "the output with stop is not the greedy output cut at the sequence"
    return f"{_quoted(text)} ({why})", finding


def _quoted(text: str, room: int = 80) -> str:
    """Model text, typed and quoted, shortened so that what follows it in a message stays in view."""
    if len(text) <= room:
        return f"string {text!r}"
    return f"string {text[:room - 20]!r}... ({len(text)} characters)"


def _expect_cut(reply, full, index, sequence, expected_what="the greedy output", label="{!r}"):
    on = getattr(reply, "judged_on", None)  # (another greedy output seen, where the reply stopped on it)
    if on is not None:
        (full, index), expected_what = on, "another greedy output seen (drift)"
    got, finding = _what_came_back(reply.text, full, index, sequence)
    expect(reply.text == full[:index],
           f"{expected_what} up to {label.format(sequence)}: {full[:index]!r}{_in_tries(reply)}", got,
           finding=finding)


def _stopped_at_one_word(api, endpoint):
    """The greedy baseline, a common-case sequence of it, and the same request with stop=[it]."""
    prompt, base, picked = _common_case(api, endpoint, STORY_PROMPTS, 1)
    index, word = picked[0]
    reply = _stopped(api, endpoint, prompt, [word], base.text[:index], finish=("stop",))
    _observe(api, endpoint, reply, base)
    return base, index, word, reply


def _finish_reason(value) -> str:
    return "null" if value is None else f"string {value!r}"


@check(id="{endpoint}.stop.excluded-from-output", level=Level.MUST, feature="{endpoint}.stop", parameter="stop",
       since="0.1.0", info=STOP_INFO)
def test_stop_excluded(api, endpoint):
    """With stop=[s], s well inside the output, the output is the greedy output up to the first s, without s."""
    base, index, word, reply = _stopped_at_one_word(api, endpoint)
    _expect_cut(reply, base.text, index, word)


@check(id="{endpoint}.stop.finish-reason-stop", level=Level.MUST, feature="{endpoint}.stop", parameter="stop",
       since="0.1.0", info="This will be `stop` if the model hit a natural stop point or a provided stop sequence")
def test_stop_finish_reason(api, endpoint):
    """Generation ended by a stop sequence reports finish_reason 'stop'."""
    *_, reply = _stopped_at_one_word(api, endpoint)
    expect(reply.finish_reason == "stop", f"finish_reason 'stop' (a stop sequence ended generation){_in_tries(reply)}",
           _finish_reason(reply.finish_reason),
           finding=finish_finding(reply.finish_reason, "a stop sequence ended generation"))


@check(id="{endpoint}.stop.string-form", level=Level.MUST, feature="{endpoint}.stop", parameter="stop",
       since="0.1.0", info=STOP_INFO)
def test_stop_string(api, endpoint):
    """stop given as a single string (not a list) stops generation the same way."""
    prompt, base, picked = _common_case(api, endpoint, LIST_PROMPTS, 1)
    index, word = picked[0]
    reply = _stopped(api, endpoint, prompt, word, base.text[:index])
    _observe(api, endpoint, reply, base)
    _expect_cut(reply, base.text, index, word)


@check(id="{endpoint}.stop.earliest-of-four", level=Level.MUST, feature="{endpoint}.stop", parameter="stop",
       since="0.1.0", info=STOP_INFO)
def test_stop_earliest_of_four(api, endpoint):
    """With four stop sequences, generation stops at whichever occurs first, wherever it is listed."""
    prompt, base, words = _common_case(api, endpoint, STORY_PROMPTS, 2)
    earliest = min(words)
    # Two sequences that never occur, then the later word, then the earliest: a target that only
    # honours the first sequence, or the first in the list that occurs, is caught.
    ordered = ABSENT + [w for _, w in sorted(words, reverse=True)]
    reply = _stopped(api, endpoint, prompt, ordered, base.text[:earliest[0]])
    # Output as if without stop is no sign that stop is ignored: the one-sequence checks judge that,
    # and a target that honours only one of the four deviates.
    if reply.text != base.text:
        api.observe(endpoint, "stop", Verdict.HONOURED)
    _expect_cut(reply, base.text, earliest[0], earliest[1], label="the earliest sequence {!r}")


# --- edge cases: each its own check, none of them observes `stop` as ignored -------------------


@check(id="{endpoint}.stop.at-output-start", level=Level.MUST, feature="{endpoint}.stop", parameter="stop",
       since="0.1.0", info=STOP_INFO)
def test_stop_at_output_start(api, endpoint):
    """A stop sequence that is the very start of the output stops it there: nothing before it is returned.

    OpenAI's reference makes no exception for where the sequence stands, so an empty output (or
    only the whitespace the greedy output begins with) with finish_reason 'stop' is the answer.
    """
    require_endpoint(api, endpoint)
    base = greedy_baseline(api, endpoint, prompt_body(endpoint, STORY_PROMPT), max_tokens=MAX_TOKENS)
    index = len(base.text) - len(base.text.lstrip())
    words = base.text.split()
    # The first word, as a first token usually is; output without spaces gives its first characters.
    first = words[0] if words and len(words[0]) <= 8 else base.text[index:index + 4]
    if not first or not is_legible(first):
        inconclusive(f"the greedy output {base.text[:80]!r} does not begin with a legible piece to stop at")
    reply = _stopped(api, endpoint, STORY_PROMPT, [first], base.text[:index], finish=("stop",))
    with clauses() as soft:
        with soft.clause():
            _expect_cut(reply, base.text, index, first)
        soft.expect(reply.finish_reason == "stop",
                    f"finish_reason 'stop' (the stop sequence ended generation){_in_tries(reply)}",
                    _finish_reason(reply.finish_reason),
                    finding=finish_finding(reply.finish_reason, "a stop sequence ended generation"))


def _greedy_tokens(api, endpoint, prompt, base):
    """The greedy output's tokens, from logprobs; inconclusive when the target does not give them.
    Sent until the tokens make up the greedy output (drift can move one reply off it)."""
    key = ("stop-tokens", endpoint, api.model, prompt)
    cache = api.runtime.cache
    if key not in cache:
        asked = {"logprobs": True} if endpoint == "chat" else {"logprobs": 1}
        body = {**prompt_body(endpoint, prompt), "temperature": 0, "max_tokens": MAX_TOKENS, **asked}
        cache[key] = until_related(lambda: api.create(endpoint, body, mode=Mode.REGULAR, path=CallPath.HTTP),
                                   lambda r: not r.ok or "".join(_tokens_of(endpoint, r) or []) == base.text)
    replies = [api.adopt(r) for r in cache[key]]
    reply = replies[-1]
    if not reply.ok:
        inconclusive(f"token boundaries are needed and the greedy request with logprobs failed ({reply.describe()})")
    tokens = _tokens_of(endpoint, reply)
    if not tokens or "".join(tokens) != base.text:
        inconclusive(f"token boundaries are needed and in {len(replies)} tries the target's logprobs gave no tokens "
                     f"that make up the greedy output (got {(tokens or [])[:8]!r})")
    counted = (reply.usage or {}).get("completion_tokens")
    if isinstance(counted, int) and counted != len(tokens):
        # llama-server merges a token that ends inside a UTF-8 character into the next entry: the
        # entries are then not the tokens max_tokens counts, and a limit cannot be placed by them.
        inconclusive(f"the logprobs list {len(tokens)} entries for {counted} completion tokens, so they are not "
                     "the token boundaries max_tokens counts")
    return tokens


def _tokens_of(endpoint, reply) -> list[str] | None:
    """The tokens a reply's logprobs list, or None when they are missing or not strings."""
    choice = (reply.body.get("choices") or [{}])[0] if isinstance(reply.body, dict) else {}
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(logprobs, dict):
        return None
    if endpoint == "chat":
        tokens = [e.get("token") if isinstance(e, dict) else None for e in logprobs.get("content") or []]
    else:
        tokens = list(logprobs.get("tokens") or [])
    return tokens if tokens and all(isinstance(t, str) for t in tokens) else None


def _token_case(api, endpoint, pieces, what):
    """The first of STORY_PROMPTS whose greedy output, cut into its tokens, offers one of `pieces`
    (a function of the text and its tokens): (prompt, baseline, tokens, piece)."""
    require_endpoint(api, endpoint)
    for prompt in STORY_PROMPTS:
        base = greedy_baseline(api, endpoint, prompt_body(endpoint, prompt), max_tokens=MAX_TOKENS)
        tokens = _greedy_tokens(api, endpoint, prompt, base)
        found = next(pieces(base.text, tokens), None)
        if found is not None:
            return prompt, base, tokens, found
    inconclusive(f"no greedy output (the last: {base.text[:80]!r}) offers a legible {what} that first occurs at "
                 f"character {EARLIEST_START} or later to stop at")


def _whole_tokens(text: str, tokens: list[str]):
    """Tokens whose text (without a leading space) first occurs where they stand, at EARLIEST_START
    or later, as (token index, first index, text): a stop sequence inside one token, so that only
    its place (at the limit) is judged."""
    end = 0
    for j, token in enumerate(tokens):
        end += len(token)
        sequence = token.lstrip()
        index = end - len(sequence)
        if (sequence and token.rstrip() == token and index >= EARLIEST_START and is_legible(sequence)
                and text.find(sequence) == index):
            yield j, index, sequence


def _spanning_pieces(text: str, tokens: list[str]):
    """Legible common-case pieces that span exactly two tokens and first occur where they stand,
    as (index of the second token, first index, piece)."""
    latest_end = int(len(text) * LATEST_END_SHARE)
    offset = 0
    for j in range(1, len(tokens)):
        offset += len(tokens[j - 1])
        for before, after in ((2, 2), (1, 3), (3, 1)):
            start, piece = offset - before, text[offset - before:offset + after]
            if (len(tokens[j - 1]) >= before and len(tokens[j]) >= after and start >= EARLIEST_START
                    and offset + after <= latest_end and piece.strip() == piece and is_legible(piece)
                    and text.find(piece) == start):
                yield j, start, piece
                break


@check(id="{endpoint}.stop.spans-tokens", level=Level.MUST, feature="{endpoint}.stop", parameter="stop",
       since="0.1.0", info=STOP_INFO)
def test_stop_spans_tokens(api, endpoint):
    """A stop sequence made of the end of one token and the start of the next stops the output too.

    Stop sequences are strings matched against the text, not tokens; the token boundaries come
    from the target's logprobs, and without them the check is inconclusive.
    """
    prompt, base, tokens, (_, index, piece) = _token_case(api, endpoint, _spanning_pieces, "piece across two tokens")
    reply = _stopped(api, endpoint, prompt, [piece], base.text[:index])
    _expect_cut(reply, base.text, index, piece)


@check(id="{endpoint}.stop.at-limit", level=Level.MUST, feature="{endpoint}.stop", parameter="stop",
       since="0.1.0", info=(
           "The returned text will not contain the stop sequence.",
           "`length` if the maximum number of tokens specified in the request was reached",
       ))
def test_stop_at_limit(api, endpoint):
    """A stop sequence completed by the last token max_tokens allows is still left out of the output.

    "The returned text will not contain the stop sequence" has no exception. Which finish_reason
    applies is not documented when both hold (a stop sequence ended generation, and max_tokens was
    reached), so 'stop' and 'length' are both accepted here.
    """
    prompt, base, tokens, (j, index, sequence) = _token_case(api, endpoint, _whole_tokens, "token")
    reply = _stopped(api, endpoint, prompt, [sequence], base.text[:index], finish=("stop", "length"),
                     max_tokens=j + 1)
    with clauses() as soft:
        with soft.clause():
            _expect_cut(reply, base.text, index, sequence, f"with max_tokens {j + 1}, the greedy output")
        soft.expect(reply.finish_reason in ("stop", "length"), f"finish_reason 'stop' or 'length'{_in_tries(reply)}",
                    _finish_reason(reply.finish_reason),
                    finding=finish_finding(reply.finish_reason, "a stop sequence or max_tokens ended generation"))


@check(id="{endpoint}.stop.across-limit", level=Level.SHOULD, feature="{endpoint}.stop", parameter="stop",
       since="0.1.0", info=not_in_openai(
           "OpenAI says the returned text leaves out a stop sequence, and that finish_reason is 'length' when "
           "max_tokens is reached; not what becomes of the beginning of a stop sequence max_tokens cut off. The "
           "suite's reading (max_tokens counts the tokens returned), hence SHOULD"))
def test_stop_across_limit(api, endpoint):
    """A stop sequence that max_tokens cuts off before it completes does not stop: all that was generated is returned.

    OpenAI documents finish_reason 'length' when max_tokens is reached, and that the text leaves
    out a stop sequence; it does not say what becomes of the beginning of one that never
    completed. Returning it, with 'length', is the only reading in which max_tokens counts the
    tokens returned; SHOULD, since it is not written down.
    """
    prompt, base, tokens, (limit, index, piece) = _token_case(api, endpoint, _spanning_pieces,
                                                              "piece across two tokens")
    generated = "".join(tokens[:limit])  # the limit ends the output inside the piece
    reply = _stopped(api, endpoint, prompt, [piece], generated, finish=("length",), max_tokens=limit)
    with clauses() as soft:
        soft.expect(reply.text == generated,
                    f"with max_tokens {limit}, all that was generated, the first {len(generated) - index} of {piece!r} "
                    f"included: {generated!r}{_in_tries(reply)}",
                    _quoted(reply.text) + (" (the beginning of the stop sequence was held back)"
                                           if generated.startswith(reply.text) and reply.text != generated else ""))
        soft.expect(reply.finish_reason == "length",
                    f"finish_reason 'length' (max_tokens ended generation){_in_tries(reply)}",
                    _finish_reason(reply.finish_reason),
                    finding=finish_finding(reply.finish_reason, "max_tokens ended generation"))
