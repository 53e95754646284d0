"""usage: token accounting, and stream_options.include_usage."""

from conformance.harness import (
    ABSENT, CallPath, Level, Mode, STORY_PROMPT, Verdict, check, clauses, expect, inconclusive, prompt_body,
    require_endpoint, schema_finding, send_judged, validate,
)


@check(id="{endpoint}.usage.consistent", level=Level.MUST, feature="{endpoint}.usage", clause="usage.{endpoint}",
       modes=(Mode.REGULAR,),
       since="0.1.0", info=(
           "Number of tokens in the prompt.",
           "Total number of tokens used in the request (prompt + completion).",
       ))
def test_usage_consistent(api, endpoint):
    """A response carries usage with prompt_tokens > 0 and total_tokens = prompt_tokens + completion_tokens."""
    require_endpoint(api, endpoint)
    reply = send_judged(api, endpoint, {**prompt_body(endpoint, STORY_PROMPT), "max_tokens": 8}, None)
    usage = reply.usage
    expect(isinstance(usage, dict), "a usage object", usage)
    counts = ("prompt_tokens", "completion_tokens", "total_tokens")
    with clauses() as soft:
        problems = validate("usage", usage)
        soft.expect(not problems, "a usage object {prompt_tokens, completion_tokens, total_tokens}",
                    "; ".join(problems), finding=schema_finding(problems))
        if not all(isinstance(usage.get(k), int) and not isinstance(usage.get(k), bool) for k in counts):
            return  # the counts below need the three integers the clause above asks for
        soft.expect(usage["prompt_tokens"] > 0, "prompt_tokens > 0", usage, "though the prompt is not empty")
        soft.expect(0 <= usage["completion_tokens"] <= 8, "0 <= completion_tokens <= max_tokens (8)", usage,
                    "a count max_tokens does not allow")
        soft.expect(usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"],
                    "total_tokens = prompt_tokens + completion_tokens", usage,
                    f"a total {usage['total_tokens'] - usage['prompt_tokens'] - usage['completion_tokens']:+d} off "
                    "the sum")


@check(id="{endpoint}.stream_options.include-usage", level=Level.MUST, feature="{endpoint}.stream_options",
       parameter="stream_options", modes=(Mode.STREAM,),
       since="0.1.0", info="If set, an additional chunk will be streamed before the `data: [DONE]` message. The "
       "`usage` field on this chunk shows the token usage statistics for the entire request, and the `choices` field "
       "will always be an empty array.")
def test_stream_include_usage(api, endpoint):
    """With include_usage, one last chunk has choices [] and the usage of the regular response; no other has usage."""
    require_endpoint(api, endpoint)
    body = {**prompt_body(endpoint, STORY_PROMPT), "temperature": 0, "max_tokens": 12}
    regular = api.create(endpoint, body, mode=Mode.REGULAR, path=CallPath.HTTP)
    if not regular.ok or not isinstance(regular.usage, dict):
        inconclusive(f"the regular control request gave no usage ({regular.describe()})")
    reply = send_judged(api, endpoint, {**body, "stream_options": {"include_usage": True}}, "stream_options")
    chunks = reply.chunks
    with_usage = [i for i, c in enumerate(chunks) if c.get("usage") is not None]
    api.observe(endpoint, "stream_options", Verdict.HONOURED if with_usage else Verdict.IGNORED)
    expect(with_usage, "exactly one chunk with usage", f"{len(with_usage)} chunks with usage",
           "though include_usage asked for one")  # the clauses below read that chunk
    with clauses() as soft:
        soft.expect(len(with_usage) == 1, "exactly one chunk with usage", f"{len(with_usage)} chunks with usage")
        last = chunks[with_usage[0]]
        soft.expect(with_usage[0] == len(chunks) - 1, "the usage chunk to be the last chunk",
                    f"chunk {with_usage[0] + 1} of {len(chunks)}")
        soft.expect(last.get("choices") == [], "choices [] in the usage chunk", last.get("choices", ABSENT))
        usage = last["usage"] if isinstance(last["usage"], dict) else {}
        if reply.text == regular.text:
            counts = ("prompt_tokens", "completion_tokens", "total_tokens")
            soft.expect(all(usage.get(k) == regular.usage.get(k) for k in counts),
                        f"the regular response's usage {regular.usage} (the same text)", last["usage"], "other counts")
        else:  # temperature 0 may repeat otherwise (legal): only what the two texts share is compared
            soft.expect(usage.get("prompt_tokens") == regular.usage.get("prompt_tokens"),
                        f"the regular response's prompt_tokens {regular.usage.get('prompt_tokens')} (the same prompt)",
                        last["usage"], "another count")
            if reply.finish_reason == "length":
                soft.expect(usage.get("completion_tokens") == body["max_tokens"],
                            f"completion_tokens {body['max_tokens']} (max_tokens ended the stream)", last["usage"],
                            "another count")
            parts = (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
            soft.expect(isinstance(usage.get("total_tokens"), int) and usage.get("total_tokens") == parts,
                        "total_tokens = prompt_tokens + completion_tokens", last["usage"])
