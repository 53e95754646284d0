"""logprobs: the log probabilities of the output tokens (chat: logprobs + top_logprobs;
completions: logprobs = k, in the legacy shape with text_offset)."""

import math

from conformance.harness import (
    Level, Mode, STORY_PROMPT, Tries, Verdict, check, clauses, describe, expect, how_text_differs, inconclusive,
    prompt_body, require_endpoint, require_repeatable_greedy, send_judged, until_greedy_related,
)

TOP = 3


def _chat_entries(reply) -> list[dict] | None:
    if reply.mode == Mode.REGULAR:
        choice = (reply.body.get("choices") or [{}])[0]
        logprobs = choice.get("logprobs")
        return None if logprobs is None else logprobs.get("content")
    entries = []
    for chunk in reply.chunks:
        for choice in chunk.get("choices") or []:
            content = (choice.get("logprobs") or {}).get("content")
            if content:
                entries.extend(content)
    return entries or None


def _completion_logprobs(reply) -> dict | None:
    if reply.mode == Mode.REGULAR:
        return (reply.body.get("choices") or [{}])[0].get("logprobs")
    merged: dict = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    seen = False
    for chunk in reply.chunks:
        for choice in chunk.get("choices") or []:
            part = choice.get("logprobs")
            if part:
                seen = True
                for key in merged:
                    merged[key].extend(part.get(key) or [])
    return merged if seen else None


@check(id="chat.logprobs.tokens-and-values", level=Level.MUST, feature="chat.logprobs", parameter="logprobs",
       since="0.1.0", info="If true, returns the log probabilities of each output token returned in the `content` of "
       "`message`.")
def test_chat_logprobs(api):
    """With logprobs, the tokens concatenate to the content and every logprob is <= 0."""
    require_endpoint(api, "chat")
    reply = send_judged(api, "chat", {**prompt_body("chat", STORY_PROMPT), "max_tokens": 8, "temperature": 0,
                                      "logprobs": True}, "logprobs")
    entries = _chat_entries(reply)
    api.observe("chat", "logprobs", Verdict.HONOURED if entries else Verdict.IGNORED)
    expect(entries, "choices[].logprobs.content with one entry per token", entries)
    with clauses() as soft:
        soft.expect("".join(e.get("token", "") for e in entries) == reply.text,
                    f"tokens that concatenate to the content {reply.text!r}", [e.get("token") for e in entries],
                    "which join to another text")
        values = [e.get("logprob") for e in entries]
        soft.expect(all(isinstance(v, (int, float)) and v <= 0 for v in values), "every logprob a number <= 0", values)


def _close(a, b) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, abs_tol=1e-4)


def _likelier(a, b) -> bool:
    """a is a clearly higher logprob than b (a tolerance for the float32 rounding of a server's softmax)."""
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > b + 1e-4


@check(id="chat.top_logprobs.sorted-alternatives", level=Level.MUST, feature="chat.top_logprobs",
       parameter="top_logprobs",
       since="0.1.0", info=(
           "An integer between 0 and 20 specifying the maximum number of most likely tokens to return at each token "
           "position, each with an associated log probability.",
           "List of the most likely tokens and their log probability, at this token position.",
       ))
