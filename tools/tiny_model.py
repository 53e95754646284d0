"""Build a tiny random-weight Llama model and its tokenizer, offline, for a real server.

No model hub is reachable here, so the model is made on the spot (DESIGN.md section 10): a
byte-level BPE tokenizer trained on a few lines, a chat template, and a 2-layer LlamaConfig
with random weights from a fixed seed.  Its text is gibberish, which is exactly what
model-agnostic oracles must cope with.

    python tools/tiny_model.py OUT_DIR                    # the shape transformers serve runs
    python tools/tiny_model.py OUT_DIR --shape vllm-cpu   # the shape vLLM's CPU backend accepts
"""

import argparse
from pathlib import Path

LINES = [
    "The quick brown fox jumps over the lazy dog.", "Hello there! How are you today?",
    "Once upon a time a lighthouse keeper found a map.", "List the planets of the solar system.",
    "apple, apple, apple, banana, cherry", "You are a helpful assistant. Answer briefly.",
]
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")

# Model sizes by name. "default" must stay exactly as it is: transformers serve's expectations
# were verified on its weights. vLLM's CPU attention needs a head size of 32 to 512, and the
# default's is 64 / 4 heads = 16, so vLLM gets a wider model (128 / 4 = 32).
SHAPES = {
    "default": {"hidden_size": 64, "intermediate_size": 128},
    "vllm-cpu": {"hidden_size": 128, "intermediate_size": 256},
}


def tokenizer(texts: list[str]):
    """A byte-level BPE tokenizer of 600 tokens trained on `texts`, with <s>, </s>, <pad> and the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(out: Path, shape: str = "default") -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = tokenizer(LINES * 50)
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), **SHAPES[shape], num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         bos_token_id=0, eos_token_id=1, pad_token_id=2)
    LlamaForCausalLM(config).save_pretrained(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build a tiny random-weight Llama model, offline.")
    parser.add_argument("out", type=Path, help="the folder to write the model and tokenizer to")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="default",
                        help="model size: 'default' (transformers serve), 'vllm-cpu' (head size 32)")
    args = parser.parse_args()
    build(args.out, args.shape)
