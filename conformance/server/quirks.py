"""Quirks: named switches that make the reference server reproduce one real-world deviation each.

`conformance serve --quirk NAME` (several at once), `ReferenceServer(quirks=...)`, and the
`--server-quirk` option of the pytest plugin turn the server into a mutant.  The self-tests run
the suite against every quirk: each check must fail on at least one, and each quirk must be
caught by a check of the feature it breaks (`features`).  `verdicts` says which parameter
verdict (endpoint.parameter -> verdict) the quirk must produce.

Variations are the opposite: legal differences from the reference's own output (CRLF line
ends, keep-alive comments, ...) that the suite must never flag.
"""

from __future__ import annotations

import dataclasses

from ..config.catalogue import load_catalogue
from .protocol import MODEL_UNSUPPORTED


@dataclasses.dataclass(frozen=True)
class Quirk:
    name: str
    description: str
    features: tuple[str, ...]  # matrix features (check feature ids) it breaks
    verdicts: tuple[tuple[str, str], ...] = ()  # ("chat.stop", "ignored"), ...
    variation: bool = False  # a legal variation, not a deviation


def _both(feature: str) -> tuple[str, ...]:
    return (f"chat.{feature}", f"completions.{feature}")


NAMED = [
    # semantics
    # It cuts the output (an effect), wrongly: the verdict must say so, never `honoured`.
    Quirk("stop-kept", "the stop sequence is left at the end of the output", _both("stop"),
          tuple((f, "deviates") for f in _both("stop"))),
    Quirk("stop-first-only", "only the first of several stop sequences is honoured", _both("stop"),
          tuple((f, "deviates") for f in _both("stop"))),
    Quirk("stop-string-ignored", "stop given as a plain string (not a list) is ignored", _both("stop")),
    # Edge cases of stop matching: each breaks one case only, so the verdict must be `deviates`
    # (stop works in its common case), never `ignored`.
    Quirk("stop-ignored-at-start", "a stop sequence that begins in the first token of the output is not matched "
                                   "there", _both("stop"), tuple((f, "deviates") for f in _both("stop"))),
    Quirk("stop-across-tokens-missed", "only a stop sequence inside one token is matched, not one spanning two",
          _both("stop"), tuple((f, "deviates") for f in _both("stop"))),
    Quirk("stop-unchecked-at-limit", "the last token max_tokens allows is not searched for stop sequences",
          _both("stop"), tuple((f, "deviates") for f in _both("stop"))),
    Quirk("stop-prefix-withheld-at-limit", "at the max_tokens limit, the end of the text that could begin a stop "
                                           "sequence is held back and never sent", _both("stop"),
          tuple((f, "deviates") for f in _both("stop"))),
    Quirk("always-greedy", "temperature and top_p are ignored: every request is decoded greedily",
          _both("temperature"), (("chat.temperature", "ignored"), ("completions.temperature", "ignored"))),
    Quirk("greedy-not-repeatable", "temperature 0 still samples, so it is not repeatable", _both("temperature")),
    Quirk("seed-drops-connection", "a request with a seed gets its connection dropped, every time",
          _both("seed"), (("chat.seed", "broken"), ("completions.seed", "broken"))),
    Quirk("seed-forces-greedy", "a seed switches sampling off (the output no longer depends on the seed)",
          _both("seed")),
    Quirk("finish-reason-tgi", "finish_reason 'eos_token' / 'stop_sequence' instead of 'stop'",
          (*_both("stop"), "examples.netmind")),
    Quirk("finish-stop-on-length", "finish_reason 'stop' when max_tokens was hit", _both("max_tokens")),
    Quirk("max-tokens-off-by-one", "one token more than max_tokens is generated", _both("max_tokens")),
    # Edge cases of n, max_tokens and echo, each apart from the common case: `deviates`, never
    # `rejected` or `ignored` (the common case still works).
    Quirk("n-refused-at-greedy", "n > 1 at temperature 0 is refused with 400 (n works when sampling)",
          _both("n"), tuple((f, "deviates") for f in _both("n"))),
    Quirk("context-overflow-truncated", "a prompt that fits but with max_tokens exceeds the context is answered "
                                        "(200), the output cut where the context ends", _both("max_tokens"),
          tuple((f, "deviates") for f in _both("max_tokens"))),
    Quirk("echo-zero-counts-token", "echo with max_tokens 0 generates one token and counts it",
          ("completions.echo",), (("completions.echo", "deviates"),)),
    Quirk("usage-miscounted", "total_tokens is not prompt_tokens + completion_tokens", _both("usage")),
    Quirk("usage-prompt-zero", "usage.prompt_tokens is always 0", ("chat.messages", "completions.prompt",
                                                                   *_both("usage"))),
    Quirk("messages-last-only", "only the last message of the conversation is read", ("chat.messages",),
          (("chat.messages", "ignored"),)),
    Quirk("system-role-rejected", "system and assistant messages are refused with 400", ("chat.messages",)),
    Quirk("developer-role-rejected", "the developer role is refused with 400", ("chat.messages",)),
    Quirk("developer-role-dropped", "developer messages are accepted and left out of the prompt", ("chat.messages",)),
    Quirk("content-parts-rejected", "content given as an array of parts is refused with 400", ("chat.messages",)),
    Quirk("completions-text-as-message", "completions choices carry 'message' instead of 'text'",
          ("completions.prompt", "completions.response")),
    Quirk("created-float", "'created' is a float timestamp", _both("response")),
    Quirk("prompt-list-first-only", "a list of prompts is answered for its first prompt only", ("completions.prompt",)),
    # tools, functions, JSON output, logprobs ranges, best_of
    Quirk("tool-calls-as-content", "tool calls come back as <tool_call> text in content (no tool parser)",
          ("chat.tools",), (("chat.tools", "ignored"),)),
    Quirk("tool-arguments-object", "function.arguments is a JSON object instead of a string", ("chat.tools",)),
    Quirk("tool-arguments-loose", "tool arguments do not follow the function's parameter schema", ("chat.tools",)),
    Quirk("tool-call-no-id", "tool calls carry no id", ("chat.tools",)),
    Quirk("tool-finish-stop", "finish_reason 'stop' instead of 'tool_calls' after tool calls", ("chat.tool_choice",)),
    Quirk("stream-tool-call-no-index", "streamed tool-call deltas carry no index", ("chat.tools",)),
    Quirk("stream-tool-call-name-late", "the function name arrives in the last tool-call delta, not the first",
          ("chat.tools",)),
    Quirk("stream-tool-call-head-repeated", "every tool-call delta repeats the call's id, type and function.name",
          ("chat.tools",)),
    Quirk("stream-tool-arguments-duplicated", "after its fragments, a call's whole arguments are streamed once more",
          ("chat.tools",)),
    Quirk("tool-role-rejected", "messages with role 'tool' are refused with 400", ("chat.tools",)),
    Quirk("tool-message-dropped", "tool results are left out of the prompt", ("chat.tools",)),
    Quirk("json-fenced", "JSON output is wrapped in a ```json code fence", ("chat.response_format",)),
    Quirk("json-schema-loose", "json_schema output is some JSON object, not one valid against the schema",
          ("chat.response_format",)),
    Quirk("json-word-unchecked", "json_object mode without 'json' in the messages is accepted",
          ("chat.response_format",)),
    Quirk("functions-as-tool-calls", "deprecated functions are answered with tool_calls, not function_call",
          ("chat.functions",)),
    Quirk("function-role-rejected", "messages with role 'function' are refused with 400", ("chat.functions",)),
    Quirk("top-logprobs-capped", "top_logprobs is capped at 5 alternatives", ("chat.top_logprobs",)),
    Quirk("logprobs-zero-falsy", "logprobs/top_logprobs 0 is taken as 'no logprobs' (a falsy test)",
          ("chat.top_logprobs", "completions.logprobs")),
    Quirk("best-of-unchecked", "best_of below n, and best_of with stream, are accepted",
          ("completions.best_of",)),
    Quirk("context-truncated", "a prompt longer than the context is silently truncated (200)", _both("errors")),
    Quirk("model-echo-wrong", "the response names another model than the one requested", _both("model")),
    # stream framing
    Quirk("stream-no-done", "the stream ends without data: [DONE]", _both("stream"),
          tuple((f, "deviates") for f in _both("stream"))),
    Quirk("stream-id-per-chunk", "every chunk of a stream has a new id", _both("stream")),
    Quirk("stream-created-per-chunk", "every chunk carries the time it was sent as 'created'", _both("stream")),
    Quirk("stream-no-role", "the first delta carries no role", ("chat.stream",)),
    Quirk("stream-role-every-delta", "role is repeated in every delta", ("chat.stream",)),
    Quirk("stream-wrong-object", "chunks say object 'chat.completion' / 'text_completion.chunk'", _both("stream")),
    Quirk("stream-error-event", "errors in stream mode are sent as an SSE 'event: error' frame with status 200",
          _both("errors")),
    Quirk("stream-usage-choices-null", "the include_usage chunk has choices: null", _both("stream_options")),
    Quirk("stream-content-type-json", "streams are sent with Content-Type application/json", _both("stream")),
    Quirk("stream-finish-reason-repeated", "an extra final chunk repeats the finish_reason", _both("stream")),
    Quirk("stream-unterminated", "the last event ([DONE]) lacks its blank line", _both("stream")),
    Quirk("stream-usage-always", "a usage chunk with no choices ends every stream, asked for or not",
          ("examples.netmind", *_both("stream"))),
    Quirk("stream-finish-reason-absent", "chunks before the last leave the finish_reason key out (instead of null)",
          _both("stream")),
    Quirk("stream-usage-unasked", "the last chunk with a choice carries usage though include_usage was not asked for",
          _both("stream")),
    Quirk("stream-malformed-event", "one event's data is not valid JSON", _both("stream")),
    Quirk("stream-drops-first-token", "the first token of the text is missing from the stream", _both("stream")),
    # errors
    Quirk("errors-flat", "errors as a flat {object: 'error', message, ...} body", _both("errors")),
    Quirk("errors-detail", "errors as {detail: ...} bodies", _both("errors")),
    Quirk("errors-422", "422 instead of 400 for invalid requests", _both("errors")),
    Quirk("errors-no-param", "error.param is always null", _both("errors")),
    Quirk("out-of-range-accepted", "out-of-range values are accepted with 200", _both("errors")),
    Quirk("malformed-json-500", "a malformed JSON body gets 500", _both("errors")),
    Quirk("unknown-parameters-accepted", "unknown parameters are silently accepted", _both("errors")),
    Quirk("unknown-model-400", "an unknown model gets 400 instead of 404", _both("errors")),
    Quirk("unknown-model-code-null", "the unknown-model error has no code", _both("errors")),
    Quirk("missing-model-defaulted", "a request without a model is served by a default model", _both("errors")),
    # authentication
    Quirk("any-key", "any key, or none, is accepted", ("auth.key",)),
    Quirk("wrong-key-403", "a wrong key gets 403 instead of 401", ("auth.key",)),
    # models
    Quirk("models-owner", "models carry 'owner' instead of 'owned_by'", ("models.list", "models.retrieve")),
    Quirk("models-no-created", "models lack 'created'", ("models.list", "models.retrieve")),
    Quirk("models-created-now", "'created' is the time of the call, not of the model", ("models.list",)),
    Quirk("models-no-retrieve", "GET /models/{id} is not served (404)", ("models.retrieve",)),
    Quirk("models-list-empty", "GET /models lists no model", ("models.list",)),
    Quirk("models-unknown-200", "GET /models/{id} answers 200 for any id", ("models.retrieve",)),
]

