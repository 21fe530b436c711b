"""Records -> chat messages -> token ids with the loss on the responses only.

Two record formats:

- Alpaca: `instruction`, optional `input`, `output` (the book's instruction-data.json). The user turn is the
  instruction, followed by a blank line and the input when there is one; the assistant turn is the output. An
  optional `history` lists earlier turns of the conversation as Alpaca records, oldest first (the built-in task
  set's conversations): they come first, one user and one assistant message each.
- Chat: a `messages` list of `{"role": "system" | "user" | "assistant", "content": ...}`.

Messages are rendered with the tokenizer's chat template (scratch_tokenizer.hf_tokenizer.CHAT_TEMPLATE), whose
`{% generation %}` markers let `apply_chat_template(..., return_assistant_tokens_mask=True)` say which tokens
are the assistant's: each response's text *and the EOS token after it*, so the model learns to stop. Labels are
the token ids there and -100 everywhere else (system text, user turns, the "### Assistant:" prefixes), so
the loss is on the responses only.

Usage:

    messages = to_messages(dataset)                      # a `messages` column, from either format
    tokenized = messages.map(tokenize_function(tokenizer), remove_columns=messages.column_names)
    batch = instruct_collator(model, tokenizer.pad_token_id)(list_of_examples)  # logits only where labelled
"""

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from datasets import Dataset

