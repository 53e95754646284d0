"""Streaming: the event-stream framing, read strictly from the raw bytes (both paths record them)."""

from conformance.harness import (
    ABSENT, FINISH_REASONS, CallPath, Level, Mode, STORY_PROMPT, Verdict, aggregate_chunks, check, clauses, describe,
    expect, greedy_baseline, how_text_differs, inconclusive, not_in_openai, prompt_body, read_stream, require_endpoint,
    require_repeatable_greedy, schema_finding, send_judged, until_greedy_related, validate,
)

STREAM = (Mode.STREAM,)
CHUNK_OBJECT = {"chat": "chat.completion.chunk", "completions": "text_completion"}


def _stream(api, endpoint):
    """A streamed response whose status was 2xx; its raw bytes are judged whatever the SDK made of them."""
    require_endpoint(api, endpoint)
    body = {**prompt_body(endpoint, STORY_PROMPT), "max_tokens": 12}
    reply = api.create(endpoint, body)
    if reply.status is None or not 200 <= reply.status < 300:
        send_judged(api, endpoint, body, "stream")
    if reply.stream is None:
        reply.stream = read_stream(reply.exchange)
    return reply


@check(id="{endpoint}.stream.content-type", level=Level.MUST, feature="{endpoint}.stream", parameter="stream",
       modes=STREAM,
       since="0.1.0", info={
           "chat": "If set to true, the model response data will be streamed to the client as it is generated using "
                   "[server-sent events]",
           "completions": "If set, tokens will be sent as data-only [server-sent events]",
       })
def test_content_type(api, endpoint):
    """A streamed response has Content-Type text/event-stream."""
    reply = _stream(api, endpoint)
    content_type = reply.stream.content_type if reply.stream else ""
    is_stream = content_type.split(";")[0].strip().lower() == "text/event-stream"
    api.observe(endpoint, "stream", Verdict.HONOURED if is_stream or reply.stream.data else Verdict.IGNORED)
    expect(is_stream, "Content-Type text/event-stream", describe(content_type) if content_type else "no Content-Type")


@check(id="{endpoint}.stream.done-terminator", level=Level.MUST, feature="{endpoint}.stream", clause="stream.{endpoint}",
       modes=STREAM,
       since="0.1.0", info={
           "chat": "If set, an additional chunk will be streamed before the `data: [DONE]` message.",
           "completions": "with the stream terminated by a `data: [DONE]` message.",
       })
def test_done_terminator(api, endpoint):
    """The stream ends with `data: [DONE]`, and nothing follows it."""
    reply = _stream(api, endpoint)
    view = reply.stream
    with clauses() as soft:
        soft.expect(not view.problems, "a well-formed event stream", "; ".join(view.problems))
        soft.expect(view.done, "a final `data: [DONE]` event",
                    f"a last event {describe(view.data[-1])}" if view.data else "no event",
                    "the stream ended without [DONE]" if view.data else None,
                    finding="the stream ends without `data: [DONE]`")
        soft.expect(view.events_after_done == 0, "no event after [DONE]", f"{view.events_after_done} events after it")


@check(id="{endpoint}.stream.chunk-schema", level=Level.MUST, feature="{endpoint}.stream", clause="stream.{endpoint}",
       modes=STREAM,
       since="0.1.0", info={
           "chat": "Represents a streamed chunk of a chat completion response returned by the model, based on the "
                   "provided input.",
           "completions": "Note: both the streamed and non-streamed response objects share the same shape (unlike "
                          "the chat endpoint).",
       })
