"""The deprecated `functions` and `function_call`: still documented, still sent by older applications."""

from conformance.harness import (
    Level, Mode, ROOM, Verdict, WEATHER, WEATHER_QUESTION, check, clauses, describe, expect, expect_result_read,
    expect_text_reply, function_call_problems, not_in_openai, require_complete, require_endpoint, send_judged,
)


@check(id="chat.functions.forced-call", level=Level.MUST, feature="chat.functions", parameter="functions",
       since="0.1.0", info='Specifying a particular function via `{"name": "my_function"}` forces the model to call '
       'that function.')
def test_forced_function_call(api):
    """A function named in function_call is called: message.function_call with its name and its arguments as
    a string."""
    require_endpoint(api, "chat")
    body = {"messages": WEATHER_QUESTION, "functions": [WEATHER], "function_call": {"name": "get_weather"},
            "max_tokens": ROOM}
    reply = send_judged(api, "chat", body, "functions", companions=("function_call",))
    call = reply.choices[0].function_call if reply.choices else None
    require_complete(reply)
    api.observe("chat", "functions", Verdict.HONOURED if call else Verdict.IGNORED)
    expect(call, "message.function_call",
           {"tool_calls": reply.choices[0].tool_calls, "content": reply.text} if reply.choices else reply.describe(),
           ("tool_calls instead" if reply.choices[0].tool_calls else "no call") if reply.choices else None)
    with clauses() as soft:
        problems = function_call_problems(call)
        soft.expect(not problems, "a call of get_weather, its arguments a string", "; ".join(problems))
        soft.expect(reply.finish_reason in ("function_call", "stop"),
                    "finish_reason 'function_call' (or 'stop' when forced)", describe(reply.finish_reason))


@check(id="chat.function_call.none", level=Level.MUST, feature="chat.function_call", parameter="function_call",
       since="0.1.0", info="`none` means the model will not call a function and instead generates a message.")
def test_function_call_none(api):
    """function_call 'none' gets a text reply without a function call."""
    require_endpoint(api, "chat")
    body = {"messages": WEATHER_QUESTION, "functions": [WEATHER], "function_call": "none", "max_tokens": 8}
    reply = send_judged(api, "chat", body, "function_call")
    call = reply.choices[0].function_call if reply.choices else None
    api.observe("chat", "function_call", Verdict.IGNORED if call else Verdict.HONOURED)
    with clauses() as soft:
        soft.expect(call is None, "no function_call", call, "though function_call was 'none'")
        with soft.clause():
            expect_text_reply(reply)


def _conversation(result: str) -> list[dict]:
    call = {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}
    return [*WEATHER_QUESTION, {"role": "assistant", "content": None, "function_call": call},
            {"role": "function", "name": "get_weather", "content": result}]


@check(id="chat.functions.follow-up", level=Level.MUST, feature="chat.functions", parameter="functions",
       clause="tools.follow-up", modes=(Mode.REGULAR,),
       since="0.1.0", info=not_in_openai(
           "the function-calling guide the clause links (handling function calls); the OpenAPI document only defines "
           "the `function` message (role, name, content)"))
def test_function_follow_up(api):
    """After an assistant function_call, a `function` message with the result gets an assistant reply that reads it."""
    require_endpoint(api, "chat")
    expect_result_read(api, _conversation, {"functions": [WEATHER]}, "functions")
