"""tools, tool_choice and parallel_tool_calls: function calling, regular and streamed, and the turn after.

Every oracle forces or forbids the call (a named function, `required`, `none`), so none depends
on the model judging when a tool is useful; arguments are judged against the function's schema.
"""

from conformance.harness import (
    ABSENT, CallPath, FUNCTIONS, Level, Mode, ROOM, TIME, Verdict, WEATHER, WEATHER_QUESTION, call_problems, check,
    clauses, describe, expect, expect_result_read, expect_text_reply, finish_finding, inconclusive, json_problems,
    named_tool,
    not_in_openai, require_complete, require_endpoint, send_judged, tool, until_related,
)

BOTH_QUESTION = [{"role": "user", "content": "What is the weather in Paris, and what time is it there?"}]
UNRELATED = [{"role": "user", "content": "Write a long story about a lighthouse keeper who finds a map."}]
BOTH_TOOLS = [tool(WEATHER), tool(TIME)]


def calls_of(reply) -> list[dict]:
    return reply.choices[0].tool_calls if reply.choices else []


def _no_calls(reply) -> str:
    """What came back where tool calls were due: the text, typed, or the reply's account."""
    if not reply.ok or not reply.choices:
        return reply.describe()
    return f"no call but content {describe(reply.text)}"


def _require_calls_unstreamed(api, body: dict, streamed) -> None:
    """A check of how calls are streamed rests on the request making a call at all: when the stream
    made none, the same request unstreamed is asked; if it makes none either, the forced call is
    what fails (chat.tools.forced-call and chat.tool_choice.required judge it), and this check is
    inconclusive, naming it, not a deviation of streaming."""
    if calls_of(streamed):
        return
    regular = send_judged(api, "chat", body, "tools", companions=("tool_choice",), mode=Mode.REGULAR,
                          path=CallPath.HTTP)
    if not calls_of(regular):
        inconclusive(f"no tool call with tool_choice 'required', streamed or not ({_no_calls(regular)}): the forced "
                     "call this check rests on did not happen (chat.tools.forced-call and chat.tool_choice.required "
                     "judge it), so how calls are streamed cannot be judged")


def _name_of(call) -> str | None:
    """A call's function.name (None for a call too malformed to have one: expect_well_formed says so)."""
    function = call.get("function") if isinstance(call, dict) else None
    return function.get("name") if isinstance(function, dict) else None


def expect_well_formed(calls: list[dict]) -> None:
    """The envelope of each call; its arguments are judged against the schema only when strict."""
    for call in calls:
        problems = call_problems(call)
        expect(not problems, "a call {id, type: 'function', function: {name, arguments}} of a given function, "
                             "its arguments a string", "; ".join(problems))
    ids = [c.get("id") for c in calls]
    expect(len(set(ids)) == len(ids), "a distinct id for every call", ids, "an id used twice")


@check(id="chat.tools.forced-call", level=Level.MUST, feature="chat.tools", parameter="tools",
       since="0.1.0", info='Specifying a particular tool via `{"type": "function", "function": {"name": '
       '"my_function"}}` forces the model to call that tool.')
def test_forced_call(api):
    """A function named in tool_choice is called: id, type 'function', its name, arguments valid against its schema."""
    require_endpoint(api, "chat")
    body = {"messages": WEATHER_QUESTION, "tools": [tool(WEATHER)], "tool_choice": named_tool("get_weather"),
            "max_tokens": ROOM}
    reply = send_judged(api, "chat", body, "tools", companions=("tool_choice",))
    calls = calls_of(reply)
    require_complete(reply)
    api.observe("chat", "tools", Verdict.HONOURED if calls else Verdict.IGNORED)
    expect(calls, "message.tool_calls with a call of get_weather", _no_calls(reply))
    with clauses() as soft:
        with soft.clause():
            expect_well_formed(calls)
        names = [_name_of(c) for c in calls]
        soft.expect(names == ["get_weather"], "exactly one call, of get_weather", names,
                    f"{len(calls)} calls" if len(calls) != 1 else "another function")
        # OpenAI ends a call forced by name with 'stop', and other calls with 'tool_calls'.
        soft.expect(reply.finish_reason in ("tool_calls", "stop"),
                    "finish_reason 'tool_calls' (or 'stop' for a forced call)", describe(reply.finish_reason))


