"""Stage 4 (data in): load the raw datasets every recipe starts from, and check them before any work is done.

Sources, in order of precedence:

- `--dataset_name` (+ `--dataset_config_name`): a dataset on the Hugging Face Hub, through `datasets.load_dataset`.
- `--train_file` / `--validation_file` / `--test_file`: local files. The extension picks the reader:
  `.txt` (one row per line, line breaks kept so the rows concatenate back to the exact file), `.csv`,
  `.json` / `.jsonl`, `.parquet`, and `.tsv` or no extension for tab-separated files. A tab-separated file whose
  first line does not name the expected columns and has two fields is read as headerless `label<TAB>text`
  (the SMS Spam Collection's format).
- a built-in text (the pretraining recipe's default corpus), made into rows with `text_to_dataset`.

Usage:

    >>> from hf_scratch_gpt.data.loading import text_to_dataset, split_off
    >>> ds = text_to_dataset("one\\ntwo\\nthree\\nfour\\n")
    >>> parts = split_off(ds, percentage=25, shuffle=False)
    >>> parts["train"]["text"][:], parts["validation"]["text"][:]
    (['one\\n', 'two\\n', 'three\\n'], ['four\\n'])
"""

from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset

from hf_scratch_gpt.data.arguments import DataArguments
from scratch_tokenizer.text_files import require_utf8

# Reader (a `datasets` packaged builder) for each local file extension; tab-separated files are handled apart.
FILE_BUILDERS = {".txt": "text", ".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
TAB_SEPARATED_SUFFIXES = {".tsv", ".tab", ""}
SPLIT_FILE_FLAGS = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


def load_raw_datasets(data_args: DataArguments, expected_columns: tuple[str, ...] = ()) -> DatasetDict:
    """Load the splits named by `data_args` (hub dataset or local files) into a `DatasetDict`.

    `expected_columns` (e.g. `("label", "text")`, in file order) names the columns of a headerless tab-separated
    file. Every split that is returned has at least one row.
    """
    if data_args.dataset_name is not None:
        source = data_args.dataset_name
        raw = load_dataset(data_args.dataset_name, data_args.dataset_config_name)
        if not isinstance(raw, DatasetDict):
            raw = DatasetDict({"train": raw})
    else:
        files = {split: getattr(data_args, flag) for split, flag in SPLIT_FILE_FLAGS.items()}
        files = {split: path for split, path in files.items() if path is not None}
        if not files:
            raise ValueError("no data given: pass --dataset_name NAME (a Hub dataset) or --train_file FILE")
        if "train" not in files:
            raise ValueError(f"--train_file is required when loading local files (got only {sorted(files)})")
        source = ", ".join(str(path) for path in files.values())
        raw = DatasetDict(
            {split: load_local_file(path, split, expected_columns) for split, path in files.items()}
        )
    check_not_empty(raw, source)
    return raw


def limit_samples(splits: DatasetDict, data_args: DataArguments) -> DatasetDict:
    """Keep the first `--max_train_samples` training rows and `--max_eval_samples` validation / test rows.

    Applied after any validation or test split was cut from the training rows, so the limits apply to them.
    """
    limits = {"train": data_args.max_train_samples}
    limits.update(dict.fromkeys(("validation", "test"), data_args.max_eval_samples))
    return DatasetDict(
        {
            split: dataset.select(range(min(limits[split], len(dataset))))
            if limits.get(split) is not None
            else dataset
            for split, dataset in splits.items()
        }
    )


def load_local_file(path: str | Path, split: str, expected_columns: tuple[str, ...] = ()) -> Dataset:
    """Read one local data file as a `Dataset`, picking the reader from its extension."""
    path = Path(path)
    flag = "--" + SPLIT_FILE_FLAGS.get(split, f"{split}_file")
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path} does not exist (or is not a file)")
    if path.stat().st_size == 0:
        raise ValueError(f"the {split} split of {path} is empty: {flag} must have at least one row")
    require_utf8(path, flag)
    suffix = path.suffix.lower()
    if suffix in TAB_SEPARATED_SUFFIXES:
        return read_tab_separated(path, expected_columns)
    if suffix not in FILE_BUILDERS:
        known = sorted([*FILE_BUILDERS, ".tsv"])
        raise ValueError(
            f"{flag} {path}: unknown file type {suffix!r}; use one of {known} (or no extension for TSV)"
        )
    builder = FILE_BUILDERS[suffix]
    # keep_linebreaks: pretraining text must concatenate back to the exact file, newlines included.
    extra = {"keep_linebreaks": True} if builder == "text" else {}
    return load_dataset(builder, data_files={split: str(path)}, split=split, **extra)


