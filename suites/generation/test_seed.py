"""seed: reproducible sampling."""

from conformance.harness import (
    CallPath, Level, Mode, STORY_PROMPT, check, describe, expect, expect_reproducible, inconclusive, prompt_body,
    require_endpoint, send_judged, until_agreement,
)

SEED_INFO = ("If specified, our system will make a best effort to sample deterministically, such that repeated "
             "requests with the same `seed` and parameters should return the same result.")

SEED = 4242


@check(id="{endpoint}.seed.reproducible", level=Level.SHOULD, feature="{endpoint}.seed", parameter="seed",
       since="0.1.0", info=SEED_INFO)
def test_seed_reproducible(api, endpoint):
    """The same seed at temperature 1 repeated gives the same text (some try reproduces another); unseeded vary."""
    require_endpoint(api, endpoint)
    body = {**prompt_body(endpoint, STORY_PROMPT), "temperature": 1, "max_tokens": 12}
    control = [api.create(endpoint, body, mode=Mode.REGULAR, path=CallPath.HTTP) for _ in range(2)]
    if not all(c.ok for c in control):
        inconclusive(f"the unseeded control request failed ({control[0].describe()})")
    if control[0].text == control[1].text:
        inconclusive("unseeded samples at temperature 1 already repeat, so the seed's effect cannot be seen")
    seeded = until_agreement(lambda: send_judged(api, endpoint, {**body, "seed": SEED}, "seed"))
    expect_reproducible(api, endpoint, "seed", seeded, "the same seed")


@check(id="{endpoint}.seed.different-seeds-vary", level=Level.SHOULD, feature="{endpoint}.seed", parameter="seed",
       since="0.1.0", info=SEED_INFO)
def test_different_seeds_vary(api, endpoint):
    """Different seeds at temperature 1 give different texts: a seed does not switch sampling off."""
    require_endpoint(api, endpoint)
    body = {**prompt_body(endpoint, STORY_PROMPT), "temperature": 1, "max_tokens": 12}
    control = [api.create(endpoint, body, mode=Mode.REGULAR, path=CallPath.HTTP) for _ in range(2)]
    if not all(c.ok for c in control) or control[0].text == control[1].text:
        inconclusive("unseeded samples at temperature 1 do not vary, so seeds cannot be told apart")
    texts = {send_judged(api, endpoint, {**body, "seed": seed}, "seed").text for seed in (SEED, SEED + 1, SEED + 2)}
    expect(len(texts) > 1, "different texts for three different seeds", describe(min(texts)),
           "the same for all three seeds: a seed switched sampling off")
