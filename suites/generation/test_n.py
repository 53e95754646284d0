"""n: how many choices to generate."""

from conformance.harness import (
    Level, Mode, STORY_PROMPT, Verdict, check, clauses, describe, expect, prompt_body, require_endpoint, send_judged,
)

N = 3
N_INFO = {  # OpenAI's words for n, and for a choice's index
    "chat": ("How many chat completion choices to generate for each input message.",
             "The index of the choice in the list of choices."),
    "completions": ("How many completions to generate for each prompt.",
                    "The index of the choice in the list of choices."),
}


def _choices_finding(count: int) -> str:
    """How a reply with `count` choices differs, in words (the report's cause)."""
    return f"{'one choice' if count == 1 else f'{count} choices'} returned where {N} were asked"


def _n_reply(api, endpoint):
    body = {**prompt_body(endpoint, STORY_PROMPT), "n": N, "temperature": 1, "max_tokens": 8}
    reply = send_judged(api, endpoint, body, "n")
    count = len(reply.choices)
    api.observe(endpoint, "n", Verdict.HONOURED if count == N else Verdict.IGNORED if count == 1 else Verdict.BROKEN,
                f"{count} choices for n={N}")
    return reply


@check(id="{endpoint}.n.choices", level=Level.MUST, feature="{endpoint}.n", parameter="n",
       since="0.1.0", info=N_INFO)
def test_n_choices(api, endpoint):
    """n=3 returns three choices with indices 0, 1 and 2."""
    require_endpoint(api, endpoint)
    reply = _n_reply(api, endpoint)
    indices = sorted(c.index for c in reply.choices)
    expect(indices == list(range(N)), f"choices with indices {list(range(N))}", indices,
           f"{len(indices)} of {N} choices" if len(indices) != N else "other indices",
           finding=_choices_finding(len(indices)) if len(indices) != N else "choices indexed otherwise than 0 to n-1")


@check(id="{endpoint}.n.finish-reason-each", level=Level.MUST, feature="{endpoint}.n", parameter="n",
       since="0.1.0", info="The reason the model stopped generating tokens.")
def test_n_finish_reason_each(api, endpoint):
    """With n=3, every choice carries its own finish_reason."""
    require_endpoint(api, endpoint)
    reply = _n_reply(api, endpoint)
    reasons = {c.index: c.finish_reason for c in reply.choices}
    with clauses() as soft:
        soft.expect(len(reasons) == N and all(r in ("stop", "length") for r in reasons.values()),
                    f"{N} choices, each with finish_reason 'stop' or 'length'", reasons,
                    f"{len(reasons)} of {N} choices" if len(reasons) != N else "a finish_reason that is neither",
                    finding=_choices_finding(len(reasons)) if len(reasons) != N else None)
        if api.mode == Mode.STREAM:
            seen = {c.index: c.finish_reasons_seen for c in reply.choices}
            soft.expect(all(count == 1 for count in seen.values()), "exactly one chunk with a finish_reason per choice",
                        seen, "a choice with another count")


@check(id="{endpoint}.n.greedy-choices", level=Level.MUST, feature="{endpoint}.n", parameter="n",
       since="0.1.0", info=N_INFO)
def test_n_greedy_choices(api, endpoint):
    """n=3 at temperature 0 is accepted and returns three choices (they may be identical)."""
    require_endpoint(api, endpoint)
    body = {**prompt_body(endpoint, STORY_PROMPT), "n": N, "temperature": 0, "max_tokens": 8}
    reply = api.create(endpoint, body)
    if not reply.ok and reply.status is not None and 400 <= reply.status < 500 and reply.error is not None:
        # Refused: n's own refusal (with sampling too) is judged as n's checks judge it; a refusal
        # of n > 1 at temperature 0 alone is this edge case's deviation, not n `rejected`.
        send_judged(api, endpoint, {**body, "temperature": 1}, "n")
        expect(False, f"{N} choices at temperature 0 (OpenAI accepts n > 1 with greedy decoding; the choices may "
                      f"be identical)", f"the server refused n={N} at temperature 0 while it accepts it at "
                                        f"temperature 1: {reply.describe()}")
    if not reply.ok:
        reply = send_judged(api, endpoint, body, "n")  # a 5xx: n `broken` when the control succeeds
    count = len(reply.choices)
    # An edge case: fewer choices here fail this check (n `deviates`); n.choices judges whether n is ignored.
    if count == N:
        api.observe(endpoint, "n", Verdict.HONOURED, f"{count} choices for n={N} at temperature 0")
    indices = sorted(c.index for c in reply.choices)
    expect(indices == list(range(N)), f"{N} choices with indices {list(range(N))} at temperature 0",
           f"{count} choices, indices {describe(indices)}",
           finding=_choices_finding(count) if count != N else "choices indexed otherwise than 0 to n-1")
