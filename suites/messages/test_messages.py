"""messages (chat) and prompt (completions): the input is read."""

from conformance.harness import (
    Level, Mode, STORY_PROMPT, Verdict, check, clauses, describe, expect, inconclusive, prompt_counts,
    require_endpoint, send_judged,
)

PROMPT_INFO = ("The prompt(s) to generate completions for, encoded as a string, array of strings, array of tokens, "
               "or array of token arrays.")

CONVERSATION = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "Name another one."},
]


@check(id="chat.messages.roles-accepted", level=Level.MUST, feature="chat.messages", parameter="messages",
       since="0.1.0", info="A list of messages comprising the conversation so far.")
def test_roles_accepted(api):
    """A conversation of system, user, assistant and user messages is answered by one assistant message."""
    require_endpoint(api, "chat")
    reply = send_judged(api, "chat", {"messages": CONVERSATION, "max_tokens": 8}, "messages")
    with clauses() as soft:
        soft.expect(len(reply.choices) == 1, "one choice", len(reply.choices))
        if reply.choices:
            soft.expect(reply.choices[0].role == "assistant", "the role 'assistant'",
                        f"role {describe(reply.choices[0].role)}")


@check(id="chat.messages.developer-role", level=Level.MUST, feature="chat.messages", parameter="messages",
       since="0.1.0", info="With o1 models and newer, `developer` messages replace the previous `system` messages.")
def test_developer_role(api):
    """A `developer` message (the newer name for `system`) is accepted like a system message."""
    require_endpoint(api, "chat")
    messages = [{"role": "developer", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}]
    reply = send_judged(api, "chat", {"messages": messages, "max_tokens": 4}, "messages")
    expect(reply.choices and reply.choices[0].role == "assistant", "an assistant message",
           f"role {describe(reply.choices[0].role)}" if reply.choices else "no choice")


@check(id="chat.messages.developer-read", level=Level.MUST, feature="chat.messages", parameter="messages",
       modes=(Mode.REGULAR,),
       since="0.1.0", info="Developer-provided instructions that the model should follow, regardless of messages "
       "sent by the user.")
def test_developer_read(api):
    """A `developer` message is read, not only accepted: a longer one gives more prompt tokens.

    A chat template that knows no `developer` role renders nothing for it, and the request still
    succeeds. Trackers: SGLang drops it silently (sgl-project/sglang#40082), so does Ollama for
    models on a Modelfile template (ollama/ollama#18305); llama.cpp maps it to `system`
    (ggml-org/llama.cpp#20215). Whether it is refused is chat.messages.developer-role's part.
    """
    require_endpoint(api, "chat")

    def ask(instructions):
        messages = [{"role": "developer", "content": instructions}, {"role": "user", "content": "Name a colour."}]
        return send_judged(api, "chat", {"messages": messages, "max_tokens": 2}, "messages")

    short, long = ask("Be terse."), ask("Be terse. Answer with one word, in lower case, without punctuation, "
                                        "and never explain the answer.")
    counts = prompt_counts([short, long], "the developer message")
    expect(counts[1] > counts[0], "more prompt tokens with a longer developer message (it is read)",
           f"prompt_tokens {counts[0]} and then {counts[1]}")


@check(id="chat.messages.content-parts", level=Level.MUST, feature="chat.messages", parameter="messages",
       modes=(Mode.REGULAR,),
       since="0.1.0", info=(
           "An array of content parts with a defined type.",
           "An optional name for the participant.",
       ))
def test_content_parts(api):
    """Content given as an array of text parts (and a `name` on the message) is read: every part counts."""
    require_endpoint(api, "chat")

    def ask(*texts):
        message = {"role": "user", "name": "reader", "content": [{"type": "text", "text": t} for t in texts]}
        return send_judged(api, "chat", {"messages": [message], "max_tokens": 2}, "messages")

    one, two = ask("Tell me a story"), ask("Tell me a story", " about a lighthouse keeper who finds a map.")
    counts = prompt_counts([one, two], "the second part")
    expect(counts[1] > counts[0], "more prompt tokens with a second text part", counts,
           "so the second part was not read")


@check(id="chat.messages.read", level=Level.MUST, feature="chat.messages", parameter="messages", modes=(Mode.REGULAR,),
       since="0.1.0", info="A list of messages comprising the conversation so far.")
def test_messages_read(api):
    """Adding messages to the conversation increases usage.prompt_tokens."""
    require_endpoint(api, "chat")
    short = send_judged(api, "chat", {"messages": CONVERSATION[-1:], "max_tokens": 2}, "messages")
    long = send_judged(api, "chat", {"messages": CONVERSATION, "max_tokens": 2}, "messages")
    counts = prompt_counts([short, long], "the earlier messages")
    grew = counts[1] > counts[0]
    api.observe("chat", "messages", Verdict.HONOURED if grew else Verdict.IGNORED)
    expect(grew, f"more prompt tokens than the one-message request ({counts[0]})", counts[1],
           "so the earlier messages were not read")


@check(id="completions.prompt.read", level=Level.MUST, feature="completions.prompt", parameter="prompt",
       modes=(Mode.REGULAR,),
       since="0.1.0", info=PROMPT_INFO)
def test_prompt_read(api):
    """A longer prompt gives a larger usage.prompt_tokens."""
    require_endpoint(api, "completions")
    short = send_judged(api, "completions", {"prompt": "Once", "max_tokens": 2}, "prompt")
    long = send_judged(api, "completions", {"prompt": STORY_PROMPT * 3, "max_tokens": 2}, "prompt")
    counts = prompt_counts([short, long], "the longer prompt")
    grew = counts[1] > counts[0]
    api.observe("completions", "prompt", Verdict.HONOURED if grew else Verdict.IGNORED)
    expect(grew, f"more prompt tokens than for a one-word prompt ({counts[0]})", counts[1],
           "so the longer prompt was not read")


@check(id="completions.prompt.text-returned", level=Level.MUST, feature="completions.prompt", parameter="prompt",
       since="0.1.0", info="The list of completion choices the model generated for the input prompt.")
def test_prompt_text(api):
    """Every completions choice carries its generated text in `text` (a string)."""
    require_endpoint(api, "completions")
    reply = send_judged(api, "completions", {"prompt": STORY_PROMPT, "max_tokens": 8}, "prompt")
    if api.mode == Mode.REGULAR:
        texts = [c.get("text") for c in reply.body.get("choices", [])]
    else:
        texts = [c.get("text") for chunk in reply.chunks for c in chunk.get("choices") or []]
    expect(texts and all(isinstance(t, str) for t in texts), "a string 'text' in every choice", texts[:5],
           "a choice without its text" if texts else "no choice")
