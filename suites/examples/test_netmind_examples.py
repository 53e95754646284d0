"""The seed provider's own documented examples (Netmind, "Usage Examples"), run as written.

The Python examples go through the SDK; the cURL examples go through raw HTTP, with the cURL
prompt exactly as documented (it differs from the Python one by a space after each newline).
"""

from conformance.harness import (
    CallPath, Level, Mode, check, clauses, describe, finish_finding, require_accepted, require_endpoint,
    schema_finding, validate,
)

CHAT_MESSAGES = [
    {"role": "system", "content": "Act like you are a helpful assistant."},
    {"role": "user", "content": "Hi there!"},
]
PYTHON_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant.\nYou are a cooking assistant.\n"
    "Be edgy in your cooking ideas.\nUSER: How do I make pasta?\nASSISTANT: First, boil water. Then, add pasta "
    "to the boiling water. Cook for 8-10 minutes or until al dente. Drain and serve!\nUSER: How do I make it "
    "better?\nASSISTANT:"
)
CURL_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant.\n You are a cooking assistant.\n "
    "Be edgy in your cooking ideas.\n USER: How do I make pasta?\n ASSISTANT: First, boil water. Then, add pasta "
    "to the boiling water. Cook for 8-10 minutes or until al dente. Drain and serve!\n USER: How do I make it "
    "better?\n ASSISTANT:"
)
MAX_TOKENS = 512


def _judge(api, endpoint, reply):
    require_accepted(api, reply, endpoint, None)
    with clauses() as soft:
        if api.mode == Mode.STREAM:
            kind = "chat.completion.chunk" if endpoint == "chat" else "text_completion.chunk"
            # The documented loop reads chunk.choices[0] of every chunk.
            for number, chunk in enumerate(reply.chunks, 1):
                soft.expect(chunk.get("choices"), f"chunk {number} to have a choice for `chunk.choices[0]`", chunk,
                            key="choices")
                problems = validate(kind, chunk)
                soft.expect(not problems, f"chunk {number} to be a valid {kind}", "; ".join(problems), key="valid",
                            finding=schema_finding(problems))
        else:
            kind = "chat.completion" if endpoint == "chat" else "text_completion"
            problems = validate(kind, reply.body)
            soft.expect(not problems, f"a valid {kind}", "; ".join(problems), finding=schema_finding(problems))
        soft.expect(isinstance(reply.text, str), "text in choices[0]", describe(reply.text))
        soft.expect(reply.finish_reason in ("stop", "length"), "finish_reason 'stop' or 'length'",
                    describe(reply.finish_reason), finding=finish_finding(reply.finish_reason, "generation ended"))


@check(id="examples.netmind.chat", level=Level.MUST, feature="examples.netmind", clause="object.chat",
       endpoints=("chat",),
       since="0.1.0", info="Represents a chat completion response returned by model, based on the provided input.")
def test_documented_chat_example(api):
    """Netmind's documented chat example (system + 'Hi there!', max_tokens 512) gets a valid chat completion."""
    require_endpoint(api, "chat")
    reply = api.create("chat", {"messages": CHAT_MESSAGES, "max_tokens": MAX_TOKENS})
    _judge(api, "chat", reply)


@check(id="examples.netmind.completion", level=Level.MUST, feature="examples.netmind", clause="object.completions",
       endpoints=("completions",),
       since="0.1.0", info="Represents a completion response from the API.")
def test_documented_completion_example(api):
    """Netmind's documented completion example (the cooking-assistant prompt, max_tokens 512) gets a valid completion."""
    require_endpoint(api, "completions")
    prompt = PYTHON_PROMPT if api.path == CallPath.SDK else CURL_PROMPT
    reply = api.create("completions", {"prompt": prompt, "max_tokens": MAX_TOKENS})
    _judge(api, "completions", reply)
