"""The reference's switches: what validation, generation and the HTTP side read where a deviation
cannot be made from outside, as a transform of what goes in or comes out.

`Behaviour()` (every default) is the reference.  The quirk layer (server/quirks/) sets a field
for a quirk that lives deep inside: where the stop search starts, whether sampling is forced
greedy, which roles the prompt leaves out, ...  The record is frozen: a server has one
behaviour for its whole life, shared by every request thread.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Behaviour:
    # --- validation (server/validate.py) ---------------------------------------------------
    unknown_parameters_refused: bool = True
    ranges_checked: bool = True  # minimum, maximum, maxItems of the catalogue
    json_word_required: bool = True  # json_object mode needs 'json' in the messages
    best_of_checked: bool = True  # best_of >= n, and no best_of > 1 with stream
    greedy_n_max: int | None = None  # at temperature 0, n above this is refused (None: any n)

    # --- the prompt (server/generate.py) ----------------------------------------------------
    prompt_last_message_only: bool = False
    prompt_dropped_roles: frozenset[str] = frozenset()  # messages of these roles are not rendered
    content_parts_first_only: bool = False  # of content given as parts, only the first is read
    prompt_first_token_only: bool = False  # of a completions prompt, only the first token is read
    long_prompt_truncated: bool = False  # a prompt over the context keeps its last half, answered 200

    # --- sampling ---------------------------------------------------------------------------
    greedy: str = "asked"  # "asked" | "always" | "with-seed" (a seed switches sampling off)
    zero_temperature_samples: bool = False  # temperature 0 samples as temperature 1
    drift: str = ""  # the seed under which a share of requests takes a runner-up token once (model.Drift); "": none

    # --- lengths and limits -----------------------------------------------------------------
    extra_tokens: int = 0  # generated beyond max_tokens
    context_overflow_truncated: bool = False  # prompt + max_tokens over the context: cut, not refused
    echo_zero_generates: int = 0  # tokens generated (and counted) with echo at max_tokens 0

    # --- stop sequences ---------------------------------------------------------------------
    stop_kept: bool = False  # the matched sequence stays in the output
    stop_skips_first_token: bool = False  # the search starts after the first token's text
    stop_within_token_only: bool = False  # only a sequence inside one token matches
    stop_unchecked_last_at_limit: bool = False  # the token at max_tokens is not searched
    stop_prefix_withheld_at_limit: bool = False  # at the limit, text that could begin a stop is dropped

    # --- finish reasons ---------------------------------------------------------------------
    finish_natural: str = "stop"  # the model's own end of text
    finish_stop_sequence: str = "stop"
    finish_length: str = "length"
    finish_tool_calls: str = "tool_calls"

    # --- logprobs ---------------------------------------------------------------------------
    top_logprobs_cap: int | None = None
    logprobs_zero_off: bool = False  # logprobs/top_logprobs 0 read as "no logprobs"

    # --- text, JSON and tools ---------------------------------------------------------------
    spaces: bool = True  # False: tokens lose their leading space
    json_fenced: bool = False  # JSON output wrapped in a ```json fence
    tool_arguments_follow_schema: bool = True
    tool_arguments_as_object: bool = False  # function.arguments an object, not a JSON string
    tool_calls_as_content: bool = False  # calls written as <tool_call> text, no tool parser
    functions_as_tool_calls: bool = False  # deprecated functions answered with tool_calls

    # --- HTTP (server/http.py) --------------------------------------------------------------
    keys_checked: bool = True
    models_retrieve_served: bool = True  # GET /v1/models/{id}
    unknown_models_retrieved: bool = False  # GET /v1/models/{id} answers 200 for any id

    # --- scheduling (server/http.py): how concurrent requests share the one model -----------
    one_generation_at_a_time: bool = False  # generations wait for each other; other requests do not
    stream_seconds: float = 0.0  # between two events of a stream, as a model generating them takes
    streams_interrupted: bool = False  # a running stream ends ([DONE], no finish_reason) when a request waits
    responses_delete_kept: bool = False  # DELETE /v1/responses/{id} answers deleted: true and keeps it
    silent_with: str = ""  # a streamed request carrying this parameter gets keep-alive comments, never an
    #                        event, until the client leaves; the generation then keeps the server busy


REFERENCE = Behaviour()
