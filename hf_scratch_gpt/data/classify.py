"""Classification data: labels to ids, class balancing, the book's spam split, and tokenization.

Usage:

    splits = book_spam_split("../shared/data/SMSSpamCollection")    # train/validation/test: 1045/149/300
    label_list = label_names(splits["train"], "label")                # ['ham', 'spam']
    splits = encode_labels(splits, "label", label_list)               # 'labels' column of ids; unseen -> error
    tokenized = tokenize_for_classification(splits, tokenizer, "text", max_length=256)
"""

import logging
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict

from hf_scratch_gpt.data.loading import check_text_fields, describe_json, record_error, require_utf8

logger = logging.getLogger(__name__)


def book_spam_split(path: str | Path, seed: int = 123) -> DatasetDict:
    """The balanced SMS spam split of "Build a Large Language Model (From Scratch)", ch. 6, row for row.

    Reads the file as the book does (pandas' default quoting, so 5,572 rows), keeps all 747 spam and a sample
    of 747 ham (`random_state=123`), shuffles (`random_state=123`) and cuts 70% / 10% / 20%: 1045 / 149 / 300.
    Columns: `label` ("ham" / "spam") and `text`.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SMS Spam Collection file {path} does not exist")
    require_utf8(path, "--train_file")
    frame = pd.read_csv(path, sep="\t", header=None, names=["label", "text"])
    spam = frame[frame["label"] == "spam"]
    ham = frame[frame["label"] == "ham"].sample(len(spam), random_state=seed)
    balanced = pd.concat([ham, spam]).sample(frac=1, random_state=seed).reset_index(drop=True)
    train_end = int(len(balanced) * 0.7)
    validation_end = train_end + int(len(balanced) * 0.1)
    parts = {
        "train": balanced[:train_end],
        "validation": balanced[train_end:validation_end],
        "test": balanced[validation_end:],
    }
    return DatasetDict(
        {name: Dataset.from_pandas(part, preserve_index=False) for name, part in parts.items()}
    )


def balance_classes(dataset: Dataset, label_column: str, seed: int = 42) -> Dataset:
    """Downsample every class to the size of the smallest one (rows drawn at random under `seed`), shuffled."""
    labels = np.asarray(dataset[label_column])
    classes, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng(seed)
    keep = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), counts.min(), replace=False) for c in classes]
    )
    logger.info("balanced classes %s from %s to %d rows each", list(classes), list(counts), counts.min())
    return dataset.select(rng.permutation(keep).tolist())


def label_names(train: Dataset, label_column: str) -> list[str]:
    """The class names, in id order: a ClassLabel's names, else the sorted distinct training labels."""
    feature = train.features[label_column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = train[label_column][:]
    kinds = [describe_json(value) for value in values]
    odd = next((index for index, kind in enumerate(kinds) if kind != kinds[0]), None)
    if odd is not None:  # e.g. 1 and "spam": they cannot be sorted into one list of classes
        problem = f"{label_column!r} is {kinds[odd]} ({values[odd]!r:.60}) where record 0's is {kinds[0]}"
        raise record_error(train, "train", odd, problem, "the labels must be all text or all numbers")
    return [str(value) for value in sorted(set(values))]


def encode_labels(splits: DatasetDict, label_column: str, label_list: list[str]) -> DatasetDict:
    """Add a `labels` column of class ids to every split; labels never seen in training are an error."""
    label2id = {name: index for index, name in enumerate(label_list)}
    encoded = {}
    for split, dataset in splits.items():
        feature = dataset.features[label_column]
        values = [
            feature.int2str(v) if isinstance(feature, ClassLabel) else str(v) for v in dataset[label_column]
        ]
        unseen = sorted(set(values) - set(label2id))
        if unseen:
            raise ValueError(
                f"the {split} split has labels {unseen} that the training split never had (training labels: "
                f"{label_list}); the model cannot predict them. Remove those rows or add examples to training."
            )
        encoded[split] = dataset.add_column("labels", [label2id[value] for value in values])
    return DatasetDict(encoded)


def tokenize_for_classification(
    splits: DatasetDict, tokenizer, text_column: str, max_length: int, num_proc: int | None = None
) -> DatasetDict:
    """Tokenize `text_column`; texts longer than `max_length` tokens keep their first `max_length` tokens.

    Each split with truncated texts logs a warning that says how many (their ends are not seen by the model).
    """

    def tokenize(batch: dict) -> dict:
        encoded = tokenizer(batch[text_column], add_special_tokens=False)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        return {
            "input_ids": [ids[:max_length] for ids in encoded["input_ids"]],
            "attention_mask": [mask[:max_length] for mask in encoded["attention_mask"]],
            "n_tokens": lengths,
        }

    tokenized = {}
    for split, dataset in splits.items():
        needs = f"every record needs text in {text_column!r} (--text_column_name)"
        check_text_fields(dataset, split, [text_column], needs=needs)
        empty = [i for i, text in enumerate(dataset[text_column]) if not text]
        if empty:
            problem = (
                f"{text_column!r} is empty (empty in {len(empty)} of the split's {len(dataset)} records)"
            )
            raise record_error(dataset, split, empty[0], problem, needs)
        out = dataset.map(tokenize, batched=True, num_proc=num_proc, desc=f"tokenizing {split}")
        n_long = sum(length > max_length for length in out["n_tokens"])
        if n_long:
            logger.warning(
                "%d of %d texts in the %s split are longer than max_seq_length=%d tokens and were truncated "
                "to their first %d tokens (the rest is not seen by the model)",
                n_long,
                len(out),
                split,
                max_length,
                max_length,
            )
        tokenized[split] = out.remove_columns("n_tokens")
    return DatasetDict(tokenized)
