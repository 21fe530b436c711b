"""Helpers for the recipe tests: tiny data written under tmp_path, a tiny pretrained checkpoint, recipe loading."""

import importlib
import json
import random
from pathlib import Path

# Arguments that keep every recipe run to a few seconds: tiny batches, no progress bars, no integrations.
# A tiny model built from scratch by recipes/pretrain.py, with a context long enough for the instruct records.
TINY_PRETRAIN = ["--model_size", "tiny", "--vocab_size", "300", "--block_size", "32", "--config_overrides",
                 "n_positions=96"]  # fmt: skip

FAST_ARGS = ["--disable_tqdm", "true", "--report_to", "none", "--logging_steps", "1", "--seed", "0"]


def load_recipe(name: str):
    """The recipe module `recipes.<name>`."""
    return importlib.import_module(f"recipes.{name}")


def run_recipe(recipe, args: list[str]):
    """Run a recipe (module or name) on command-line `args`, as `python recipes/<name>.py ARGS` does."""
    module = load_recipe(recipe) if isinstance(recipe, str) else recipe
    return module.main(*module.parse_args(args))


def ascii_text(n_chars: int) -> str:
    """Real English prose (Python's help texts), ASCII only, about `n_chars` long, ending at a line break."""
    from scratch_tokenizer.default_corpus import default_corpus_text

    text = default_corpus_text().encode("ascii", errors="ignore").decode("ascii")
    cut = text.rfind("\n", 0, n_chars)
    return text[: cut + 1]


def make_checkpoint(folder: Path, text: str, vocab_size: int = 300, n_positions: int = 64) -> Path:
    """Train a small tokenizer on `text` and save it with a tiny random ScratchGPTForCausalLM."""
    from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM
    from scratch_tokenizer.train import train_tokenizer

    tokenizer = train_tokenizer(texts=[text], vocab_size=vocab_size, show_progress=False)
    config = ScratchGPTConfig(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    ScratchGPTForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


SPAM_WORDS = ["free", "prize", "win", "cash", "claim", "urgent", "offer", "call now", "txt", "reward"]
HAM_WORDS = ["see you", "dinner", "tonight", "love", "home", "meeting", "later", "thanks", "ok", "sorry"]


def labelled_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` short texts labelled spam/ham by their (distinct) vocabulary: learnable in a few steps."""
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        label = "spam" if index % 2 else "ham"
        words = rng.sample(SPAM_WORDS if label == "spam" else HAM_WORDS, 3)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def instruction_records(n: int) -> list[dict]:
    """`n` Alpaca records, about a third with an input, with short outputs."""
    records = []
    for index in range(n):
        records.append(
            {
                "instruction": f"Repeat the number {index} in words."
                if index % 3
                else "Add the two numbers.",
                "input": "" if index % 3 else f"{index} and {index + 1}",
                "output": f"The answer is {index}." if index % 3 else f"The sum is {2 * index + 1}.",
            }
        )
    return records


def preference_records(n: int) -> list[dict]:
    """`n` Alpaca preference records: a polite chosen answer, a rude rejected one, a third with an input."""
    return [
        {
            "instruction": f"Give the number {i} in words." if i % 3 else "Add the two numbers.",
            "input": "" if i % 3 else f"{i} and {i + 1}",
            "chosen": f"The answer is {i}." if i % 3 else f"The sum is {2 * i + 1}.",
            "rejected": f"Ugh, obviously {i}, stupid." if i % 3 else "Do it yourself.",
        }
        for i in range(n)
    ]
