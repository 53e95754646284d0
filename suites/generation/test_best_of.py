"""best_of: the completions endpoint generates best_of candidates and returns the n best.

Which candidate is "best" cannot be seen from outside; its documented constraints can.
"""

from conformance.harness import (
    Level, Mode, STORY_PROMPT, check, clauses, expect_refusal_naming, prompt_body, require_endpoint, send_judged,
)


@check(id="completions.best_of.not-below-n", level=Level.SHOULD, feature="completions.best_of", parameter="best_of",
       modes=(Mode.REGULAR,),
       since="0.1.0", info="When used with `n`, `best_of` controls the number of candidate completions and `n` "
       "specifies how many to return – `best_of` must be greater than `n`.")
def test_best_of_below_n(api):
    """best_of smaller than n is refused with 400 naming best_of (best_of candidates, of which n are returned)."""
    require_endpoint(api, "completions")
    base = {**prompt_body("completions", STORY_PROMPT), "max_tokens": 4}
    send_judged(api, "completions", {**base, "best_of": 2, "n": 2}, "best_of")
    reply = api.create("completions", {**base, "best_of": 1, "n": 2})
    _expect_refused_naming_best_of(reply)


@check(id="completions.best_of.not-streamed", level=Level.SHOULD, feature="completions.best_of", parameter="best_of",
       modes=(Mode.STREAM,),
       since="0.1.0", info="Results cannot be streamed.")
def test_best_of_stream(api):
    """best_of above 1 cannot be streamed: the request is refused with 400 naming best_of."""
    require_endpoint(api, "completions")
    base = {**prompt_body("completions", STORY_PROMPT), "max_tokens": 4, "best_of": 2}
    send_judged(api, "completions", base, "best_of", mode=Mode.REGULAR)
    reply = api.create("completions", base)
    _expect_refused_naming_best_of(reply)


def _expect_refused_naming_best_of(reply) -> None:
    """Both clauses of a best_of refusal, each reported when it fails: 400 in the envelope, error.param."""
    with clauses() as soft:
        expect_refusal_naming(soft, reply, "best_of")
