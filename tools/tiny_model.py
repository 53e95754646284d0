"""Build a tiny random-weight Llama model and its tokenizer, offline, for `transformers serve`.

No model hub is reachable here, so the model is made on the spot (DESIGN.md section 10): a
byte-level BPE tokenizer trained on a few lines, a chat template, and a 2-layer LlamaConfig
with random weights from a fixed seed.  Its text is gibberish, which is exactly what
model-agnostic oracles must cope with.

    python tools/tiny_model.py OUT_DIR
"""

import sys
from pathlib import Path

LINES = [
    "The quick brown fox jumps over the lazy dog.", "Hello there! How are you today?",
    "Once upon a time a lighthouse keeper found a map.", "List the planets of the solar system.",
    "apple, apple, apple, banana, cherry", "You are a helpful assistant. Answer briefly.",
]
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


def build(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(LINES * 50, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         bos_token_id=0, eos_token_id=1, pad_token_id=2)
    LlamaForCausalLM(config).save_pretrained(out)


if __name__ == "__main__":
    build(Path(sys.argv[1]))
