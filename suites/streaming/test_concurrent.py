"""Streams side by side: each request is served to its own end, whatever else the target is serving."""

from conformance.harness import (
    CallPath, Level, Mode, OTHER_PROMPT, STORY_PROMPT, check, clauses, describe, inconclusive, not_in_openai,
    prompt_body, require_accepted, require_endpoint, streams_side_by_side,
)

FIRST_TOKENS = 48  # long enough to be still streaming when the second request arrives
SECOND_TOKENS = 8


@check(id="{endpoint}.stream.concurrent-streams-end", level=Level.MUST, feature="{endpoint}.stream",
       clause="stream.{endpoint}", modes=(Mode.STREAM,), paths=(CallPath.HTTP,),
       since="0.1.0", info=not_in_openai(
           "OpenAI serves each request on its own: a second request never ends a stream already running. "
           "Some self-hosted servers do (llama-cpp-python's server by default ends the running stream with "
           "[DONE] and no finish_reason when another request waits for the model), which an application with "
           "concurrent users sees as answers cut short."))
def test_concurrent_streams_end(api, endpoint):
    """Two streamed requests in flight together each run to their own end: a finish_reason on every choice.

    The second is sent once the first's first event has arrived. A target that serves one request at a
    time may make the second wait: both still end. A stream that ends without a finish_reason is sent
    again alone: if it lacks one alone too, that is `*.stream.one-finish-reason`'s finding, not this
    one's (inconclusive). Whether a stream ends with [DONE] is `*.stream.done-terminator`'s."""
    require_endpoint(api, endpoint)
    bodies = {"first": {**prompt_body(endpoint, STORY_PROMPT), "max_tokens": FIRST_TOKENS, "temperature": 0},
              "second": {**prompt_body(endpoint, OTHER_PROMPT), "max_tokens": SECOND_TOKENS, "temperature": 0}}
    first, second, overlapped = streams_side_by_side(api, endpoint, bodies["first"], bodies["second"])
    replies = {"first": first, "second": second}
    for reply in replies.values():
        require_accepted(api, reply, endpoint, "stream")
    unended = [name for name, reply in replies.items() if not _ended(reply)]
    for name in unended:
        alone = require_accepted(api, api.create(endpoint, bodies[name], fresh=True), endpoint, "stream")
        if not _ended(alone):
            inconclusive(f"the {name} stream ended without a finish_reason, and so does the same request sent alone: "
                         "*.stream.one-finish-reason judges that, not the concurrency")
    with clauses() as soft:
        for name in unended:
            reply = replies[name]
            choices = reply.choices
            cut = "when the second request arrived" if name == "first" and overlapped else "beside the other"
            soft.expect(False, f"the {name} stream to give every choice a finish_reason, as it does alone",
                        f"a stream of {len(reply.chunks)} chunk(s) whose last finish_reason is "
                        f"{describe(choices[-1].finish_reason) if choices else 'absent (no choice)'}"
                        + (f", {len(choices[0].text)} characters of text" if choices else ""),
                        f"so it was cut short {cut}")


def _ended(reply) -> bool:
    choices = reply.choices
    return bool(choices) and all(c.finish_reason is not None for c in choices)
