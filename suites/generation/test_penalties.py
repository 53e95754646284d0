"""presence_penalty, frequency_penalty and the repetition_penalty extension: less repetition."""


from conformance.harness import (
    Level, REPEATING_PROMPT, Verdict, check, describe, expect, greedy_baseline, inconclusive, not_in_openai,
    prompt_body, repetition, require_declared_extension, require_endpoint, send_judged,
)

MIN_BASELINE_REPETITION = 0.2
# Prompts tried in turn until one's greedy output repeats itself (a penalty needs repetition to
# reduce): an instruction first, which an instruction-following model repeats on; then text any
# language model continues by repeating it (a raw prompt on /completions, the same words as the
# message on chat), for a model trained to answer briefly and end its turn.
REPEATING_PROMPTS = (REPEATING_PROMPT, "apple, apple, apple, apple, apple, apple, apple, apple, apple, apple, apple,",
                     "the cat the cat the cat the cat the cat the cat the cat the cat the cat the cat")


def _repeating_baseline(api, endpoint):
    """The first prompt of REPEATING_PROMPTS whose greedy output repeats itself, and that output;
    inconclusive when none does (a penalty then has nothing to reduce)."""
    seen = []
    for text in REPEATING_PROMPTS:
        body = prompt_body(endpoint, text)
        base = greedy_baseline(api, endpoint, body, max_tokens=48)
        if repetition(base.text) >= MIN_BASELINE_REPETITION:
            return body, base
        seen.append(f"{repetition(base.text):.2f} {base.text[:40]!r}")
    inconclusive(f"no greedy output of {len(REPEATING_PROMPTS)} repetitive prompts repeats itself (repetition "
                 f"{'; '.join(seen)}), so a penalty has nothing to reduce")


def _penalised(api, endpoint, parameter: str, value: float):
    require_endpoint(api, endpoint)
    require_declared_extension(api, parameter)
    body, base = _repeating_baseline(api, endpoint)
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


