"""Build a tiny Llama model trained to answer like a chat model, offline, in about a minute of CPU.

The random-weight model (tools/tiny_model.py) writes gibberish and rarely ends a turn of its
own, which is what model-agnostic oracles must cope with; but a model that answers briefly and
ends its turn ("Hello!" and end-of-sequence) meets other edges: an answer exactly as long as a
limit, and no repetition to penalise where an instruction asks for a list (issue 28). This one
is trained on a small synthetic corpus, rendered with the same chat template, so that it

- answers a greeting, a question or an instruction in a few words and ends its turn;
- writes a longer story for the suite's story prompt, and ends it;
- continues raw text (on /completions) as it goes on, repeating a repetitive one.

Deterministic: the corpus, the tokenizer, the initial weights and the batches come from fixed
seeds, and torch runs on one thread, so every machine builds the same weights.

    python tools/tiny_chat_model.py OUT_DIR
"""

import argparse
import random
from pathlib import Path

from tiny_model import tokenizer

SEED = 28
STEPS = 500
BATCH = 32
LENGTH = 96  # tokens a training window holds

GREETINGS = ["Hello", "Hi", "Hello there", "Good morning", "Hey", "Hi there", "Good evening"]
REPLIES = ["Hello! How can I help you today?", "Hi! What can I do for you?", "Hello!", "Hi there!"]
QUESTIONS = [
    ("Name a colour.", "Blue."), ("Name a fruit.", "An apple."), ("What is two plus two?", "Four."),
    ("Name a planet.", "Mars."), ("Say yes or no.", "Yes."), ("What day comes after Monday?", "Tuesday."),
    ("Tell me a story", "Once a keeper found a map and sailed away."),
    ("What is the capital of France?", "Paris."), ("Count to three.", "One, two, three."),
    ("Give me a word.", "Lantern."), ("Is the sea salty?", "Yes, it is."),
    ("What colour is the sky?", "Blue."), ("Name an animal.", "A fox."),
]
WORDS = ("keeper lighthouse map sea storm night lamp ship island coast wave light door stair rock "
         "bird wind rope boat harbour shore tide cliff star moon").split()
PLANETS = "Mercury Venus Earth Mars Jupiter Saturn Uranus Neptune".split()


def _story(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(4, 7)):
        a, b, c = rng.sample(WORDS, 3)
        sentences.append(f"The {a} saw the {b} by the {c}.")
    return "Once upon a time a lighthouse keeper found a map. " + " ".join(sentences) + " The end."


def _turn(messages: list[tuple[str, str]], answer: str) -> str:
    """A conversation as the chat template renders it, then the answer and the end of the turn."""
    rendered = "".join(f"<s>{role}: {content}\n" for role, content in messages)
    return f"{rendered}assistant: {answer}</s>"


def corpus(rng: random.Random) -> list[str]:
    texts = []
    system = [("system", "You are a helpful assistant. Answer briefly.")]
    for _ in range(300):
        greeting = rng.choice(GREETINGS)
        texts.append(_turn([("user", greeting)], rng.choice(REPLIES)))
        question, answer = rng.choice(QUESTIONS)
        texts.append(_turn(rng.choice([[], system]) + [("user", question)], answer))
        texts.append(_turn([("user", "Write a long story about a lighthouse keeper who finds a map.")], _story(rng)))
        texts.append(_turn([("user", "List the planets of the solar system and describe each of them in detail.")],
                           ", ".join(PLANETS) + "."))
        # An instruction to repeat, answered briefly: nothing for a penalty to reduce (the suite then
        # tries raw repetitive text, which the model continues by repeating).
        texts.append(_turn([("user", "Continue this list, one word per line, and never stop: apple, apple, "
                                     "apple, apple, apple,")], "apple"))
        # Raw text, as /completions sends it: a story goes on, a repetition repeats.
        texts.append("<s>" + _story(rng))
        word = rng.choice(["apple", "the cat", "blue", "tick tock"])
        texts.append("<s>" + ", ".join([word] * rng.randint(12, 30)))
    return texts


def build(out: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)  # one thread: the same sums in the same order, the same weights everywhere
    rng = random.Random(SEED)
    texts = corpus(rng)
    fast = tokenizer(texts)
    ids = [i for text in texts for i in fast(text, add_special_tokens=False)["input_ids"]]
    torch.manual_seed(SEED)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         bos_token_id=0, eos_token_id=1, pad_token_id=2)
    model = LlamaForCausalLM(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.tensor(ids)
    starts = torch.Generator().manual_seed(SEED)
    model.train()
    for step in range(STEPS):
        offsets = torch.randint(0, len(data) - LENGTH - 1, (BATCH,), generator=starts)
        batch = torch.stack([data[o:o + LENGTH] for o in offsets.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    model.generation_config.eos_token_id = 1
    model.save_pretrained(out)
    fast.save_pretrained(out)
    print(f"tiny chat model: {len(texts)} texts, {len(ids)} tokens, {STEPS} steps, last loss {loss.item():.2f}: {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build a tiny Llama model trained to answer like a chat model.")
    parser.add_argument("out", type=Path, help="the folder to write the model and tokenizer to")
    build(parser.parse_args().out)