VARIATIONS = [
    Quirk("crlf", "event-stream lines end in CRLF", (), variation=True),
    Quirk("cr", "event-stream lines end in CR", (), variation=True),
    Quirk("keep-alive-comments", "': keep-alive' comment lines between events", (), variation=True),
    Quirk("split-reads", "every event arrives split across several network reads, mid-line", (), variation=True),
    Quirk("extra-fields", "undocumented extra fields in every response object", (), variation=True),
    Quirk("optional-fields-absent", "no system_fingerprint, no logprobs, no refusal", (), variation=True),
    Quirk("usage-details", "usage carries prompt_tokens_details and completion_tokens_details", (),
          variation=True),
    Quirk("no-spaces", "the model writes without spaces (as a random-weight model does): word-based oracles "
                       "would be wrong", (), variation=True),
    Quirk("greedy-drift", "a seeded quarter of requests take the runner-up token once (greedy: the second-best), "
                          "then decode on as asked: a GPU's nondeterminism, at temperature 0 and with a seed alike",
          (), variation=True),
]

# Per-parameter quirks: the parameter silently ignored, refused with 400, or answered with 500.
# A parameter whose effect cannot be observed only gets `reject-` (ignoring it changes nothing
# observable); parameters every request needs, and those the reference itself refuses, get none.
_PARAMETRIC_SKIP = {"model", "messages", "prompt", "stream", *MODEL_UNSUPPORTED}