@check(id="chat.tools.strict-arguments", level=Level.MUST, feature="chat.tools", parameter="tools",
       clause="tools.strict",
       since="0.1.0", info="If set to true, the model will follow the exact schema defined in the `parameters` field.")
def test_strict_arguments(api):
    """With strict: true, a call's arguments are a JSON object valid against the function's parameters."""
    require_endpoint(api, "chat")
    body = {"messages": WEATHER_QUESTION, "tools": [tool(WEATHER, strict=True)],
            "tool_choice": named_tool("get_weather"), "max_tokens": ROOM}
    reply = send_judged(api, "chat", body, "tools", companions=("tool_choice",))
    calls = calls_of(reply)
    require_complete(reply)
    expect(calls, "message.tool_calls with a call of get_weather", _no_calls(reply))
    for call in calls:
        problems = call_problems(call, strict=True)
        expect(not problems, "arguments valid against get_weather's parameters (strict)", "; ".join(problems))


@check(id="chat.tools.stream-deltas", level=Level.MUST, feature="chat.tools", parameter="tools",
       clause="tools.streaming", modes=(Mode.STREAM,),
       since="0.1.0", info=not_in_openai(
           "the function-calling guide's streaming section the clause links; the OpenAPI document defines the delta "
           "(ChatCompletionMessageToolCallChunk: index, id, type, function) without saying how calls are streamed"))
def test_stream_deltas(api):
    """Streamed tool calls: every delta names its call's index, the first carries id, type and name, and the
    arguments fragments join into JSON valid against the schema."""
    require_endpoint(api, "chat")
    body = {"messages": BOTH_QUESTION, "tools": BOTH_TOOLS, "tool_choice": "required", "max_tokens": ROOM}
    reply = send_judged(api, "chat", body, "tools", companions=("tool_choice",))
    parts = [part for chunk in reply.chunks for choice in chunk.get("choices") or []
             for part in (choice.get("delta") or {}).get("tool_calls") or []]
    require_complete(reply)
    if not parts:
        _require_calls_unstreamed(api, body, reply)
    api.observe("chat", "tools", Verdict.HONOURED if parts else Verdict.IGNORED)
    expect(parts, "delta.tool_calls fragments in the stream", _no_calls(reply))
    first_seen: dict = {}
    with clauses() as soft:
        for part in parts:
            soft.expect(isinstance(part.get("index"), int), "an integer index on every tool-call delta", part,
                        f"its index {describe(part.get('index', ABSENT))}", key="index")
            if part.get("index") not in first_seen:
                first_seen[part.get("index")] = part
        for index, first in first_seen.items():
            function = first.get("function") or {}
            soft.expect(first.get("id") and first.get("type") == "function" and function.get("name"),
                        f"the first delta of call {index} carrying id, type 'function' and function.name", first,
                        "without " + ", ".join(k for k, v in (("id", first.get("id")),
                                                             ("type", first.get("type") == "function"),
                                                             ("function.name", function.get("name"))) if not v),
                        key="head")
        if all(isinstance(index, int) for index in first_seen):  # indices that are not integers: judged above
            soft.expect(sorted(first_seen) == list(range(len(first_seen))),
                        "call indices 0, 1, ... in order of appearance", sorted(first_seen), "a gap or another start")
        with soft.clause():
            expect_well_formed(calls_of(reply))
        soft.expect(reply.finish_reason == "tool_calls", "finish_reason 'tool_calls'", describe(reply.finish_reason),
                    "though the reply made tool calls",
                    finding=finish_finding(reply.finish_reason, "the reply made tool calls"))


