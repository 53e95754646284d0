"""presence_penalty, frequency_penalty and the repetition_penalty extension: less repetition."""


from conformance.harness import (
    Level, REPEATING_PROMPT, Verdict, check, describe, expect, greedy_baseline, inconclusive, not_in_openai,
    prompt_body, repetition, require_declared_extension, require_endpoint, send_judged,
)

MIN_BASELINE_REPETITION = 0.2


def _penalised(api, endpoint, parameter: str, value: float):
    require_endpoint(api, endpoint)
    require_declared_extension(api, parameter)
    body = prompt_body(endpoint, REPEATING_PROMPT)
    base = greedy_baseline(api, endpoint, body, max_tokens=48)
    if repetition(base.text) < MIN_BASELINE_REPETITION:
        inconclusive(f"the greedy output hardly repeats itself (repetition {repetition(base.text):.2f}), "
                     f"so a penalty has nothing to reduce: {base.text[:80]!r}")
    reply = send_judged(api, endpoint, {**body, "temperature": 0, "max_tokens": 48, parameter: value}, parameter)
    api.observe(endpoint, parameter, Verdict.IGNORED if reply.text == base.text else Verdict.HONOURED)
    expect(reply.text != base.text, f"an output different from the unpenalised greedy output {base.text[:60]!r}",
           describe(reply.text), "the same as without the penalty")
    expect(repetition(reply.text) < repetition(base.text),
           f"less repetition than the baseline ({repetition(base.text):.2f})",
           f"repetition {repetition(reply.text):.2f}", "no less than without the penalty")


@check(id="{endpoint}.presence_penalty.reduces-repetition", level=Level.MUST, feature="{endpoint}.presence_penalty",
       parameter="presence_penalty",
       since="0.1.0", info="Positive values penalize new tokens based on whether they appear in the text so far, "
       "increasing the model's likelihood to talk about new topics.")
def test_presence_penalty(api, endpoint):
    """presence_penalty=2 makes a repetitive greedy output repeat itself less."""
    _penalised(api, endpoint, "presence_penalty", 2.0)


@check(id="{endpoint}.frequency_penalty.reduces-repetition", level=Level.MUST,
       feature="{endpoint}.frequency_penalty", parameter="frequency_penalty",
       since="0.1.0", info="Positive values penalize new tokens based on their existing frequency in the text so "
       "far, decreasing the model's likelihood to repeat the same line verbatim.")
def test_frequency_penalty(api, endpoint):
    """frequency_penalty=2 makes a repetitive greedy output repeat itself less."""
    _penalised(api, endpoint, "frequency_penalty", 2.0)


@check(id="{endpoint}.repetition_penalty.reduces-repetition", level=Level.MUST,
       feature="{endpoint}.repetition_penalty", parameter="repetition_penalty",
       since="0.1.0", info=not_in_openai(
           "an extension parameter (vLLM, llama.cpp, TGI), not OpenAI's: judged only where the target declares it"))
def test_repetition_penalty(api, endpoint):
    """Extension: repetition_penalty=1.8, where declared, makes a repetitive greedy output repeat itself less."""
    _penalised(api, endpoint, "repetition_penalty", 1.8)