def _parametric() -> list[Quirk]:
    params = load_catalogue().parameters
    quirks = []
    for name in dict.fromkeys(p.name for p in params):
        if name in _PARAMETRIC_SKIP:
            continue
        entries = [p for p in params if p.name == name]
        endpoints = [e for p in entries for e in p.endpoints]
        verdict_rows = tuple(f"{e}.{name}" for e in endpoints)
        if all(not p.observable for p in entries):
            features = tuple(f"{e}.parameters" for e in endpoints)
            quirks.append(Quirk(f"reject-{name}", f"'{name}' is refused with 400 as an unknown parameter", features,
                                tuple((f, "rejected") for f in verdict_rows)))
            continue
        quirks += [
            Quirk(f"ignore-{name}", f"'{name}' is accepted and silently ignored", verdict_rows,
                  tuple((f, "ignored") for f in verdict_rows)),
            Quirk(f"reject-{name}", f"'{name}' is refused with 400 as an unknown parameter", verdict_rows,
                  tuple((f, "rejected") for f in verdict_rows)),
            Quirk(f"crash-{name}", f"'{name}' makes the server answer 500", verdict_rows,
                  tuple((f, "broken") for f in verdict_rows)),
        ]
    return quirks


def registry() -> dict[str, Quirk]:
    return {q.name: q for q in [*NAMED, *_parametric(), *VARIATIONS]}


def check_names(names) -> frozenset[str]:
    known = registry()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown quirk(s): {', '.join(unknown)}; `conformance serve --list-quirks` lists them")
    return frozenset(names)
