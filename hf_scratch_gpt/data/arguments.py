"""The data flags every recipe shares: where the data comes from (a Hub dataset or local files) and how much of it
to use. The names follow transformers' run_clm.py / run_classification.py.

Also `check_range`, the one range check every numeric flag of every recipe passes where it is parsed (in the
argument dataclasses' `__post_init__`, and hf_scratch_gpt.training.arguments' table for TrainingArguments /
DPOConfig).
"""

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any


def check_range(
    flag: str,
    value: Any,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    special: dict[float, str] | None = None,
    optional: bool = False,
    why: str = "",
) -> None:
    """Raise a ValueError naming `flag`, `value` and the valid range unless `value` is a finite number in it.

    `at_least` / `above` and `at_most` / `below` are the bounds (inclusive / exclusive; None: no bound);
    `special` maps values allowed outside the range to what they mean; `optional` allows None (the flag not
    given); `why` says what the range protects. A list is checked item by item. NaN, infinity and bools are
    refused.

    >>> check_range("--lora_dropout", 0.1, at_least=0, below=1)
    >>> check_range("--max_steps", -1, at_least=1, special={-1: "train for --num_train_epochs"})
    >>> check_range("--beta", -1.0, above=0, why="it scales DPO's reward")
    Traceback (most recent call last):
    ...
    ValueError: --beta must be > 0, got -1.0 (it scales DPO's reward); pass a value in that range
    """
    if value is None and optional:
        return
    if isinstance(value, list):
        for item in value:
            check_range(flag, item, at_least=at_least, above=above, at_most=at_most, below=below, why=why)
        return
    bounds = [
        f">= {at_least}" if at_least is not None else f"> {above}" if above is not None else "",
        f"<= {at_most}" if at_most is not None else f"< {below}" if below is not None else "",
    ]
    valid = " and ".join(bound for bound in bounds if bound)
    valid += "".join(f", or {allowed} ({meaning})" for allowed, meaning in (special or {}).items())
    fix = "pass a value in that range" if valid else "pass a finite number"
    fix += " or leave the flag out" if optional else ""
    reason = f" ({why})" if why else ""
    is_number = isinstance(value, Real) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value):
        number = f"a finite number {valid}" if valid else "a finite number"
        raise ValueError(f"{flag} must be {number}, got {value if is_number else repr(value)}{reason}; {fix}")
    if value in (special or {}):
        return
    in_range = (
        (at_least is None or value >= at_least)
        and (above is None or value > above)
        and (at_most is None or value <= at_most)
        and (below is None or value < below)
    )
    if not in_range:
        raise ValueError(f"{flag} must be {valid}, got {value}{reason}; {fix}")


# The range of every "percentage of the training rows held out" flag (check_range's keywords).
SPLIT_PERCENTAGE = {"above": 0, "below": 100, "why": "a share of the training rows: 100 would leave none"}


@dataclass
class DataArguments:
    """Where the data comes from (a Hub dataset or local files) and how much of it to use."""

    dataset_name: str | None = field(default=None, metadata={"help": "Dataset on the Hugging Face Hub."})
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Configuration of --dataset_name."}
    )
    train_file: str | None = field(
        default=None, metadata={"help": "Local training file: .txt, .csv, .tsv, .json, .jsonl or .parquet."}
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Local validation file (same types)."}
    )
    test_file: str | None = field(default=None, metadata={"help": "Local test file (same types)."})
    text_column_name: str = field(default="text", metadata={"help": "Column holding the text."})
    validation_split_percentage: float = field(
        default=10.0,
        metadata={
            "help": "Percentage of the training rows held out for validation when no validation split "
            "exists (pretraining takes the last rows, finetuning a random sample)."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training rows (quick runs, debugging)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N validation / test rows."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenization (datasets.map num_proc)."}
    )

    def __post_init__(self):
        check_range("--validation_split_percentage", self.validation_split_percentage, **SPLIT_PERCENTAGE)
        check_range("--max_train_samples", self.max_train_samples, at_least=1, optional=True)
        check_range("--max_eval_samples", self.max_eval_samples, at_least=1, optional=True)
        check_range(
            "--preprocessing_num_workers", self.preprocessing_num_workers, at_least=0, optional=True,
            why="0 or unset: tokenize in the main process",
        )  # fmt: skip