def _call_parts(reply) -> list[dict]:
    """Every delta.tool_calls entry of the stream, in order."""
    return [part for chunk in reply.chunks for choice in chunk.get("choices") or []
            for part in (choice.get("delta") or {}).get("tool_calls") or [] if isinstance(part, dict)]


@check(id="chat.tools.stream-head-once", level=Level.MUST, feature="chat.tools", parameter="tools",
       clause="tools.streaming", modes=(Mode.STREAM,),
       since="0.1.0", info=not_in_openai(
           "how the openai SDK (and LangChain, LlamaIndex) accumulate tool-call deltas, by concatenating their "
           "strings; the OpenAPI document defines the delta without saying how calls are streamed"))
def test_stream_head_once(api):
    """Streamed tool calls: a call's id and function.name come in one delta, not again in later ones.

    The openai SDK (and LangChain, LlamaIndex) accumulate deltas by concatenating their strings,
    so an id or a name repeated in every delta becomes 'call_1call_1...' or
    'get_weatherget_weather'; only `index` and `type` are replaced. Trackers: LiteLLM sends the id
    in every chunk (BerriAI/litellm#20480) and passed Fireworks' repeated ids on
    (BerriAI/litellm#8990); NVIDIA NIM repeats the name (NousResearch/hermes-agent#11984). That
    the first delta carries them is chat.tools.stream-deltas's part.
    """
    require_endpoint(api, "chat")
    body = {"messages": BOTH_QUESTION, "tools": BOTH_TOOLS, "tool_choice": "required", "max_tokens": ROOM}
    reply = send_judged(api, "chat", body, "tools", companions=("tool_choice",))
    parts = _call_parts(reply)
    require_complete(reply)
    if not parts:
        _require_calls_unstreamed(api, body, reply)
    expect(parts, "delta.tool_calls fragments in the stream", reply.text or reply.describe())
    if not all(isinstance(part.get("index"), int) for part in parts):
        inconclusive("tool-call deltas without an index cannot be told apart (judged by chat.tools.stream-deltas)")
    with clauses() as soft:  # two clauses per call, the id and the name: each failed one is reported
        for index in dict.fromkeys(part["index"] for part in parts):
            group = [part for part in parts if part["index"] == index]
            ids = [part["id"] for part in group if isinstance(part.get("id"), str) and part["id"]]
            names = [f["name"] for f in (part.get("function") or {} for part in group)
                     if isinstance(f, dict) and isinstance(f.get("name"), str) and f["name"]]
            soft.expect(len(ids) <= 1, f"the id of call {index} in one of its {len(group)} deltas (the SDK joins every "
                                       "delta's id)", f"{len(ids)} deltas carrying it, joined {''.join(ids)!r}",
                        key="id")
            soft.expect("".join(names) in FUNCTIONS, f"the function.name fragments of call {index} joining to one "
                                                     f"function's name, one of {sorted(FUNCTIONS)}",
                        f"{len(names)} deltas carrying a name, joined {''.join(names)!r}", key="name")


@check(id="chat.tools.stream-arguments-json", level=Level.MUST, feature="chat.tools", parameter="tools",
       clause="tools.streaming", modes=(Mode.STREAM,),
       since="0.1.0", info="The arguments to call the function with, as generated by the model in JSON format.")
