"""The forms of `prompt` (string, list of strings, token arrays) and the context limit."""

from conformance.harness import (
    ABSENT, Level, Mode, OTHER_PROMPT, STORY_PROMPT, check, clauses, describe, expect, greedy_baseline,
    greedy_paths, not_in_openai, prompt_body, prompt_counts, raw_body, require_endpoint, send_judged, until_related,
    validate_error_envelope,
)

PROMPT_INFO = ("The prompt(s) to generate completions for, encoded as a string, array of strings, array of tokens, "
               "or array of token arrays.")



@check(id="completions.prompt.list-of-strings", level=Level.MUST, feature="completions.prompt", parameter="prompt",
       since="0.1.0", info=PROMPT_INFO)
def test_prompt_list(api):
    """A list of two prompts gives one choice per prompt, each the greedy completion of its own prompt."""
    require_endpoint(api, "completions")
    bases = [greedy_baseline(api, "completions", {"prompt": p}, max_tokens=6) for p in (STORY_PROMPT, OTHER_PROMPT)]
    wanted = [b.text for b in bases]

    def texts(reply):
        return [c.text for c in sorted(reply.choices, key=lambda c: c.index)]

    # Drift can move either choice of one try off the greedy path: a try that matches is sought,
    # and when none matches the baselines, any greedy output of each prompt counts.
    replies = until_related(lambda: send_judged(api, "completions", {"prompt": [STORY_PROMPT, OTHER_PROMPT],
                                                                     "max_tokens": 6, "temperature": 0}, "prompt"),
                            lambda r: texts(r) == wanted)
    if texts(replies[-1]) != wanted:
        paths = [greedy_paths(api, "completions", {"prompt": p}, max_tokens=6) for p in (STORY_PROMPT, OTHER_PROMPT)]
        greedy = [r for r in replies if len(texts(r)) == 2 and all(t in ps for t, ps in zip(texts(r), paths))]
        replies = [r for r in replies if r not in greedy] + greedy[:1]
        wanted = texts(greedy[0]) if greedy else wanted
    expect(texts(replies[-1]) == wanted, f"the two greedy completions {wanted} from some of {len(replies)} tries",
           texts(replies[-1]), f"{len(texts(replies[-1]))} choices for 2 prompts" if len(texts(replies[-1])) != 2
           else "not the greedy completion of each prompt")


@check(id="completions.prompt.token-array", level=Level.SHOULD, feature="completions.prompt", parameter="prompt",
       modes=(Mode.REGULAR,),
       since="0.1.0", info=PROMPT_INFO)
def test_prompt_tokens(api):
    """A prompt given as an array of token ids is accepted and counted as that many prompt tokens."""
    require_endpoint(api, "completions")
    tokens = [15, 16, 17, 18, 19]
    reply = send_judged(api, "completions", {"prompt": tokens, "max_tokens": 2}, "prompt")
    used = prompt_counts([reply], "the token ids")[0]
    expect(used == len(tokens), f"usage.prompt_tokens == {len(tokens)}", used, "another count than the token ids sent")


@check(id="{endpoint}.errors.context-length", level=Level.MUST, feature="{endpoint}.errors", clause="errors",
       since="0.1.0", info={
           "chat": not_in_openai(
               'the error-codes guide the clause links; the OpenAPI document states the context limit only for '
               '/completions ("The token count of your prompt plus `max_tokens` cannot exceed the model\'s context '
               'length.") and names no error code'),
           "completions": "The token count of your prompt plus `max_tokens` cannot exceed the model's context length.",
       })
def test_context_length(api, endpoint):
    """A prompt longer than the model's context is refused with 400 and code 'context_length_exceeded'.

    Streamed too: the refusal comes before any event (llama.cpp's server answered 200 and sent the
    error as an event, ggml-org/llama.cpp#14566)."""
    require_endpoint(api, endpoint)
    # One and a half times the context the target file states (limits.context_tokens); a word
    # of a common English word is at least one token in every tokenizer.
    words = api.target.limits.context_tokens * 3 // 2
    body = {**prompt_body(endpoint, "word " * words), "max_tokens": 4}
    reply = api.create(endpoint, body)
    with clauses() as soft:
        soft.expect(reply.status == 400, "HTTP 400", reply.describe(),
                    "the prompt was served instead of refused" if reply.ok else None,
                    finding="a prompt longer than the context is served, where OpenAI refuses it with HTTP 400"
                    if reply.ok else None)
        if not reply.ok:  # the code of a refusal (a prompt that was served has none)
            soft.expect(reply.error is not None and reply.error.get("code") == "context_length_exceeded",
                        "error.code 'context_length_exceeded'",
                        describe(reply.error.get("code", ABSENT)) if reply.error is not None
                        else "; ".join(validate_error_envelope(reply.body, raw_body(reply))))
