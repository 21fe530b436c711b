"""Pretraining data: tokenize text, pack it into `block_size` blocks, and count what each block covers.

Next-token prediction trains on blocks of exactly `block_size` tokens cut from the concatenated token stream
(run_clm's "group texts"); the leftover tail shorter than a block is dropped. Rows from a `.txt` file are lines
with their line breaks, so they concatenate back to the file; rows of any other source are documents, and an EOS
token is appended after each one so the model learns where documents end.

For the tokenizer-independent metrics (nats per character, bits per byte), every token is charged with the
characters that end inside it (from the fast tokenizer's offsets), so the characters of a row are counted once
each however the tokenizer splits them. A block of T tokens yields T - 1 predictions (the model predicts tokens
1..T-1 from the ones before), and the block's `n_chars` / `n_bytes` count exactly the text of tokens 1..T-1.

Usage:

    tokenized = raw.map(tokenize_function(tokenizer, "text", append_eos=False, count_chars=True),
                        batched=True, remove_columns=raw.column_names)
    blocks = tokenized.map(pack_function(block_size=256), batched=True)
    units = text_units(blocks)        # TextUnits(n_predicted_tokens=..., n_chars=..., n_bytes=...)
    blocks = blocks.remove_columns(["n_chars", "n_bytes"])
"""

from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

from datasets import Dataset


@dataclass(frozen=True)
class TextUnits:
    """How much text the predicted tokens of an evaluation set cover."""

    n_predicted_tokens: int
    n_chars: int
    n_bytes: int


def token_char_counts(text: str, offsets: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Characters and UTF-8 bytes charged to each token of `text`, given the tokens' (start, end) offsets.

    A character belongs to the token in which it ends; characters after the last token's end (trailing text a
    tokenizer's offsets leave out) go to the last token. The counts sum to `len(text)` and to the UTF-8 length.

    >>> token_char_counts("héllo", [(0, 2), (2, 2), (2, 5)])
    ([2, 0, 3], [3, 0, 3])
    """
    chars, n_bytes = [], []
    previous_end = 0
    for index, (_, end) in enumerate(offsets):
        end = len(text) if index == len(offsets) - 1 else max(end, previous_end)
        piece = text[previous_end:end]
        chars.append(len(piece))
        n_bytes.append(len(piece.encode("utf-8", errors="surrogatepass")))
        previous_end = end
    return chars, n_bytes


def tokenize_function(tokenizer, text_column: str, append_eos: bool, count_chars: bool) -> Callable:
    """A batched `datasets.map` function: text -> `input_ids` (+ per-token `token_chars` / `token_bytes`)."""
    eos = [tokenizer.eos_token_id] if append_eos else []

    def tokenize(batch: dict) -> dict:
        texts = batch[text_column]
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=count_chars)
        out = {"input_ids": [ids + eos for ids in encoded["input_ids"]]}
        if count_chars:
            out["token_chars"], out["token_bytes"] = [], []
            for text, offsets in zip(texts, encoded["offset_mapping"], strict=True):
                chars, n_bytes = token_char_counts(text, offsets) if offsets else ([], [])
                if not offsets and text:
                    raise ValueError(f"the tokenizer produced no tokens for a non-empty text: {text[:40]!r}")
                # The EOS separator is not text: it costs loss but covers no characters.
                out["token_chars"].append(chars + [0] * len(eos))
                out["token_bytes"].append(n_bytes + [0] * len(eos))
        return out

    return tokenize


def pack_function(block_size: int) -> Callable:
    """A batched `datasets.map` function: concatenate the token lists and cut blocks of `block_size`.

    Produces `input_ids` and `labels` (the same ids: the model shifts them), plus per-block `n_chars` and
    `n_bytes` of the predicted tokens (positions 1..block_size-1) when the input carries character counts.
    """

    def pack(batch: dict) -> dict:
        ids = list(chain.from_iterable(batch["input_ids"]))
        n_blocks = len(ids) // block_size
        starts = range(0, n_blocks * block_size, block_size)
        out = {"input_ids": [ids[start : start + block_size] for start in starts]}
        out["labels"] = [list(block) for block in out["input_ids"]]
        if "token_chars" in batch:
            for key, column in (("n_chars", "token_chars"), ("n_bytes", "token_bytes")):
                counts = list(chain.from_iterable(batch[column]))
                out[key] = [sum(counts[start + 1 : start + block_size]) for start in starts]
        return out

    return pack


def text_units(blocks: Dataset) -> TextUnits:
    """Totals over packed blocks that carry `n_chars` / `n_bytes` columns."""
    block_size = len(blocks[0]["input_ids"]) if len(blocks) else 0
    return TextUnits(
        n_predicted_tokens=len(blocks) * max(block_size - 1, 0),
        n_chars=int(sum(blocks["n_chars"])),
        n_bytes=int(sum(blocks["n_bytes"])),
    )


def tokenize_and_pack(
    dataset: Dataset,
    tokenizer,
    text_column: str,
    block_size: int,
    append_eos: bool,
    count_chars: bool = False,
    num_proc: int | None = None,
    name: str = "train",
) -> Dataset:
    """`dataset`'s text as blocks of exactly `block_size` token ids (with `n_chars` / `n_bytes` if `count_chars`).

    Raises when not one block fits: training on nothing would otherwise fail deep inside the Trainer.
    """
    tokenized = dataset.map(
        tokenize_function(tokenizer, text_column, append_eos, count_chars=count_chars),
        batched=True,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc=f"tokenizing {name}",
    )
    blocks = tokenized.map(
        pack_function(block_size),
        batched=True,
        batch_size=10_000,
        remove_columns=tokenized.column_names,
        num_proc=num_proc,
        desc=f"packing {name} into blocks of {block_size}",
    )
    if len(blocks) == 0:
        raise ValueError(
            f"the {name} text has fewer than --block_size={block_size} tokens, so not one block fits; "
            f"lower --block_size or give more {name} text"
        )
    return blocks