def test_stream_arguments_json(api):
    """At temperature 0, a forced call's streamed arguments fragments join into the regular response's arguments.

    Fragments may come one or many; what is judged is their concatenation, against the same
    request unstreamed (strict is not asked for: chat.tools.strict-arguments judges the schema).
    Drift can change a value, so a stream that joins into other valid JSON is inconclusive; one
    whose fragments join into no JSON, where the regular response's arguments are JSON, fails.
    Trackers: vLLM's xlam parser streams the whole arguments again at the end
    (vllm-project/vllm#51697), other parsers drop or garble fragments that the regular response
    has (vllm-project/vllm#21046, #15274, #10395) or stream none (arguments null,
    vllm-project/vllm#9693); LiteLLM appends a summary chunk with the arguments again
    (BerriAI/litellm#20480).
    """
    require_endpoint(api, "chat")
    body = {"messages": WEATHER_QUESTION, "tools": [tool(WEATHER)], "tool_choice": named_tool("get_weather"),
            "temperature": 0, "max_tokens": ROOM}
    # A refusal of tools here is judged as such (unsupported where tools are not offered).
    regular = send_judged(api, "chat", body, "tools", companions=("tool_choice",), mode=Mode.REGULAR, path=CallPath.HTTP)
    control = calls_of(regular)
    if len(control) != 1 or json_problems((control[0].get("function") or {}).get("arguments")):
        inconclusive(f"the regular response has no call of get_weather with JSON arguments to compare with "
                     f"({control or regular.text!r})")
    expected = control[0]["function"]["arguments"]

    def arguments(reply) -> list:
        return [(c.get("function") or {}).get("arguments") for c in calls_of(reply)]

    def send():
        reply = send_judged(api, "chat", body, "tools", companions=("tool_choice",))
        require_complete(reply)
        expect(calls_of(reply), "delta.tool_calls with a call of get_weather", reply.text or reply.describe())
        return reply

    tries = until_related(send, lambda reply: arguments(reply) == [expected])
    if arguments(tries[-1]) == [expected]:
        return
    joined = [args for reply in tries for args in arguments(reply)]
    if any(not json_problems(args) for args in joined):
        inconclusive(f"the streamed arguments join into JSON other than the regular response's {expected!r} in "
                     f"{len(tries)} tries (drift can change a value): {joined[:3]}")
    expect(False, f"the arguments fragments joining into the regular response's JSON arguments {expected!r} "
                  f"(some of {len(tries)} tries)", "; ".join(json_problems(joined[-1])) if joined else joined)


@check(id="chat.tool_choice.none", level=Level.MUST, feature="chat.tool_choice", parameter="tool_choice",
       since="0.1.0", info="`none` means the model will not call any tool and instead generates a message.")
def test_tool_choice_none(api):
    """tool_choice 'none' gets a text reply without tool calls, even when the question is one a tool answers."""
    require_endpoint(api, "chat")
    body = {"messages": BOTH_QUESTION, "tools": BOTH_TOOLS, "tool_choice": "none", "max_tokens": 8}
    reply = send_judged(api, "chat", body, "tool_choice")
    calls = calls_of(reply)
    api.observe("chat", "tool_choice", Verdict.IGNORED if calls else Verdict.HONOURED)
    with clauses() as soft:
        soft.expect(not calls, "no tool calls", [c.get("function", {}).get("name") for c in calls],
                    "calls of these functions, though tool_choice was 'none'")
        with soft.clause():
            expect_text_reply(reply)


@check(id="chat.tool_choice.required", level=Level.MUST, feature="chat.tool_choice", parameter="tool_choice",
       since="0.1.0", info="`required` means the model must call one or more tools.")
def test_tool_choice_required(api):
    """tool_choice 'required' gets at least one tool call and finish_reason 'tool_calls', even for a request
    no tool answers."""
    require_endpoint(api, "chat")
    body = {"messages": UNRELATED, "tools": BOTH_TOOLS, "tool_choice": "required", "max_tokens": ROOM}
    reply = send_judged(api, "chat", body, "tool_choice")
    calls = calls_of(reply)
    require_complete(reply)
    api.observe("chat", "tool_choice", Verdict.HONOURED if calls else Verdict.IGNORED)
    expect(calls, "at least one tool call", _no_calls(reply))
    with clauses() as soft:
        with soft.clause():
            expect_well_formed(calls)
        soft.expect(reply.finish_reason == "tool_calls", "finish_reason 'tool_calls'", describe(reply.finish_reason),
                    "though the reply made tool calls",
                    finding=finish_finding(reply.finish_reason, "the reply made tool calls"))


