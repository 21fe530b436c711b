"""Helpers for the tests of exports that other runtimes read: a tiny checkpoint with our own tokenizer (or GPT-2's
vocabulary), its GPT-2 export through the convert command, and the reference tokens of our `generate()`."""

import json
from pathlib import Path

import torch
from conftest import shared_file
from recipe_helpers import ascii_text

from hf_scratch_gpt.convert import main as convert
from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
from scratch_tokenizer.bpe import ByteLevelBPE
from scratch_tokenizer.hf_tokenizer import to_hf_tokenizer
from scratch_tokenizer.train import train_tokenizer

N_POSITIONS = 64
# Prompts of a few scripts (ASCII prose, accents, emoji, Hangul, digits), short enough for 24 new tokens.
PROMPTS = ["To be, or not to be", "héllo wörld 🤗 안녕 3.14", "a"]
NEW_TOKENS = 24


def trained_tokenizer(vocab_size: int = 400):
    """Our BPE trained on English prose plus a little non-ASCII text: a vocabulary no runtime knows by hash."""
    return train_tokenizer(
        texts=[ascii_text(20_000), PROMPTS[1] * 5], vocab_size=vocab_size, show_progress=False
    )


def gpt2_vocab_tokenizer():
    """GPT-2's own vocabulary and merges, exported by our code (what a model finetuned from GPT-2 carries)."""
    folder = shared_file("gpt2/encoder.json").parent
    return to_hf_tokenizer(ByteLevelBPE.from_gpt2_files(folder / "encoder.json", folder / "vocab.bpe"))


def tiny_checkpoint(
    folder: Path, tokenizer, n_embd: int = 64, seed: int = 0, without_unk: bool = True
) -> Path:
    """A random 2-layer ScratchGPT saved with `tokenizer`.

    Biases and LayerNorms are randomised too (they start at 0 / 1), so that their conversion is checked.
    `without_unk`: the tokenizer is saved as tokenizers trained before unk_token was named were (no unk_token in
    tokenizer_config.json), the case the export has to repair.
    """
    torch.manual_seed(seed)
    config = ScratchGPTConfig(
        vocab_size=len(tokenizer),
        n_positions=N_POSITIONS,
        n_embd=n_embd,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = ScratchGPTForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if without_unk:
        config_file = folder / "tokenizer_config.json"
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        saved.pop("unk_token", None)
        config_file.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    return folder


def export_gpt2(checkpoint: Path, output_dir: Path) -> Path:
    """`python -m hf_scratch_gpt.convert --to_gpt2 CHECKPOINT --output_dir OUTPUT_DIR`, in this process."""
    convert(["--to_gpt2", str(checkpoint), "--output_dir", str(output_dir)])
    return output_dir


def our_greedy(
    model: ScratchGPTForCausalLM, prompt_ids: list[int], new_tokens: int = NEW_TOKENS
) -> list[int]:
    """Our `generate()`, greedy, exactly `new_tokens` new tokens (EOS held back, as the runtimes are told too)."""
    prompt = torch.tensor([prompt_ids])
    out = model.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return out[0, len(prompt_ids) :].tolist()


def our_logits(model: ScratchGPTForCausalLM, prompt_ids: list[int]) -> torch.Tensor:
    """Our model's logits for one sequence, (T, vocab)."""
    with torch.no_grad():
        return model(torch.tensor([prompt_ids])).logits[0]
