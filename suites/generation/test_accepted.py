"""Parameters whose effect cannot be observed from outside: accepted, or cleanly refused.

For `user`, `store`, `metadata`, `service_tier`, `prompt_cache_key`, ... all a black-box test can
know is whether a valid value is accepted. The verdict is then `accepted` (never `honoured`),
and the report says that is all that can be known.
"""

from conformance.harness import (
    Level, Mode, STORY_PROMPT, Verdict, check, limit_body, load_catalogue, not_in_openai, prompt_body,
    require_endpoint, send_judged,
)


def unobservable(endpoint):
    return [(p.name, p.name) for p in load_catalogue().for_endpoint(endpoint) if not p.observable]


@check(id="{endpoint}.parameters.accepted", level=Level.SHOULD, feature="{endpoint}.parameters",
       clause="https://platform.openai.com/docs/api-reference/{endpoint}/create", variants=unobservable,
       modes=(Mode.REGULAR,), endpoints=("chat", "completions", "responses"),
       since="0.1.0", info=not_in_openai(
           "the suite's own clause: OpenAI documents these parameters (user, store, metadata, service_tier, ...) but "
           "no effect a client can see, so all a black-box check can know is that a valid value is accepted"))
def test_accepted(api, endpoint, case):
    """A valid value of a parameter whose effect cannot be observed is accepted (or, if optional, cleanly refused)."""
    require_endpoint(api, endpoint)
    sample = load_catalogue().get(case, endpoint).sample
    send_judged(api, endpoint, {**prompt_body(endpoint, STORY_PROMPT), **limit_body(endpoint, 4), case: sample}, case)
    api.observe(endpoint, case, Verdict.ACCEPTED, "accepted; its effect is not observable from outside")