@check(id="chat.tool_choice.named", level=Level.MUST, feature="chat.tool_choice", parameter="tool_choice",
       since="0.1.0", info='Specifying a particular tool via `{"type": "function", "function": {"name": '
       '"my_function"}}` forces the model to call that tool.')
def test_tool_choice_named(api):
    """A function named in tool_choice is the one called, even when the question asks for another."""
    require_endpoint(api, "chat")
    body = {"messages": WEATHER_QUESTION, "tools": BOTH_TOOLS, "tool_choice": named_tool("get_time"),
            "max_tokens": ROOM}
    reply = send_judged(api, "chat", body, "tool_choice")
    names = [c.get("function", {}).get("name") for c in calls_of(reply)]
    require_complete(reply)
    api.observe("chat", "tool_choice", Verdict.HONOURED if names and set(names) == {"get_time"} else Verdict.IGNORED)
    with clauses() as soft:
        soft.expect(names and set(names) == {"get_time"}, "calls of get_time only", names or _no_calls(reply),
                    "calls of other functions" if names else None)
        with soft.clause():
            expect_well_formed(calls_of(reply))


@check(id="chat.parallel_tool_calls.at-most-one", level=Level.MUST, feature="chat.parallel_tool_calls",
       parameter="parallel_tool_calls",
       since="0.1.0", info="Whether to enable [parallel function "
       "calling](/docs/guides/function-calling#configuring-parallel-function-calling) during tool use.")
def test_parallel_tool_calls_false(api):
    """parallel_tool_calls false gets at most one tool call, where the same request without it may get several."""
    require_endpoint(api, "chat")
    body = {"messages": BOTH_QUESTION, "tools": BOTH_TOOLS, "tool_choice": "required", "max_tokens": ROOM}
    single = send_judged(api, "chat", {**body, "parallel_tool_calls": False}, "parallel_tool_calls")
    count = len(calls_of(single))
    control = None
    if count == 0:  # the forced call this rests on: made without parallel_tool_calls?
        control = send_judged(api, "chat", body, None)
        if not calls_of(control):
            inconclusive(f"no tool call with tool_choice 'required', with parallel_tool_calls false or without it "
                         f"({_no_calls(control)}): the forced call this check rests on did not happen "
                         "(chat.tool_choice.required judges it), so parallel_tool_calls cannot be judged")
    if count <= 1:  # several calls already say it is ignored, cut or not
        require_complete(single)
    if count > 1:
        api.observe("chat", "parallel_tool_calls", Verdict.IGNORED)
    expect(count <= 1, "at most one tool call", [c.get("function", {}).get("name") for c in calls_of(single)],
           f"{count} calls in one reply")
    control = control or send_judged(api, "chat", body, None)
    if len(calls_of(control)) > 1:
        api.observe("chat", "parallel_tool_calls", Verdict.HONOURED)
    else:
        api.observe("chat", "parallel_tool_calls", Verdict.ACCEPTED,
                    "the request without it made one call too, so the effect was not shown")
    expect(count == 1, "exactly one call ('required')", f"{count} calls")


def _conversation(result: str) -> list[dict]:
    call = {"id": "call_conformance_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}
    return [*WEATHER_QUESTION, {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_conformance_1", "content": result}]


@check(id="chat.tools.follow-up", level=Level.MUST, feature="chat.tools", parameter="tools", clause="tools.follow-up",
       modes=(Mode.REGULAR,),
       since="0.1.0", info="Tool call that this message is responding to.")
def test_follow_up(api):
    """After an assistant message with tool_calls, a `tool` message with the result gets an assistant reply that
    reads it."""
    require_endpoint(api, "chat")
    expect_result_read(api, _conversation, {"tools": [tool(WEATHER)]}, "tools")