def test_chunk_schema(api, endpoint):
    """Every event is a plain `data:` event holding a JSON chunk object valid against OpenAI's chunk model."""
    reply = _stream(api, endpoint)
    view = reply.stream
    odd_types = sorted(set(t for t in view.event_types if t != "message"))
    with clauses() as soft:
        soft.expect(not odd_types, "only unnamed (message) events", f"events named {odd_types}")
        soft.expect(not view.problems, "every event's data to be JSON or [DONE]", "; ".join(view.problems))
        kind = {"chat": "chat.completion.chunk", "completions": "text_completion.chunk"}[endpoint]
        soft.expect(view.chunks, "at least one chunk", "no chunk")
        for number, chunk in enumerate(view.chunks, 1):
            problems = validate(kind, chunk)
            soft.expect(not problems, f"chunk {number} to be a valid {CHUNK_OBJECT[endpoint]}", "; ".join(problems),
                        key="valid chunk", finding=schema_finding(problems))


@check(id="{endpoint}.stream.consistent-id", level=Level.MUST, feature="{endpoint}.stream", clause="stream.{endpoint}",
       modes=STREAM,
       since="0.1.0", info={
           "chat": "A unique identifier for the chat completion. Each chunk has the same ID.",
           "completions": "A unique identifier for the completion.",
       })
def test_consistent_id(api, endpoint):
    """Every chunk of one stream carries the same `id` and `model`."""
    _expect_one_value(_stream(api, endpoint), ("id", "model"))


@check(id="{endpoint}.stream.consistent-created", level=Level.SHOULD, feature="{endpoint}.stream",
       clause="stream.{endpoint}", modes=STREAM,
       since="0.1.0", info={
           "chat": "The Unix timestamp (in seconds) of when the chat completion was created. Each chunk has the same "
                   "timestamp.",
           "completions": "The Unix timestamp (in seconds) of when the completion was created.",
       })
def test_consistent_created(api, endpoint):
    """Every chunk of one stream carries the same `created` timestamp (a stream crossing a second shows it)."""
    _expect_one_value(_stream(api, endpoint), ("created",))


def _expect_one_value(reply, fields) -> None:
    """One clause per field: each field that varies is reported."""
    with clauses() as soft:
        for field in fields:
            values = list(dict.fromkeys(str(c.get(field)) for c in reply.stream.chunks))
            shown = list(dict.fromkeys(describe(c.get(field, ABSENT)) for c in reply.stream.chunks))
            soft.expect(len(values) == 1, f"one value of '{field}' across the stream",
                        f"{len(shown)} values, {shown[0]} then {shown[-1] if len(shown) > 1 else shown[0]}",
                        "one per chunk" if len(shown) == len(reply.stream.chunks) > 2 else None)


@check(id="chat.stream.role-first-delta", level=Level.MUST, feature="chat.stream", clause="stream.chat", modes=STREAM,
       since="0.1.0", info=(
           "A chat completion delta generated by streamed model responses.",
           "The role of the author of this message.",
       ))
def test_role_first_delta(api):
    """The first delta of each choice carries role 'assistant'."""
    reply = _stream(api, "chat")
    first: dict = {}
    for chunk in reply.stream.chunks:
        for choice in chunk.get("choices") or []:
            first.setdefault(choice.get("index"), choice.get("delta") or {})
    expect(first, "at least one choice in the stream", "no choice")
    for index, delta in sorted(first.items(), key=lambda kv: str(kv[0])):
        expect(delta.get("role") == "assistant", f"role 'assistant' in the first delta of choice {index}", delta,
               "no role in it" if "role" not in delta else None)


@check(id="chat.stream.role-once", level=Level.SHOULD, feature="chat.stream", clause="stream.chat", modes=STREAM,
       since="0.1.0", info=(
           "A chat completion delta generated by streamed model responses.",
           "The role of the author of this message.",
       ))
def test_role_once(api):
    """role appears only in the first delta of each choice, not repeated in later ones."""
    reply = _stream(api, "chat")
    for choice in aggregate_chunks("chat", reply.stream.chunks):
        expect(choice.roles_seen == 1, f"role in exactly one delta of choice {choice.index}",
               f"role in {choice.roles_seen} deltas", "repeated after the first" if choice.roles_seen > 1 else None)


