"""Records with a chosen and a rejected answer -> TRL's conversational preference format.

Two record formats:

- Alpaca with preferences: `instruction`, optional `input`, `chosen`, `rejected` (the book's
  instruction-data-with-preference.json). The prompt is the user turn that instruction finetuning renders
  (hf_scratch_gpt.data.instruct.alpaca_to_messages: the instruction, a blank line and the input when there is one);
  chosen and rejected become assistant turns.
- TRL's conversational format: `prompt` (a list of messages ending with a user turn), `chosen` and `rejected`
  (each a list holding one assistant message).

Either way the result has three columns, `prompt`, `chosen` and `rejected`, each a list of
`{"role": ..., "content": ...}` messages, which TRL's DPOTrainer renders with the tokenizer's chat template.

A pair whose chosen and rejected answers are the same text teaches nothing (its DPO loss has zero gradient and
its reward margin is 0 by definition), so such pairs are skipped, with the count in the log.

After TRL has tokenized the pairs (`prompt_ids`, `chosen_ids`, `rejected_ids`), `truncate_prompts_left` fits each
pair into the context: the prompt loses tokens from its start, so the end of the prompt (the instruction's last
words and the "### Assistant:" header) stays next to the answers.

Usage:

    pairs = to_preference_pairs(dataset, "train")          # prompt / chosen / rejected message lists
    pairs = drop_identical_pairs(pairs, "train")
    tokenized = truncate_prompts_left(tokenized, max_length=256, split="train")
"""

import logging

from datasets import Dataset

from hf_scratch_gpt.data.instruct import alpaca_to_messages, chat_problem
from hf_scratch_gpt.data.loading import check_text_fields, quoted, record_error

logger = logging.getLogger(__name__)

PREFERENCE_COLUMNS = ("chosen", "rejected")
ALPACA_PREFERENCE_NEEDS = f"Alpaca preference records need text in {quoted(('instruction', *PREFERENCE_COLUMNS))} ('input' is optional)"
CONVERSATIONAL_NEEDS = (
    "conversational preference records need 'prompt' (a list of {'role': ..., 'content': text} messages ending "
    "with a user turn), 'chosen' and 'rejected' (each a list with one assistant message)"
)
MIN_PROMPT_SHARE = 0.5  # a prompt keeps at least this share of the context, even when an answer is longer


def to_preference_pairs(dataset: Dataset, split: str = "train", system_prompt: str | None = None) -> Dataset:
    """A dataset of `prompt` / `chosen` / `rejected` message lists, from either record format (the columns decide)."""
    columns = dataset.column_names
    missing = [name for name in PREFERENCE_COLUMNS if name not in columns]
    if missing:
        raise ValueError(
            f"the {split} split has no {' / '.join(repr(m) for m in missing)} column: preference records need "
            f"'chosen' and 'rejected' answers (with 'instruction' [+ 'input'] or a 'prompt' message list); the "
            f"columns found are {columns}"
        )
    if "prompt" in columns:
        pairs = dataset.select_columns(["prompt", *PREFERENCE_COLUMNS])
        for index, record in enumerate(pairs):
            problem = _conversational_problem(record)
            if problem:
                raise record_error(pairs, split, index, problem, CONVERSATIONAL_NEEDS)
        return pairs
    if "instruction" not in columns:
        raise ValueError(
            f"the {split} split has 'chosen' and 'rejected' but no prompt: give an 'instruction' column (Alpaca "
            f"records, optional 'input') or a 'prompt' message list (TRL's format); the columns found are {columns}"
        )
    check_text_fields(
        dataset, split, ("instruction", *PREFERENCE_COLUMNS), ("input",), ALPACA_PREFERENCE_NEEDS
    )

    def convert(record: dict) -> dict:
        messages = alpaca_to_messages(
            record["instruction"], record.get("input"), record["chosen"], system_prompt
        )
        return {
            "prompt": messages[:-1],
            "chosen": messages[-1:],
            "rejected": [{"role": "assistant", "content": record["rejected"]}],
        }

    return dataset.map(convert, remove_columns=columns, desc=f"formatting {split} preference pairs")


def _conversational_problem(record: dict) -> str | None:
    """What is wrong with a record in TRL's conversational format, or None."""
    expected = {
        "prompt": "a list of messages ending with a user turn",
        "chosen": "a list with one assistant message",
        "rejected": "a list with one assistant message",
    }
    for name, what in expected.items():
        messages = record[name]
        problem = chat_problem(messages, name, what)
        roles = None if problem else [message["role"] for message in messages]
        if not problem and (roles[-1:] != ["user"] if name == "prompt" else roles != ["assistant"]):
            problem = f"{name!r} must be {what}, got roles {roles}"
        if problem:
            return problem
    return None


def answer_text(messages: list[dict]) -> str:
    """The text of a chosen / rejected answer (its one assistant message)."""
    return messages[-1]["content"]


def drop_identical_pairs(pairs: Dataset, split: str) -> Dataset:
    """Skip pairs whose chosen and rejected answers are the same text (ignoring surrounding spaces), logging how many."""
    kept = pairs.filter(
        lambda chosen, rejected: answer_text(chosen).strip() != answer_text(rejected).strip(),
        input_columns=list(PREFERENCE_COLUMNS),
    )
    skipped = len(pairs) - len(kept)
    if skipped:
        logger.warning(
            "skipped %d of %d %s pairs whose chosen and rejected answers are identical (nothing to prefer)",
            skipped,
            len(pairs),
            split,
        )
    if len(kept) == 0:
        raise ValueError(f"every {split} pair has identical chosen and rejected answers: nothing to learn")
    return kept


def prompt_budget(prompt_length: int, completion_length: int, max_length: int) -> int:
    """How many prompt tokens (its last ones) a pair keeps so that prompt + longer answer fit in `max_length`.

    An answer longer than the rest of the context does not squeeze the prompt below MIN_PROMPT_SHARE of it; the
    answer is then cut at its end by TRL's collator (`truncation_mode="keep_start"`).

    >>> prompt_budget(10, 5, 32), prompt_budget(30, 5, 32), prompt_budget(30, 40, 32)
    (10, 27, 16)
    """
    room = max(max_length - completion_length, int(max_length * MIN_PROMPT_SHARE))
    return min(prompt_length, room)


def truncate_prompts_left(tokenized: Dataset, max_length: int, split: str) -> Dataset:
    """Cut the start of prompts that leave no room for their answers in `max_length` tokens, with a warning."""

    def truncate(example: dict) -> dict:
        longest = max(len(example["chosen_ids"]), len(example["rejected_ids"]))
        keep = prompt_budget(len(example["prompt_ids"]), longest, max_length)
        return {"prompt_ids": example["prompt_ids"][len(example["prompt_ids"]) - keep :]}

    too_long = sum(
        len(prompt) + max(len(chosen), len(rejected)) > max_length
        for prompt, chosen, rejected in zip(
            tokenized["prompt_ids"], tokenized["chosen_ids"], tokenized["rejected_ids"], strict=True
        )
    )
    if not too_long:
        return tokenized
    logger.warning(
        "%d of %d %s pairs do not fit in max_length=%d tokens: their prompts were truncated from the left (their "
        "first tokens are dropped, so the answers keep theirs; answers longer than half the context are also cut "
        "at their end)",
        too_long,
        len(tokenized),
        split,
        max_length,
    )
    return tokenized.map(truncate, desc=f"truncating long {split} prompts from the left")
