"""max_tokens: an upper bound on the generated tokens."""

from conformance.harness import (
    Level, Mode, STORY_PROMPT, Verdict, check, clauses, describe, expect, finish_finding, greedy_baseline,
    how_text_differs,
    inconclusive, is_legible, not_in_openai, prompt_body, require_control, require_endpoint, send_judged,
    require_repeatable_greedy, until_greedy_related,
)

LIMIT = 5

LENGTH_REASON = "`length` if the maximum number of tokens specified in the request was reached"
MAX_TOKENS_INFO = {  # OpenAI's words for max_tokens, and for finish_reason 'length'
    "chat": ("The maximum number of [tokens](/tokenizer) that can be generated in the chat completion.", LENGTH_REASON),
    "completions": ("The maximum number of [tokens](/tokenizer) that can be generated in the completion.", LENGTH_REASON),
}


def _limits_length(api, endpoint, parameter):
    """The limit judged by tokens: the usage of the cut answer, and the length of the uncut one. An
    uncut answer of exactly LIMIT visible tokens and then its end-of-sequence (counted, as OpenAI
    and engines count it) comes back whole and rightly 'length': the text need not be shorter."""
    require_endpoint(api, endpoint)
    body = prompt_body(endpoint, STORY_PROMPT)
    base = greedy_baseline(api, endpoint, body, max_tokens=48)
    uncut = (base.usage or {}).get("completion_tokens", 0)
    if uncut <= LIMIT:
        inconclusive(f"the unlimited greedy output has only {base.usage} tokens, not more than {LIMIT}")
    # Whether the cut text must be shorter: the uncut answer has more than LIMIT tokens besides a
    # final end-of-sequence (one that ran to its own limit has no such token).
    must_shorten = uncut > LIMIT + 1 or base.finish_reason == "length"

    def related(r, text) -> bool:
        return text.startswith(r.text) and (len(r.text) < len(text) or not must_shorten)

    # The limit binds every try; the prefix relation needs one try that drift left on the greedy path.
    replies, greedy = until_greedy_related(
        api, endpoint, body, 48, lambda: send_judged(api, endpoint, {**body, "temperature": 0, parameter: LIMIT},
                                                     parameter), related)
    used = [(r.usage or {}).get("completion_tokens") for r in replies]
    ignored = (must_shorten and any(r.text == greedy for r in replies)) or any(u is not None and u > LIMIT
                                                                                for u in used)
    api.observe(endpoint, parameter, Verdict.IGNORED if ignored else Verdict.HONOURED, f"{len(replies)} tries")
    with clauses() as soft:
        for reply, count in zip(replies, used):
            if count is not None:
                soft.expect(count <= LIMIT, f"usage.completion_tokens <= {LIMIT} in every try", count,
                            "more tokens than max_tokens allows", key="usage")
            soft.expect(reply.finish_reason == "length", "finish_reason 'length' in every try",
                        describe(reply.finish_reason), "though max_tokens ended generation", key="finish_reason",
                        finding=finish_finding(reply.finish_reason, "max_tokens ended generation"))
        reply = replies[-1]
        soft.expect(related(reply, greedy),
                    f"{'a strict prefix' if must_shorten else 'a prefix'} of the greedy output {greedy[:80]!r} "
                    f"({uncut} tokens uncut) from some of {len(replies)} tries",
                    describe(reply.text), how_text_differs(reply.text, greedy))


@check(id="{endpoint}.max_tokens.limits-length", level=Level.MUST, feature="{endpoint}.max_tokens",
       parameter="max_tokens",
       since="0.1.0", info=MAX_TOKENS_INFO)
def test_max_tokens_limits_length(api, endpoint):
    """With max_tokens=5, a greedy output that was longer stops at 5 tokens with finish_reason 'length'."""
    _limits_length(api, endpoint, "max_tokens")


@check(id="chat.max_completion_tokens.limits-length", level=Level.MUST, feature="chat.max_completion_tokens",
       parameter="max_completion_tokens",
       since="0.1.0", info=(
           "An upper bound for the number of tokens that can be generated for a completion, including visible output "
           "tokens and [reasoning tokens](/docs/guides/reasoning).",
           LENGTH_REASON,
       ))
def test_max_completion_tokens(api):
    """With max_completion_tokens=5, a greedy output that was longer stops at 5 tokens with finish_reason 'length'."""
    _limits_length(api, "chat", "max_completion_tokens")


@check(id="{endpoint}.max_tokens.one-token", level=Level.MUST, feature="{endpoint}.max_tokens", parameter="max_tokens",
       since="0.1.0", info=MAX_TOKENS_INFO)
