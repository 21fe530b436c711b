"""What a GGUF for llama.cpp's `gpt2` architecture can hold, checked before anything is loaded or written.

This file needs no `gguf` package, so `python -m hf_scratch_gpt.convert --help` lists the `--outtype` names and a
checkpoint the runtime cannot run is refused before the optional extra is even imported.

Limits enforced, and why (llama.cpp's source, as vendored by llama-cpp-python 0.3.36):

- vocabulary <= 2**31 - 1 tokens: a token id is `llama_token`, an int32_t;
- context (n_positions) <= 2**32 - 1: `gpt2.context_length` is a GGUF uint32, read into `n_ctx_train` (uint32_t);
- the MLP activation is GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`): llama.cpp's gpt2 graph always
  applies that one (LLM_FFN_GELU), and transformers' GGUF loader builds GPT2Config's default `gelu_new`;
- the tokenizer is a byte-level BPE that splits text with GPT-2's regex: that is what `tokenizer.ggml.pre =
  "gpt-2"` makes llama.cpp do, and its merges hold no space (llama.cpp cuts each merge at its first space);
- the tokenizer has no more tokens than the embedding has rows (missing ids become unused `[PAD<id>]` tokens).
"""

import json

from scratch_tokenizer.bpe import GPT2_SPLIT_PATTERN

# f32 is the default: the file holds exactly the checkpoint's weights (logits equal to 1e-5, what the tests check),
# our models are small (GPT-2 124M's shape is 0.5 GB in f32), and whether a rounded default is as good on a
# trained model is not measured here. f16 and bf16 halve the file; q8_0 quarters it (8-bit blocks of 32 weights).
OUTTYPES = ("f32", "f16", "bf16", "q8_0")
DEFAULT_OUTTYPE = "f32"

MAX_VOCAB = 2**31 - 1
MAX_CONTEXT = 2**32 - 1
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh")


def check_gguf_config(config) -> None:
    """Raise ValueError when llama.cpp's gpt2 architecture cannot hold or compute this model, naming the limit."""
    problems = []
    if config.vocab_size > MAX_VOCAB:
        problems.append(
            f"vocab_size {config.vocab_size:,} is over llama.cpp's limit of {MAX_VOCAB:,} (token ids are int32)"
        )
    if config.n_positions > MAX_CONTEXT:
        problems.append(
            f"n_positions {config.n_positions:,} is over GGUF's limit of {MAX_CONTEXT:,} (context_length is a "
            f"uint32)"
        )
    if config.activation_function not in TANH_GELU:
        problems.append(
            f"activation_function {config.activation_function!r}: llama.cpp's gpt2 graph always computes GELU's "
            f"tanh approximation ({' or '.join(TANH_GELU)}), so this model would compute something else there"
        )
    if problems:
        raise ValueError("Cannot export this checkpoint to GGUF: " + "; ".join(problems) + ".")


def _splits_like_gpt2(pre_tokenizer: dict | None) -> bool:
    """Our pipeline (Split by GPT-2's regex, then ByteLevel without its own regex) or GPT-2's own ByteLevel."""
    if pre_tokenizer is None:
        return False
    if pre_tokenizer["type"] == "ByteLevel":
        return pre_tokenizer.get("use_regex", True) and not pre_tokenizer.get("add_prefix_space", False)
    if pre_tokenizer["type"] != "Sequence" or len(pre_tokenizer["pretokenizers"]) != 2:
        return False
    split, byte_level = pre_tokenizer["pretokenizers"]
    return (
        split["type"] == "Split"
        and split["pattern"].get("Regex") == GPT2_SPLIT_PATTERN
        and split["behavior"] == "Isolated"
        and not split.get("invert", False)
        and byte_level["type"] == "ByteLevel"
        and not byte_level.get("use_regex", True)
        and not byte_level.get("add_prefix_space", False)
    )


def check_gguf_tokenizer(tokenizer, vocab_size: int) -> None:
    """Raise ValueError when llama.cpp would tokenize differently from `tokenizer`, or it does not fit the model."""
    if tokenizer is None:
        raise ValueError(
            "a GGUF file carries its tokenizer, and this checkpoint has none: save the tokenizer beside the model "
            "(tokenizer.save_pretrained(CKPT)) and export again"
        )
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec["model"]
    problems = []
    if model["type"] != "BPE" or not _splits_like_gpt2(spec.get("pre_tokenizer")) or spec.get("normalizer"):
        problems.append(
            "the tokenizer is not a byte-level BPE with GPT-2's pre-tokenizer and no normalizer, which is the only "
            "kind `tokenizer.ggml.pre = gpt-2` describes (train one with python -m scratch_tokenizer)"
        )
    elif model.get("ignore_merges") or model.get("byte_fallback") or model.get("continuing_subword_prefix"):
        problems.append(
            "the BPE sets ignore_merges, byte_fallback or a subword prefix, which GPT-2's BPE has not"
        )
    # Older tokenizer.json files spell a merge "left right" (so neither side holds a space), newer ones as a pair.
    spaced = [m for m in model.get("merges", []) if not isinstance(m, str) and any(" " in part for part in m)]
    if spaced:
        problems.append(
            f"a merge holds a space ({spaced[0]!r}), which llama.cpp's 'left right' merges cannot spell"
        )
    if len(tokenizer) > vocab_size:
        problems.append(
            f"the tokenizer has {len(tokenizer):,} tokens but the model's embedding only {vocab_size:,} rows"
        )
    if problems:
        raise ValueError("Cannot export this tokenizer to GGUF: " + "; ".join(problems) + ".")


def merge_strings(tokenizer) -> list[str]:
    """The tokenizer's merges, best first, as GGUF spells them: "left right"."""
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    return [merge if isinstance(merge, str) else " ".join(merge) for merge in merges]
