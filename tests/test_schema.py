import copy

import pytest

from conformance.harness.schema import validate, validate_error_envelope

CHAT = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}
COMPLETION_CHUNK = {"id": "c", "object": "text_completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "text": "x", "logprobs": None, "finish_reason": None}]}


def _with(data, path, value):
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


def test_valid_objects_pass():
    assert validate("chat.completion", CHAT) == []
    assert validate("chat.completion.chunk", CHUNK) == []
    assert validate("text_completion.chunk", COMPLETION_CHUNK) == []


def test_extra_fields_and_absent_optional_fields_are_legal():
    data = _with(CHAT, ["service_tier_extra"], "x")
    data = _with(data, ["usage", "prompt_tokens_details"], {"cached_tokens": 0})
    assert validate("chat.completion", data) == []


@pytest.mark.parametrize("path, value, fragment", [
    (["choices", 0, "finish_reason"], "eos_token", "finish_reason"),
    (["object"], "chat.completions", "object"),
    (["created"], 1.5, "created"),
    (["created"], "1700000000", "created"),
    (["id"], KeyError, "id"),
    (["choices", 0, "message", "role"], "bot", "role"),
    (["usage", "total_tokens"], None, "total_tokens"),
])
def test_deviations_are_reported_with_their_location(path, value, fragment):
    problems = validate("chat.completion", _with(CHAT, path, value))
    assert problems and fragment in problems[0]


def test_streamed_completion_chunks_may_have_null_finish_reason_but_not_unknown_values():
    assert validate("text_completion.chunk", COMPLETION_CHUNK) == []
    bad = _with(COMPLETION_CHUNK, ["choices", 0, "finish_reason"], "eos")
    assert validate("text_completion.chunk", bad)


def test_error_envelope():
    good = {"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": None}}
    assert validate_error_envelope(good) == []
    assert validate_error_envelope({"detail": "bad"})
    assert validate_error_envelope({"object": "error", "message": "bad"})
    assert validate_error_envelope({"error": {"message": "m"}})
    assert validate_error_envelope("not json")


def test_error_envelope_problems_say_what_came_back():
    # an `error` key holding a string is there, with the wrong type: not "no error object"
    assert validate_error_envelope({"error": "Bad request"}) == [
        "the top-level 'error' is a string 'Bad request', not an object"]
    assert validate_error_envelope({"detail": "bad"}) == ["no top-level 'error' in the body (object {\"detail\": \"bad\"})"]
    assert validate_error_envelope({"error": {"message": "m", "type": "t", "param": None, "code": 400}}) == [
        "error.code is a number 400, not a string or null"]
    assert validate_error_envelope({"error": {"message": "m", "type": "t", "code": None}}) == ["error.param is absent"]
    assert validate_error_envelope(None, b"Internal Server Error") == [
        "a body that is not JSON: string 'Internal Server Error'"]


def test_schema_problems_name_the_value_and_the_rule():
    (problem,) = validate("chat.completion", _with(CHAT, ["choices", 0, "finish_reason"], "eos_token"))
    assert problem.startswith("choices.0.finish_reason is string 'eos_token': Input should be 'stop'")
    assert validate("chat.completion", _with(CHAT, ["id"], KeyError)) == ["id is absent, and it is required"]


def test_values_in_messages_are_typed():
    from conformance.harness.checks import ABSENT, describe

    assert describe(" ask") == "string ' ask'"  # the leading space shows
    assert describe(None) == "null" and describe(ABSENT) == "absent" and describe(3) == "number 3"
    assert describe({"error": "x"}) == 'object {"error": "x"}'
    assert describe({f"key{i}": "v" * 20 for i in range(5)}).startswith("object with keys ['key0', 'key1'")
    assert describe([]) == "array []" and describe(list(range(50))).startswith("array of 50 [0, 1,")
    assert describe("Bad request", article=True) == "a string 'Bad request'"
