"""n: how many choices to generate."""

from conformance.checks import check, expect
from conformance.oracles import STORY_PROMPT, prompt_body, require_endpoint, send_judged

N = 3


def _n_reply(api, endpoint):
    body = {**prompt_body(endpoint, STORY_PROMPT), "n": N, "temperature": 1, "max_tokens": 8}
    reply = send_judged(api, endpoint, body, "n")
    count = len(reply.choices)
    api.observe(endpoint, "n", "honoured" if count == N else "ignored" if count == 1 else "broken",
                f"{count} choices for n={N}")
    return reply


@check(id="{endpoint}.n.choices", level="MUST", feature="{endpoint}.n", parameter="n")
def test_n_choices(api, endpoint):
    """n=3 returns three choices with indices 0, 1 and 2."""
    require_endpoint(api, endpoint)
    reply = _n_reply(api, endpoint)
    indices = sorted(c.index for c in reply.choices)
    expect(indices == list(range(N)), f"choices with indices {list(range(N))}", indices,
           f"{len(indices)} of {N} choices" if len(indices) != N else "other indices")


@check(id="{endpoint}.n.finish-reason-each", level="MUST", feature="{endpoint}.n", parameter="n")
def test_n_finish_reason_each(api, endpoint):
    """With n=3, every choice carries its own finish_reason."""
    require_endpoint(api, endpoint)
    reply = _n_reply(api, endpoint)
    reasons = {c.index: c.finish_reason for c in reply.choices}
    expect(len(reasons) == N and all(r in ("stop", "length") for r in reasons.values()),
           f"{N} choices, each with finish_reason 'stop' or 'length'", reasons,
           f"{len(reasons)} of {N} choices" if len(reasons) != N else "a finish_reason that is neither")
    if api.mode == "stream":
        seen = {c.index: c.finish_reasons_seen for c in reply.choices}
        expect(all(count == 1 for count in seen.values()), "exactly one chunk with a finish_reason per choice",
               seen, "a choice with another count")