def read_tab_separated(path: Path, expected_columns: tuple[str, ...] = ()) -> Dataset:
    """Read a tab-separated file: with a header row, or headerless `label<TAB>text` (the SMS Spam Collection).

    The first line is a header when it names all `expected_columns`; otherwise a line of exactly
    `len(expected_columns)` fields means there is no header and the columns are `expected_columns` in order.
    Quotes are ordinary characters (no CSV quoting), so every line is exactly one row.
    """
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        return Dataset.from_dict({name: [] for name in expected_columns or ("text",)})
    first = lines[0].split("\t")
    headerless = bool(expected_columns) and not set(expected_columns) <= set(first)
    headerless = headerless and len(first) == len(expected_columns)
    columns = list(expected_columns) if headerless else first
    rows = lines if headerless else lines[1:]
    values: dict[str, list[str]] = {name: [] for name in columns}
    for line_number, line in enumerate(rows, start=1 if headerless else 2):
        fields = line.split("\t", maxsplit=len(columns) - 1)
        if len(fields) != len(columns):
            raise ValueError(
                f"{path}, line {line_number}: expected {len(columns)} tab-separated fields ({columns}), "
                f"found {len(fields)}: {line[:80]!r}"
            )
        for name, value in zip(columns, fields, strict=True):
            values[name].append(value)
    return Dataset.from_dict(values)


def text_to_dataset(text: str, column: str = "text") -> Dataset:
    """One row per line of `text`, line breaks kept (as the `.txt` reader does)."""
    return Dataset.from_dict({column: text.splitlines(keepends=True)})


def check_not_empty(datasets: DatasetDict, source: str) -> None:
    """Raise when the data has no split or a split without rows (nothing to train or evaluate on)."""
    if len(datasets) == 0:
        raise ValueError(f"{source} contains no split: nothing to train on")
    for split, dataset in datasets.items():
        if len(dataset) == 0:
            raise ValueError(f"the {split} split of {source} is empty: it needs at least one row")


def require_columns(
    dataset: Dataset, columns: list[str], split: str, what: dict[str, str] | None = None
) -> None:
    """Raise when `dataset` lacks any of `columns`, listing the columns it does have.

    `what` maps a column to the flag that names it (e.g. {"text": "--text_column_name"}), for the hint.
    """
    missing = [name for name in columns if name not in dataset.column_names]
    if missing:
        flags = [f"{(what or {}).get(name, 'the column flag')}" for name in missing]
        raise ValueError(
            f"column(s) {missing} not found in the {split} split; the columns found are {dataset.column_names}. "
            f"Pass {' / '.join(dict.fromkeys(flags))} with one of them."
        )


def split_off(dataset: Dataset, percentage: float, shuffle: bool, seed: int = 42, name: str = "validation"):
    """Split `dataset` into train and `name` (`percentage` % of the rows, at least one).

    Without `shuffle` the last rows become the held-out split (for text: the first 90% trains, the last 10%
    validates, as nanoGPT does). With `shuffle` the rows are drawn at random under `seed`.
    """
    if not 0 < percentage < 100:
        raise ValueError(f"the {name} split percentage must be between 0 and 100, got {percentage}")
    if len(dataset) < 2:
        raise ValueError(
            f"cannot split a {name} split off a dataset of {len(dataset)} row(s); pass a {name} file"
        )
    n_held_out = min(len(dataset) - 1, max(1, round(len(dataset) * percentage / 100)))
    if shuffle:
        parts = dataset.train_test_split(test_size=n_held_out, shuffle=True, seed=seed)
        return DatasetDict({"train": parts["train"], name: parts["test"]})
    n_train = len(dataset) - n_held_out
    return DatasetDict(
        {"train": dataset.select(range(n_train)), name: dataset.select(range(n_train, len(dataset)))}
    )


def carve_splits(
    splits: DatasetDict,
    validation_percentage: float,
    test_percentage: float | None,
    shuffle: bool,
    seed: int = 42,
) -> DatasetDict:
    """Fill in missing validation (and, with `test_percentage`, test) splits from the training rows.

    When both are missing the rows are cut as the book does (no rounding up): train = int(n * train%),
    test = int(n * test%), validation = the rest, in that order (85/10/5 of 1,100 instruction records gives
    935 / 110 / 55). With `shuffle` the rows are shuffled under `seed` first. One missing split is cut from the
    end of the (shuffled) training rows.
    """
    train = splits["train"].shuffle(seed=seed) if shuffle else splits["train"]
    out = dict(splits)
    need_test = test_percentage is not None and "test" not in splits
    need_validation = "validation" not in splits
    if need_test and need_validation:
        n = len(train)
        n_train = int(n * (100 - validation_percentage - test_percentage) / 100)
        n_test = int(n * test_percentage / 100)
        if min(n_train, n_test, n - n_train - n_test) < 1:
            raise ValueError(
                f"cannot cut train/test/validation splits from {n} training rows; pass split files"
            )
        out["train"] = train.select(range(n_train))
        out["test"] = train.select(range(n_train, n_train + n_test))
        out["validation"] = train.select(range(n_train + n_test, n))
    elif need_test or need_validation:
        name, percentage = ("test", test_percentage) if need_test else ("validation", validation_percentage)
        out.update(split_off(train, percentage, shuffle=False, name=name))
    return DatasetDict({name: out[name] for name in ("train", "validation", "test") if name in out})
