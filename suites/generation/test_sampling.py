"""temperature and top_p: what sampling does to the distribution."""

from conformance.harness import (
    BEGINNING, CallPath, Level, Mode, STORY_PROMPT, Tries, Verdict, check, describe, expect, expect_reproducible,
    greedy_baseline, inconclusive, prompt_body, require_endpoint, require_repeatable_greedy, send_judged,
    until_agreement, until_greedy_related,
)

SAMPLES = 4


@check(id="{endpoint}.temperature.zero-repeatable", level=Level.SHOULD, feature="{endpoint}.temperature",
       parameter="temperature",
       since="0.1.0", info="Higher values like 0.8 will make the output more random, while lower values like 0.2 "
       "will make it more focused and deterministic.")
def test_temperature_zero_repeatable(api, endpoint):
    """temperature=0 repeated gives the same text: some try reproduces another (greedy decoding is repeatable)."""
    require_endpoint(api, endpoint)
    body = {**prompt_body(endpoint, STORY_PROMPT), "temperature": 0, "max_tokens": 24}
    tries = until_agreement(lambda: send_judged(api, endpoint, body, "temperature"))
    expect_reproducible(api, endpoint, "temperature", tries, "temperature 0")


@check(id="{endpoint}.temperature.high-varies", level=Level.MUST, feature="{endpoint}.temperature",
       parameter="temperature",
       since="0.1.0", info="Higher values like 0.8 will make the output more random, while lower values like 0.2 "
       "will make it more focused and deterministic.")
def test_temperature_high_varies(api, endpoint):
    """temperature=2 over several samples does not give one constant text."""
    require_endpoint(api, endpoint)
    base = greedy_baseline(api, endpoint, prompt_body(endpoint, STORY_PROMPT), max_tokens=12)
    body = {**prompt_body(endpoint, STORY_PROMPT), "temperature": 2, "max_tokens": 12}
    texts = [send_judged(api, endpoint, body, "temperature").text for _ in range(SAMPLES)]
    varied = len(set(texts)) > 1
    api.observe(endpoint, "temperature", Verdict.HONOURED if varied or texts[0] != base.text else Verdict.IGNORED)
    expect(varied, f"{SAMPLES} samples at temperature 2 not all equal", f"{SAMPLES} times {describe(texts[0])}",
           "the same as the greedy output: temperature ignored" if texts[0] == base.text
           else "one text every time: no sampling")


@check(id="{endpoint}.top_p.tiny-is-greedy", level=Level.MUST, feature="{endpoint}.top_p", parameter="top_p",
       since="0.1.0", info="An alternative to sampling with temperature, called nucleus sampling, where the model "
       "considers the results of the tokens with top_p probability mass.")
def test_top_p_tiny_is_greedy(api, endpoint):
    """temperature=1 with top_p=1e-9 keeps only the likeliest token: the output equals the greedy one."""
    require_endpoint(api, endpoint)
    body = prompt_body(endpoint, STORY_PROMPT)
    base = greedy_baseline(api, endpoint, body, max_tokens=16)
    control = [api.create(endpoint, {**body, "temperature": 1, "max_tokens": 16}, mode=Mode.REGULAR, path=CallPath.HTTP)
               for _ in range(2)]
    if not all(c.ok for c in control):
        inconclusive(f"the control request at temperature 1 failed ({control[0].describe()})")
    if all(c.text == base.text for c in control):
        inconclusive("sampling at temperature 1 already reproduces the greedy output, so top_p's effect "
                      "cannot be seen")
    # Drift can move any one try off the greedy path; at temperature 1 a try of 16 tokens matches
    # it only if top_p kept the likeliest token at every step, so one matching try is decisive.
    replies, greedy = until_greedy_related(
        api, endpoint, body, 16, lambda: send_judged(api, endpoint, {**body, "temperature": 1, "top_p": 1e-9,
                                                                     "max_tokens": 16}, "top_p"),
        lambda reply, text: reply.text == text)
    matching = sum(r.text == greedy for r in replies)
    texts = ", ".join(repr(r.text[:40]) for r in replies)
    if matching:
        api.observe(endpoint, "top_p", Verdict.HONOURED, f"{matching} of {len(replies)} tries gave the greedy output")
        return
    if all(r.text[:BEGINNING] == base.text[:BEGINNING] for r in replies):
        inconclusive(f"none of {len(replies)} tries gave the greedy output {base.text[:40]!r}, but all begin "
                     f"like it: late drift, which repetition cannot tell from top_p not applied ({texts})")
    # Samples at temperature 1 never repeat; tries that do were decoded deterministically, on a
    # path that a near tie resolved otherwise than in the temperature-0 tries seen.
    if Tries(replies).agreed is not None:
        inconclusive(f"none of {len(replies)} tries gave the greedy output {base.text[:40]!r}, but they repeat one "
                     f"output ({Tries(replies).describe()}): a near tie resolved the other way, as drift does ({texts})")
    require_repeatable_greedy(api, endpoint, body, 16, len(replies))
    api.observe(endpoint, "top_p", Verdict.IGNORED, f"none of {len(replies)} tries gave the greedy output")
    expect(False, f"the greedy output {base.text[:80]!r} from some of {len(replies)} tries",
           f"none of {len(replies)} tries, and some differ from its start: {texts}")