@check(id="{endpoint}.stream.one-finish-reason", level=Level.MUST, feature="{endpoint}.stream",
       clause="stream.{endpoint}", modes=STREAM,
       since="0.1.0", info="The reason the model stopped generating tokens.")
def test_one_finish_reason(api, endpoint):
    """The choice of a stream gets exactly one non-null finish_reason (for n > 1, see the n checks)."""
    reply = _stream(api, endpoint)
    choices = aggregate_chunks(endpoint, reply.stream.chunks)
    expect(choices, "a choice in the stream", "no choice")
    for choice in choices:
        expect(choice.finish_reasons_seen == 1, f"exactly one finish_reason for choice {choice.index}",
               f"{choice.finish_reasons_seen} non-null finish_reasons",
               "the stream never said why it ended" if not choice.finish_reasons_seen else "repeated")


@check(id="{endpoint}.stream.sdk-parses", level=Level.MUST, feature="{endpoint}.stream", clause="stream.{endpoint}",
       modes=STREAM, paths=(CallPath.SDK,),
       since="0.1.0", info=not_in_openai(
           "the suite's own clause: the openai SDK is the client OpenAI-compatible servers are used with, and a "
           "stream it cannot read is lost to it"))
def test_sdk_parses(api, endpoint):
    """The openai SDK iterates the stream without error, and reads the same text the strict parser reads."""
    reply = _stream(api, endpoint)
    with clauses() as soft:
        soft.expect(reply.sdk_error is None, "the SDK to read the whole stream", reply.sdk_error)
        strict = aggregate_chunks(endpoint, reply.stream.chunks)
        soft.expect([c.text for c in reply.choices] == [c.text for c in strict],
                    f"the text the strict parser reads {[c.text for c in strict]}", [c.text for c in reply.choices],
                    "another text than the raw events hold")


@check(id="{endpoint}.stream.equivalent-to-regular", level=Level.MUST, feature="{endpoint}.stream",
       clause="stream.{endpoint}", modes=STREAM,
       since="0.1.0", info={
           "chat": "If set to true, the model response data will be streamed to the client as it is generated",
           "completions": "Whether to stream back partial progress.",
       })
def test_equivalent_to_regular(api, endpoint):
    """At temperature 0, the streamed deltas join to the regular response's text, with the same finish_reason."""
    require_endpoint(api, endpoint)
    body = prompt_body(endpoint, STORY_PROMPT)
    base = greedy_baseline(api, endpoint, body, max_tokens=24)
    # Drift can move one stream off the greedy path: a stream that matches is sought in a few tries.
    replies, greedy = until_greedy_related(
        api, endpoint, body, 24, lambda: send_judged(api, endpoint, {**body, "temperature": 0, "max_tokens": 24},
                                                     "stream"),
        lambda r, text: r.text == text)
    reply = replies[-1]
    if not reply.chunks:
        inconclusive("the stream held no chunks to compare")
    if reply.text != greedy:
        require_repeatable_greedy(api, endpoint, body, 24, len(replies))
    with clauses() as soft:
        soft.expect(reply.text == greedy, f"the regular text {greedy[:80]!r} from some of {len(replies)} tries",
                    describe(reply.text), how_text_differs(reply.text, greedy, "the regular text"))
        soft.expect(reply.finish_reason == base.finish_reason, f"finish_reason {base.finish_reason!r}",
                    describe(reply.finish_reason), "not the regular response's")



@check(id="{endpoint}.stream.finish-reason-null", level=Level.MUST, feature="{endpoint}.stream",
       clause="stream.{endpoint}", modes=STREAM,
       since="0.1.0", info="The reason the model stopped generating tokens.")
