"""logit_bias: +100 makes a token the only choice."""

from conformance.harness import (
    Level, OTHER_PROMPT, STORY_PROMPT, Verdict, check, describe, expect, greedy_baseline, inconclusive, prompt_body,
    require_endpoint, send_judged,
)

# A token id that exists in every tokenizer we know of (byte-level BPE vocabularies begin with
# the single bytes).  Which string it stands for does not matter to the oracle.
FORCED_TOKEN = "15"


@check(id="{endpoint}.logit_bias.forces-token", level=Level.MUST, feature="{endpoint}.logit_bias",
       parameter="logit_bias",
       since="0.1.0", info="values like -100 or 100 should result in a ban or exclusive selection of the relevant "
       "token.")
def test_logit_bias_forces_token(api, endpoint):
    """logit_bias {id: 100} forces that token: two different prompts then give the same output."""
    require_endpoint(api, endpoint)
    bases = [greedy_baseline(api, endpoint, prompt_body(endpoint, p), max_tokens=6) for p in (STORY_PROMPT, OTHER_PROMPT)]
    if bases[0].text == bases[1].text:
        inconclusive("two different prompts already give the same greedy output")
    replies = [
        send_judged(api, endpoint, {**prompt_body(endpoint, p), "temperature": 0, "max_tokens": 6,
                                    "logit_bias": {FORCED_TOKEN: 100}}, "logit_bias")
        for p in (STORY_PROMPT, OTHER_PROMPT)
    ]
    unchanged = all(r.text == b.text for r, b in zip(replies, bases))
    api.observe(endpoint, "logit_bias", Verdict.IGNORED if unchanged else Verdict.HONOURED)
    expect(replies[0].text == replies[1].text and replies[0].text,
           f"the same forced output for both prompts, {replies[0].text!r}", describe(replies[1].text),
           "the unbiased greedy output of each prompt" if unchanged
           else "another output for the second prompt" if replies[0].text else "an empty output")