from hf_scratch_gpt.data.loading import check_text_fields, describe_json, quoted, record_error

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value that the loss skips (PyTorch's cross_entropy default ignore_index)
ALPACA_COLUMNS = ("instruction", "output")
ALPACA_NEEDS = f"Alpaca records need text in {quoted(ALPACA_COLUMNS)} ('input' is optional)"
CHAT_ROLES = ("system", "user", "assistant")  # the roles the chat template renders
CHAT_NEEDS = (
    "chat records need 'messages': a list of {'role': 'system' | 'user' | 'assistant', 'content': text} ending "
    "with an assistant turn"
)


def chat_problem(messages, name: str = "messages", expected: str = "a list of messages") -> str | None:
    """What is wrong with the chat messages in a record's field `name` (None when nothing is); `expected` says what
    the field must hold, for the error when it is not a list.

    >>> chat_problem([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}])
    "message 1 of 'messages' has no text in 'content'"
    """
    if messages is None:
        return f"{name!r} is missing or null"
    if not isinstance(messages, list):
        return f"{name!r} must be {expected}, got {describe_json(messages)} ({messages!r:.60})"
    for turn, message in enumerate(messages):
        where = f"message {turn} of {name!r}"
        if not isinstance(message, dict):
            return f"{where} is {describe_json(message)}, not an object with 'role' and 'content'"
        role, content = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            known = f"the chat template knows {quoted(CHAT_ROLES)}"
            return (
                f"{where} has no 'role' ({known})" if role is None else f"{where} has role {role!r} ({known})"
            )
        if not isinstance(content, str):
            if content is None:
                return f"{where} has no text in 'content'"
            return f"{where} has {describe_json(content)} ({content!r:.60}) in 'content', not text"
    return None


def alpaca_to_messages(
    instruction: str,
    input_text: str | None,
    output: str,
    system_prompt: str | None = None,
    history: Sequence[dict] = (),
):
    """One Alpaca record as chat messages, after its `history` (earlier turns as Alpaca records, oldest first)."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for turn in [*history, {"instruction": instruction, "input": input_text, "output": output}]:
        user = turn["instruction"] if not turn.get("input") else f"{turn['instruction']}\n\n{turn['input']}"
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": turn["output"]}]
    return messages


def to_messages(dataset: Dataset, split: str = "train", system_prompt: str | None = None) -> Dataset:
    """A dataset with one `messages` column, from chat records or Alpaca records (the columns decide)."""
    columns = dataset.column_names
    if "messages" in columns:
        for index, messages in enumerate(dataset["messages"]):
            problem = chat_problem(messages)
            if not problem and (not messages or messages[-1]["role"] != "assistant"):
                roles = [message["role"] for message in messages]
                problem = f"a chat record must end with an assistant message to learn from, got roles {roles}"
            if problem:
                raise record_error(dataset, split, index, problem, CHAT_NEEDS)
        return dataset.select_columns(["messages"])
    if all(name in columns for name in ALPACA_COLUMNS):
        check_text_fields(dataset, split, ALPACA_COLUMNS, ("input",), ALPACA_NEEDS)

        def convert(record: dict) -> dict:
            return {
                "messages": alpaca_to_messages(
                    record["instruction"],
                    record.get("input"),
                    record["output"],
                    system_prompt,
                    record.get("history") or (),
                )
            }

        return dataset.map(convert, remove_columns=columns, desc=f"formatting {split} records")
    raise ValueError(
        f"the {split} split has neither a 'messages' column (chat records) nor 'instruction' and 'output' "
        f"columns (Alpaca records); the columns found are {columns}"
    )


def tokenize_function(tokenizer) -> Callable:
    """A `datasets.map` function: `messages` -> `input_ids` and `labels` (-100 outside the responses)."""

    def tokenize(record: dict) -> dict:
        encoded = tokenizer.apply_chat_template(
            record["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        input_ids, mask = encoded["input_ids"], encoded["assistant_masks"]
        labels = [token if keep else IGNORE_INDEX for token, keep in zip(input_ids, mask, strict=True)]
        return {"input_ids": input_ids, "labels": labels}

    return tokenize


def drop_too_long(dataset: Dataset, max_length: int, split: str) -> Dataset:
    """Drop examples longer than `max_length` tokens, with a warning.

    Not truncated: cutting the end would cut the EOS token that teaches the model to stop.
    """
    kept = dataset.filter(lambda ids: len(ids) <= max_length, input_columns="input_ids")
    if len(kept) < len(dataset):
        logger.warning(
            "dropped %d of %d %s examples longer than max_seq_length=%d tokens (truncating them would cut the "
            "EOS token that ends each response)",
            len(dataset) - len(kept),
            len(dataset),
            split,
            max_length,
        )
    if len(kept) == 0:
        raise ValueError(
            f"every {split} example is longer than max_seq_length={max_length}; raise --max_seq_length"
        )
    return kept


def prompt_and_reference(messages: list[dict]) -> tuple[list[dict], str]:
    """The conversation up to the last assistant turn (to generate from) and that turn's text (the reference)."""
    return messages[:-1], messages[-1]["content"]


@dataclass
class InstructCollator:
    """Right-pads a batch: `input_ids` with the pad id, `attention_mask` 0 and `labels` -100 on the padding."""

    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        length = max(len(example["input_ids"]) for example in examples)
        batch = {"input_ids": [], "attention_mask": [], "labels": []}
        for example in examples:
            n_pad = length - len(example["input_ids"])
            batch["input_ids"].append(list(example["input_ids"]) + [self.pad_token_id] * n_pad)
            batch["attention_mask"].append([1] * len(example["input_ids"]) + [0] * n_pad)
            batch["labels"].append(list(example["labels"]) + [IGNORE_INDEX] * n_pad)
        return {name: torch.tensor(values, dtype=torch.long) for name, values in batch.items()}


@dataclass
class LabelledLogitsCollator(InstructCollator):
    """InstructCollator plus what lets the model compute logits only where the loss reads them: a speed trick.

    The loss needs the logits of the positions whose next token is labelled (the responses: about 12% of a built-in
    record's tokens), yet the LM head costs as much per position as the whole 1.2M-parameter base below it.
    `logits_to_keep`, a (B, T) boolean mask of those positions, makes the model's `slice_logits_to_keep` pick them
    before the LM head; `shift_labels`, the (N,) labels they predict, is what transformers' causal-LM loss then
    uses as is (and what the Trainer counts for `num_items_in_batch`). Same loss, same gradients; a training step
    of the main job's base on the built-in task set took 1.7x less time (batch 32, one thread of the shared
    2-core AMD EPYC, 2026-12-02). For models whose forward takes `logits_to_keep`: `instruct_collator` picks.
    """

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = super().__call__(examples)
        keep = torch.zeros_like(batch["labels"], dtype=torch.bool)  # (B, T)
        keep[:, :-1] = batch["labels"][:, 1:] != IGNORE_INDEX  # position t predicts token t + 1
        return {**batch, "logits_to_keep": keep, "shift_labels": batch["labels"][:, 1:][keep[:, :-1]]}  # (N,)


def instruct_collator(model, pad_token_id: int) -> InstructCollator:
    """LabelledLogitsCollator for a model whose forward takes `logits_to_keep` (ours, GPT-2, nearly every
    transformers causal LM), else InstructCollator. Pass the model before wrapping it (peft's forward hides it)."""
    takes_mask = "logits_to_keep" in inspect.signature(model.forward).parameters
    return (LabelledLogitsCollator if takes_mask else InstructCollator)(pad_token_id=pad_token_id)
