"""The `custom_dataset` loaders of the task YAMLs in this folder: local files named in lm-eval's `--metadata`.

lm-eval 0.4.13 calls `custom_dataset(**metadata, **dataset_kwargs)`, where `metadata` merges the task's own, the
`--metadata` JSON and the `--model_args` (so `pretrained` names the model being evaluated). Each loader returns a
dict of `datasets.Dataset` splits.
"""

from pathlib import Path

from datasets import Dataset

BOOK_SPAM_TEST = "book_spam_test"


def _file(metadata: dict, key: str, task: str) -> Path:
    """The path under `key` in --metadata, or an error that shows how to give it."""
    value = metadata.get(key)
    if not value:
        raise ValueError(
            f'task {task} reads a local file: pass --metadata \'{{"{key}": "PATH"}}\' (a JSON object; several '
            f"tasks' keys can go in one object)"
        )
    path = Path(value).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"task {task}: --metadata {key} {path} does not exist (or is not a file)")
    return path


def text_documents(**metadata) -> dict[str, Dataset]:
    """`text_file` as a single document (its exact text, line breaks included)."""
    path = _file(metadata, "text_file", "scratch_gpt_text")
    return {"test": Dataset.from_dict({"text": [path.read_text(encoding="utf-8")]})}


def preference_pairs(**metadata) -> dict[str, Dataset]:
    """The test pairs of `preference_file` (the recipe's split), each prompt rendered with the model's chat template."""
    from hf_scratch_gpt.data.arguments import DataArguments
    from hf_scratch_gpt.data.loading import carve_splits, load_raw_datasets
    from hf_scratch_gpt.data.preference import answer_text, drop_identical_pairs, to_preference_pairs

    path = _file(metadata, "preference_file", "scratch_gpt_preference")
    raw = load_raw_datasets(DataArguments(train_file=str(path)))
    split = metadata.get("preference_split", "test")
    if split == "test":
        raw = carve_splits(raw, validation_percentage=5.0, test_percentage=10.0, shuffle=False)
    elif split != "all":
        raise ValueError(
            f"preference_split must be 'test' (the book's 10% test pairs) or 'all', got {split!r}"
        )
    pairs = drop_identical_pairs(
        to_preference_pairs(raw["test" if split == "test" else "train"], split), split
    )
    tokenizer = _chat_tokenizer(metadata)
    return {
        "test": Dataset.from_dict(
            {
                "prompt": [
                    tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
                    for prompt in pairs["prompt"]
                ],
                "choices": [
                    [answer_text(chosen), answer_text(rejected)]
                    for chosen, rejected in zip(pairs["chosen"], pairs["rejected"], strict=True)
                ],
                "target": [0] * len(pairs),
            }
        )
    }


def _chat_tokenizer(metadata: dict):
    """The evaluated model's tokenizer (`pretrained` from --model_args), with our chat template if it has none."""
    from scratch_tokenizer.hf_tokenizer import load_chat_tokenizer

    name = metadata.get("tokenizer") or metadata.get("pretrained")
    if not isinstance(name, str):
        raise ValueError("task scratch_gpt_preference renders prompts with the model's tokenizer: pass "
                         "--model_args pretrained=PATH (a name, not a model object)")  # fmt: skip
    trust = str(metadata.get("trust_remote_code", False)).lower() == "true"
    return load_chat_tokenizer(name, trust, pad_with_eos=False)


def labelled_texts(**metadata) -> dict[str, Dataset]:
    """`labelled_file` (label + text) with each text's label index among the sorted distinct labels."""
    from hf_scratch_gpt.data.loading import load_local_file, require_columns

    path = _file(metadata, "labelled_file", "scratch_gpt_labelled")
    split = metadata.get("labelled_split", "all")
    if split == BOOK_SPAM_TEST:
        from hf_scratch_gpt.data.classify import book_spam_split

        splits = book_spam_split(path)
        splits = {"train": splits["train"], "test": splits["test"]}
    elif split == "all":
        rows = load_local_file(path, "test", expected_columns=("label", "text"))
        splits = {"train": rows, "test": rows}  # lm-eval leaves a document out of its own few-shot examples
    else:
        raise ValueError(f"labelled_split must be 'all' or {BOOK_SPAM_TEST!r}, got {split!r}")
    for name, rows in splits.items():
        require_columns(rows, ["label", "text"], name)
    labels = sorted(
        {str(label) for label in splits["train"]["label"]} | {str(x) for x in splits["test"]["label"]}
    )

    def add_choices(row: dict) -> dict:
        return {"label": str(row["label"]), "choices": labels, "target": labels.index(str(row["label"]))}

    return {name: rows.map(add_choices) for name, rows in splits.items()}