def test_finish_reason_null(api, endpoint):
    """Every chunk's choice that carries finish_reason carries null until its last chunk, then one of OpenAI's values.

    Trackers: Ollama (ollama/ollama#4357) and SGLang (sgl-project/sglang#3912) sent "" instead of
    null. A chunk that leaves the key out is `stream.strict-finish-reason-key`'s finding (the SDK
    defaults it to null: only a strict client breaks)."""
    reply = _stream(api, endpoint)
    seen = 0
    with clauses() as soft:
        for number, chunk in enumerate(reply.stream.chunks, 1):
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict):
                    continue
                seen += 1
                value = choice.get("finish_reason")
                soft.expect(value is None or value in FINISH_REASONS[endpoint],
                            f"finish_reason null or one of {list(FINISH_REASONS[endpoint])} in chunk {number}",
                            describe(value), key="value")
        soft.expect(seen, "a choice in the stream", "none")


@check(id="{endpoint}.stream.strict-finish-reason-key", level=Level.SHOULD, feature="{endpoint}.stream",
       clause="stream.{endpoint}", modes=STREAM,
       since="0.1.0", info="The reason the model stopped generating tokens.")
def test_strict_finish_reason_key(api, endpoint):
    """Every choice of every chunk carries the finish_reason key (null until its last chunk), as OpenAI's document requires.

    finish_reason is a required (nullable) property of a chunk's choice. The SDK's typed models
    default it, so no SDK client breaks (the chunk-schema check does not see it left out); a
    strict client, or one generated from the document, does. Trackers: vLLM left it out of all
    but the last chunk (vllm-project/vllm#19650, fixed by #19662); LiteLLM's proxy too
    (BerriAI/liteLLM-proxy#19)."""
    reply = _stream(api, endpoint)
    choices = [(number, choice) for number, chunk in enumerate(reply.stream.chunks, 1)
               for choice in chunk.get("choices") or [] if isinstance(choice, dict)]
    expect(choices, "a choice in the stream", "none")
    absent = [(number, choice) for number, choice in choices if "finish_reason" not in choice]
    number, choice = absent[0] if absent else choices[0]
    expect(not absent, "a finish_reason key (null until the end) in the choice of every chunk",
           f"no finish_reason key in the choice of chunk {number} ({len(absent)} of {len(choices)} chunks): "
           f"{describe(choice)}",
           "a strict client (or one generated from OpenAI's OpenAPI document) rejects the chunk",
           finding="strict: streamed `choices[].finish_reason` absent, where OpenAI's document requires it "
                   "(null until the last chunk)")


@check(id="{endpoint}.stream.usage-only-when-asked", level=Level.MUST, feature="{endpoint}.stream",
       clause="https://platform.openai.com/docs/api-reference/{endpoint}/create#{endpoint}-create-stream_options",
       modes=STREAM,
       since="0.1.0", info='An optional field that will only be present when you set `stream_options: '
       '{"include_usage": true}` in your request.')
def test_usage_only_when_asked(api, endpoint):
    """Without stream_options.include_usage, no chunk carries usage (the field is absent or null).

    The chunk's `usage` "will only be present when you set stream_options: {include_usage: true}";
    a usage on the last chunk double-counts in clients that sum it, and a usage chunk without a
    choice breaks the documented `chunk.choices[0]` loop. Trackers: llama-server's last chunk
    carries usage unasked (abetlen/llama-cpp-python#1640 shows it), so does the finish chunk of
    vLLM-based NIM (vercel/ai#3953); LiteLLM was asked to send it by default (BerriAI/litellm#23847).
    With include_usage, the usage chunk is judged by {endpoint}.stream_options.include-usage.
    """
    reply = _stream(api, endpoint)
    expect(reply.stream.chunks, "at least one chunk", "none")
    for number, chunk in enumerate(reply.stream.chunks, 1):
        usage = chunk.get("usage")
        expect(usage is None, f"no usage in chunk {number} of {len(reply.stream.chunks)} (include_usage was not "
                              "asked for)", f"usage {describe(usage)}")