def test_chat_top_logprobs(api):
    """top_logprobs=3 gives three alternatives per token, the likeliest first, the chosen token among them."""
    require_endpoint(api, "chat")
    reply = send_judged(api, "chat", {**prompt_body("chat", STORY_PROMPT), "max_tokens": 6, "temperature": 0,
                                      "logprobs": True, "top_logprobs": TOP}, "top_logprobs")
    entries = _chat_entries(reply) or []
    tops = [e.get("top_logprobs") or [] for e in entries]
    api.observe("chat", "top_logprobs", Verdict.HONOURED if any(tops) else Verdict.IGNORED)
    with clauses() as soft:
        soft.expect(entries and all(len(t) == TOP for t in tops), f"{TOP} alternatives for every token",
                    [len(t) for t in tops])
        for entry, top in zip(entries, tops):
            if not top:  # no alternatives to judge: the count above says so
                continue
            values = [t.get("logprob") for t in top]
            soft.expect(values == sorted(values, reverse=True), "alternatives in descending order of logprob", values,
                        key="order")
            # The alternatives are the likeliest tokens of the distribution the chosen one was drawn from,
            # whatever the sampling: none likelier is left out. (That temperature 0 picks the first is
            # temperature's clause, judged by chat.temperature.zero-repeatable.)
            chosen, listed = entry.get("logprob"), values[-1]
            soft.expect(not _likelier(chosen, values[0]),
                        f"a first alternative at least as likely as the chosen token {entry.get('token')!r} "
                        f"(logprob {chosen})", top, key="likeliest first")
            # Found by its logprob, not its text: a server may spell the chosen token with the bytes it
            # held back before it (llama-server: '\ufffdyou' chosen, 'you' among the alternatives).
            if _likelier(chosen, listed):
                soft.expect(any(_close(t.get("logprob"), chosen) for t in top),
                            f"the chosen token {entry.get('token')!r} (logprob {chosen}, likelier than the last "
                            f"alternative) among the alternatives, with that logprob", top, key="chosen among them")


@check(id="completions.logprobs.legacy-shape", level=Level.MUST, feature="completions.logprobs", parameter="logprobs",
       since="0.1.0", info="Include the log probabilities on the `logprobs` most likely output tokens, as well the "
       "chosen tokens.")
def test_completion_logprobs(api):
    """logprobs=3 gives tokens, token_logprobs (<= 0), 3 top_logprobs each and text_offset that add up."""
    require_endpoint(api, "completions")
    reply = send_judged(api, "completions", {**prompt_body("completions", STORY_PROMPT), "max_tokens": 8,
                                             "temperature": 0, "logprobs": TOP}, "logprobs")
    logprobs = _completion_logprobs(reply)
    api.observe("completions", "logprobs", Verdict.HONOURED if logprobs else Verdict.IGNORED)
    expect(isinstance(logprobs, dict), "choices[].logprobs {tokens, token_logprobs, top_logprobs, text_offset}",
           logprobs)
    tokens = logprobs.get("tokens") or []
    with clauses() as soft:
        soft.expect("".join(tokens) == reply.text, f"tokens that concatenate to the text {reply.text!r}", tokens,
                    "which join to another text")
        values = logprobs.get("token_logprobs") or []
        soft.expect(len(values) == len(tokens) and all(v <= 0 for v in values), "one logprob <= 0 per token", values)
        tops = logprobs.get("top_logprobs") or []
        soft.expect(len(tops) == len(tokens) and all(len(t) == TOP for t in tops), f"{TOP} alternatives per token",
                    [len(t) for t in tops])
        offsets = logprobs.get("text_offset") or []
        steps = [b - a for a, b in zip(offsets, offsets[1:])]
        soft.expect(len(offsets) == len(tokens) and steps == [len(t) for t in tokens[:-1]],
                    "text_offset advancing by each token's length", offsets)


@check(id="completions.echo.prompt-prepended", level=Level.MUST, feature="completions.echo", parameter="echo",
       modes=(Mode.REGULAR,),
       since="0.1.0", info="Echo back the prompt in addition to the completion")
def test_echo(api):
    """echo=true returns the prompt followed by the completion."""
    require_endpoint(api, "completions")
    prompt = "Once upon a time"
    # Drift can move one try's completion off the greedy path: a try that matches is sought.
    replies, completion = until_greedy_related(
        api, "completions", {"prompt": prompt}, 6,
        lambda: send_judged(api, "completions", {"prompt": prompt, "max_tokens": 6, "temperature": 0, "echo": True},
                            "echo"),
        lambda r, text: r.text == prompt + text)
    reply = replies[-1]
    api.observe("completions", "echo", Verdict.HONOURED if reply.text.startswith(prompt) else Verdict.IGNORED)
    if reply.text != prompt + completion and all(r.text.startswith(prompt) for r in replies) and Tries(replies).agreed:
        inconclusive(f"every try begins with the prompt and they repeat one completion, {reply.text!r}, not the "
                     f"greedy one {completion!r}: a near tie resolved the other way, as drift does")
    if reply.text != prompt + completion and reply.text.startswith(prompt):
        require_repeatable_greedy(api, "completions", {"prompt": prompt}, 6, len(replies))
    expect(reply.text == prompt + completion,
           f"the prompt and then the completion, {prompt + completion!r}, from some of {len(replies)} tries",
           describe(reply.text), "without the prompt" if not reply.text.startswith(prompt)
           else how_text_differs(reply.text, prompt + completion, "the prompt and completion"))