def test_max_tokens_one(api, endpoint):
    """max_tokens=1 yields exactly one token (usage.completion_tokens == 1; streamed: the same text)."""
    require_endpoint(api, endpoint)
    body = {**prompt_body(endpoint, STORY_PROMPT), "temperature": 0, "max_tokens": 1}
    reply = send_judged(api, endpoint, body, "max_tokens")
    if api.mode == Mode.REGULAR:
        with clauses() as soft:
            soft.expect(reply.finish_reason == "length", "finish_reason 'length'", describe(reply.finish_reason),
                        "though max_tokens ended generation",
                        finding=finish_finding(reply.finish_reason, "max_tokens ended generation"))
            used = (reply.usage or {}).get("completion_tokens")
            soft.expect(used == 1, "usage.completion_tokens == 1", used)
    else:
        # Streamed, the clauses after the first need more requests: the first stays hard.
        expect(reply.finish_reason == "length", "finish_reason 'length'", describe(reply.finish_reason),
               "though max_tokens ended generation",
               finding=finish_finding(reply.finish_reason, "max_tokens ended generation"))
        regular = greedy_baseline(api, endpoint, prompt_body(endpoint, STORY_PROMPT), max_tokens=1)
        if not is_legible(regular.text):
            inconclusive(f"the one token {regular.text!r} is not a whole character, so a stream may rightly "
                         "hold it back")
        # Drift may have moved this one token, in the stream or in the regular baseline: try again.
        replies, greedy = until_greedy_related(api, endpoint, prompt_body(endpoint, STORY_PROMPT), 1,
                                               lambda: send_judged(api, endpoint, body, "max_tokens"),
                                               lambda r, text: r.text == text, first=reply)
        for again in replies:
            expect(again.finish_reason == "length", "finish_reason 'length' in every try",
                   describe(again.finish_reason), "though max_tokens ended generation",
                   finding=finish_finding(again.finish_reason, "max_tokens ended generation"))
        if replies[-1].text != greedy:
            require_repeatable_greedy(api, endpoint, prompt_body(endpoint, STORY_PROMPT), 1, len(replies))
        expect(replies[-1].text == greedy,
               f"the same one-token text as the regular response {greedy!r} from some of {len(replies)} tries",
               describe(replies[-1].text), how_text_differs(replies[-1].text, greedy, "the regular text"))


def _about_the_context(error) -> bool:
    """An error that names the context length or max_tokens as the problem, as OpenAI's do
    (code 'context_length_exceeded', or an invalid_request_error about max_tokens)."""
    if not isinstance(error, dict):
        return False
    message = str(error.get("message") or "").lower()
    return (error.get("code") == "context_length_exceeded" or error.get("param") in ("max_tokens", "max_completion_tokens")
            or any(word in message for word in ("context", "max_tokens", "maximum")))


@check(id="{endpoint}.max_tokens.over-context", level=Level.SHOULD, feature="{endpoint}.max_tokens",
       parameter="max_tokens", modes=(Mode.REGULAR,),
       since="0.1.0", info={
           "chat": not_in_openai(
               'OpenAI states this limit for the max_tokens of /completions ("The token count of your prompt plus '
               '`max_tokens` cannot exceed the model\'s context length."), not in chat\'s max_tokens description; '
               'chat models have a context all the same'),
           "completions": "The token count of your prompt plus `max_tokens` cannot exceed the model's context length.",
       })
def test_max_tokens_over_context(api, endpoint):
    """A short prompt with max_tokens equal to the context (prompt + max_tokens over it) is refused with 400."""
    require_endpoint(api, endpoint)
    if "context_tokens" not in api.target.limits_given:
        inconclusive(f"target '{api.target.name}' does not state its context size ([limits] context_tokens), so "
                     "a request whose prompt + max_tokens exceeds it cannot be built")
    context = api.target.limits.context_tokens
    body = {**prompt_body(endpoint, "Say hello."), "temperature": 0}
    reply = api.create(endpoint, {**body, "max_tokens": context})
    if reply.status == 400 and _about_the_context(reply.error):
        return
    require_control(api, api.create(endpoint, {**body, "max_tokens": 4}), "the same request with max_tokens 4")
    expected = (f"HTTP 400 (code 'context_length_exceeded', or an invalid_request_error about max_tokens) for "
                f"max_tokens {context}, the whole context, with a prompt of a few tokens")
    if reply.ok:
        usage = reply.usage or {}
        how = ("cut at max_tokens or where the context ends" if reply.finish_reason == "length" else
               "the request taken as if the context held it (the output ended by itself first)")
        expect(False, expected,
               f"HTTP {reply.status}: an answer, finish_reason {describe(reply.finish_reason)} after completion_tokens "
               f"{describe(usage.get('completion_tokens'))} (prompt_tokens {describe(usage.get('prompt_tokens'))}): {how}")
    expect(False, expected, f"{reply.describe()}, error {describe(reply.error)}")
