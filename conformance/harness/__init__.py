"""The check author's API: everything a check in `suites/` imports, and nothing else.

    from conformance.harness import check, expect, send_judged, prompt_body, STORY_PROMPT

A check is a function decorated with `@check(...)` that takes `api` (one instance: a model, a mode,
a path) and states one clause: `expect(...)` for what OpenAI's behaviour requires, `inconclusive(...)`
when the oracle's precondition did not hold, `unsupported(...)` for a clean refusal of an optional
feature. CONTRIBUTING.md walks through adding one. HTTP, SSE, retries and evidence capture live in
`conformance.wire`, beneath this surface; a check never imports them.
"""

from ..config.catalogue import load_catalogue
from ..vocabulary import CallPath, Level, Mode, Outcome, Verdict
from ..wire.events import read_events
from ..wire.reply import Reply, aggregate_chunks, read_stream
from .calls import (FUNCTIONS, LONG_RESULT, ROOM, SHORT_RESULT, TIME, WEATHER, WEATHER_QUESTION, call_problems, expect_result_read,
                    expect_text_reply, function_call_problems, json_problems, named_tool, require_complete, tool)
from .checks import (ABSENT, FINISH_REASONS, NOT_IN_OPENAI, check, clauses, describe, docs, expect, finish_finding,
                     inconclusive, not_in_openai, unsupported)
from .concurrent import streams_side_by_side
from .oracles import (BEGINNING, OTHER_PROMPT, REPEATING_PROMPT, STORY_PROMPT, Tries, expect_envelope,
                      expect_refusal_naming, expect_reproducible, greedy_baseline, greedy_paths, how_text_differs,
                      is_legible, limit_body, MIN_OUTPUT_TOKENS, prompt_body, prompt_counts, raw_body, repetition, require_accepted, require_control,
                      require_declared_extension, require_endpoint, require_repeatable_greedy, send_judged,
                      until_agreement, until_greedy_related, until_related)
from .schema import envelope_finding, schema_finding, validate, validate_error_envelope

__all__ = [
    # declaring a check and its outcomes
    "check", "expect", "clauses", "describe", "inconclusive", "unsupported", "ABSENT", "finish_finding", "FINISH_REASONS",
    "not_in_openai", "NOT_IN_OPENAI", "docs",
    "Level", "Mode", "CallPath", "Outcome", "Verdict",
    # oracles: requests judged against a control, repetition for nondeterminism
    "send_judged", "require_endpoint", "require_accepted", "require_control", "require_declared_extension",
    "read_events", "prompt_body", "limit_body", "MIN_OUTPUT_TOKENS", "prompt_counts", "raw_body", "expect_envelope", "expect_refusal_naming", "expect_reproducible", "greedy_baseline",
    "greedy_paths",
    "how_text_differs", "is_legible", "repetition", "Tries", "until_agreement", "until_greedy_related",
    "until_related", "require_repeatable_greedy", "STORY_PROMPT", "OTHER_PROMPT", "REPEATING_PROMPT",
    "BEGINNING", "streams_side_by_side",
    # function and tool calls
    "FUNCTIONS", "SHORT_RESULT", "LONG_RESULT", "WEATHER", "TIME", "WEATHER_QUESTION", "ROOM", "tool", "named_tool", "call_problems",
    "function_call_problems", "json_problems", "expect_result_read", "expect_text_reply", "require_complete",
    # schemas, replies and the catalogue
    "validate", "validate_error_envelope", "schema_finding", "envelope_finding", "Reply", "aggregate_chunks", "read_stream", "load_catalogue",
]