@check(id="completions.echo.max-tokens-zero", level=Level.MUST, feature="completions.echo", parameter="echo",
       modes=(Mode.REGULAR,),
       since="0.1.0", info="Echo back the prompt in addition to the completion")
def test_echo_max_tokens_zero(api):
    """echo=true with max_tokens=0 returns the prompt alone, with usage.completion_tokens 0 (how prompt logprobs are had)."""
    require_endpoint(api, "completions")
    prompt = "Once upon a time"
    body = {"prompt": prompt, "max_tokens": 0, "temperature": 0, "echo": True}
    reply = api.create("completions", body)
    if not reply.ok:
        # echo's own refusal is judged as echo's checks judge it; max_tokens 0 alone refused is this
        # check's deviation (OpenAI documents 0 as the minimum of max_tokens for completions).
        send_judged(api, "completions", {**body, "max_tokens": 1}, "echo")
        expect(False, "max_tokens 0 accepted with echo (OpenAI's minimum for completions is 0)",
               f"{reply.describe()}, while max_tokens 1 with echo is accepted")
    used = (reply.usage or {}).get("completion_tokens")
    expect(reply.text == prompt and used == 0,
           f"the prompt alone, {prompt!r}, with no generated text and usage.completion_tokens 0",
           f"text {describe(reply.text)}, usage.completion_tokens {describe(used)}")


def _range(low: int, high: int):
    return lambda endpoint: [(str(low), low), (str(high), high)]


@check(id="chat.top_logprobs.range", level=Level.MUST, feature="chat.top_logprobs", parameter="top_logprobs",
       variants=_range(0, 20),
       since="0.1.0", info="An integer between 0 and 20 specifying the maximum number of most likely tokens to "
       "return at each token position, each with an associated log probability.")
def test_chat_top_logprobs_range(api, case):
    """top_logprobs takes any value from 0 to 20 and gives exactly that many alternatives per token."""
    require_endpoint(api, "chat")
    reply = send_judged(api, "chat", {**prompt_body("chat", STORY_PROMPT), "max_tokens": 4, "temperature": 0,
                                      "logprobs": True, "top_logprobs": case}, "top_logprobs")
    entries = _chat_entries(reply)
    expect(entries, "choices[].logprobs.content with one entry per token", entries)
    counts = [len(e["top_logprobs"]) if isinstance(e.get("top_logprobs"), list) else e.get("top_logprobs")
              for e in entries]
    expect(all(c == case for c in counts), f"{case} alternatives for every token", counts)


@check(id="completions.logprobs.range", level=Level.MUST, feature="completions.logprobs", parameter="logprobs",
       variants=_range(0, 5),
       since="0.1.0", info=(
           "The maximum value for `logprobs` is 5.",
           "The API will always return the `logprob` of the sampled token, so there may be up to `logprobs+1` "
           "elements in the response.",
       ))
def test_completion_logprobs_range(api, case):
    """logprobs takes any value from 0 to 5 and gives that many alternatives per token (OpenAI may add the
    sampled token, so k or k + 1)."""
    require_endpoint(api, "completions")
    reply = send_judged(api, "completions", {**prompt_body("completions", STORY_PROMPT), "max_tokens": 4,
                                             "temperature": 0, "logprobs": case}, "logprobs")
    logprobs = _completion_logprobs(reply)
    expect(isinstance(logprobs, dict) and logprobs.get("tokens"), "choices[].logprobs with the tokens", logprobs)
    counts = [len(t) if isinstance(t, dict) else t for t in logprobs.get("top_logprobs") or []]
    expect(len(counts) == len(logprobs["tokens"]) and all(c in (case, case + 1) for c in counts),
           f"{case} (or {case + 1}) alternatives for every token", counts)
