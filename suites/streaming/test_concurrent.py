"""Streams side by side: each request is served to its own end, whatever else the target is serving."""

from conformance.harness import (
    CallPath, Level, Mode, OTHER_PROMPT, STORY_PROMPT, check, clauses, describe, not_in_openai, prompt_body,
    require_accepted, require_endpoint, streams_side_by_side,
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
    """Two streamed requests in flight together each run to their own end: a finish_reason on every choice,
    then `data: [DONE]`.

    The second is sent once the first's first event has arrived. A target that serves one request at a
    time may make the second wait: both still end. The stream's other clauses are other checks'."""
    require_endpoint(api, endpoint)
    first_body = {**prompt_body(endpoint, STORY_PROMPT), "max_tokens": FIRST_TOKENS, "temperature": 0}
    second_body = {**prompt_body(endpoint, OTHER_PROMPT), "max_tokens": SECOND_TOKENS, "temperature": 0}
    first, second, overlapped = streams_side_by_side(api, endpoint, first_body, second_body)
    for reply in (first, second):
        require_accepted(api, reply, endpoint, "stream")
    with clauses() as soft:
        for name, reply in (("first", first), ("second", second)):
            cut = "when the second request arrived" if name == "first" and overlapped else None
            choices = reply.choices
            soft.expect(choices and all(c.finish_reason is not None for c in choices),
                        f"the {name} stream to give every choice a finish_reason",
                        f"a stream of {len(reply.chunks)} chunk(s) whose last finish_reason is "
                        f"{describe(choices[-1].finish_reason) if choices else 'absent (no choice)'}"
                        + (f", {len(choices[0].text)} characters of text" if choices else ""),
                        f"so it was cut short {cut}" if cut else None)
            soft.expect(reply.stream is not None and reply.stream.done, f"the {name} stream to end with data: [DONE]",
                        "no [DONE]", f"so it was cut short {cut}" if cut else None)
