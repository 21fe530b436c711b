"""Load the raw datasets every recipe starts from, and check them before any work is done.

Sources, in order of precedence:

- `--dataset_name` (+ `--dataset_config_name`): a dataset on the Hugging Face Hub, through `datasets.load_dataset`.
- `--train_file` / `--validation_file` / `--test_file`: local files. The extension picks the reader:
  `.txt` (one row per line, line breaks kept so the rows concatenate back to the exact file), `.csv`,
  `.json` / `.jsonl`, `.parquet`, and `.tsv` or no extension for tab-separated files. A tab-separated file whose
  first line does not name the expected columns and has two fields is read as headerless `label<TAB>text`
  (the SMS Spam Collection's format). A `.json` file holds a list of records (JSON objects), or JSON Lines as a
  `.jsonl` file does (one object per line); anything else, and a file with no records, is an error that names the
  file, what it holds and what was expected (`check_json_records`).
- a built-in text (the pretraining recipe's default corpus), made into rows with `text_to_dataset`.

Usage:

    >>> from hf_scratch_gpt.data.loading import text_to_dataset, split_off
    >>> ds = text_to_dataset("one\\ntwo\\nthree\\nfour\\n")
    >>> parts = split_off(ds, percentage=25, shuffle=False)
    >>> parts["train"]["text"][:], parts["validation"]["text"][:]
    (['one\\n', 'two\\n', 'three\\n'], ['four\\n'])
"""

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from datasets import Dataset, DatasetDict, load_dataset
from datasets.exceptions import DatasetGenerationError

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
    """Read one local data file as a `Dataset`, picking the reader from its extension.

    The file's shape is checked first, so that a file of the wrong shape is never read as something else (a JSON
    object as one row, a string as a dataset error): the error names the file, what it holds and what was expected.
    A file with no records is an error.
    """
    path = Path(path)
    flag = "--" + SPLIT_FILE_FLAGS.get(split, f"{split}_file")
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path} does not exist (or is not a file)")
    if path.stat().st_size == 0:
        raise ValueError(f"the {split} split of {path} is empty: {flag} must have at least one row")
    suffix = path.suffix.lower()
    if suffix not in FILE_BUILDERS and suffix not in TAB_SEPARATED_SUFFIXES:
        known = sorted([*FILE_BUILDERS, ".tsv"])
        raise ValueError(
            f"{flag} {path}: unknown file type {suffix!r}; use one of {known} (or no extension for TSV)"
        )
    if suffix != ".parquet":  # a binary format: its reader checks its strings
        require_utf8(path, flag)
    if suffix in (".json", ".jsonl"):
        check_json_records(path, flag)
    empty = no_records_reason(path)
    if empty:
        raise ValueError(f"{flag} {path} holds no records ({empty}): expected at least one")
    if suffix in TAB_SEPARATED_SUFFIXES:
        dataset = read_tab_separated(path, expected_columns)
        if len(dataset) == 0:
            raise ValueError(f"{flag} {path} holds no records (a header line only): expected at least one")
        return dataset
    builder = FILE_BUILDERS[suffix]
    # keep_linebreaks: pretraining text must concatenate back to the exact file, newlines included.
    extra = {"keep_linebreaks": True} if builder == "text" else {}
    try:
        return load_dataset(builder, data_files={split: str(path)}, split=split, **extra)
    except DatasetGenerationError as error:
        raise ValueError(
            f"{flag} {path} could not be read as {builder}: {error.__cause__ or error}"
        ) from error


def no_records_reason(path: Path) -> str | None:
    """Why the (non-empty) file at `path` holds no records, or None when it holds some."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return None if len(pd.read_parquet(path, columns=[])) else "0 rows"
    if suffix == ".txt":
        return None  # every line is a row, blank ones too (pretraining text keeps its line breaks)
    with path.open(encoding="utf-8") as handle:
        lines = (line for line in handle if line.strip())
        if next(lines, None) is None:
            return "the file is blank"
        if suffix == ".csv" and next(lines, None) is None:
            return "a header line only" if pd.read_csv(path).empty else None
    return None


JSON_RECORDS = 'expected a list of records, [{"field": value, ...}, ...], or JSON Lines (one object per line)'


def check_json_records(path: Path, flag: str = "--train_file") -> None:
    """Raise unless `path` holds JSON records: a list of objects, or JSON Lines (one object per line; a `.jsonl`
    file always, a `.json` file when its text is objects one after the other). The error names the file, what it
    holds and what was expected; a blank file passes (no_records_reason says so).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.json"
    >>> _ = path.write_text('{"data": [{"text": "a"}, {"text": "b"}]}')
    >>> check_json_records(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --train_file .../data.json holds a JSON object with keys ['data'], not a list of records: the 2 ...
    """
    where = f"{flag} {path}"
    if path.suffix.lower() == ".json":
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            return
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            if error.msg != "Extra data" or not text.lstrip().startswith("{"):
                raise ValueError(
                    f"{where}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}; "
                    f"{JSON_RECORDS}"
                ) from None
        else:
            if not isinstance(value, list):
                raise ValueError(
                    f"{where} holds {describe_json(value)}, not a list of records: {wrapped_hint(value, path)}"
                    f"{JSON_RECORDS}"
                )
            if not value:
                raise ValueError(f"{where} holds no records (an empty list): expected at least one")
            for index, record in enumerate(value):
                if not isinstance(record, dict):
                    raise ValueError(
                        f"{where}: record {index} is {describe_json(record)}, not a JSON object; {JSON_RECORDS}"
                    )
            return
    first = True
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            # a list on the first line: a .json file's contents under the .jsonl name
            hint = (
                "; it looks like a JSON list: name the file .json"
                if first and line.lstrip()[:1] == "["
                else ""
            )
            first = False
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{where}, line {line_number} is not valid JSON (column {error.colno}: {error.msg}): expected "
                    f"JSON Lines, one record ({{...}}) per line{hint}"
                ) from None
            if not isinstance(value, dict):
                raise ValueError(
                    f"{where}, line {line_number} holds {describe_json(value)}, not a JSON object: expected JSON "
                    f"Lines, one record ({{...}}) per line{hint}"
                )


def describe_json(value) -> str:
    """What a JSON value is, in words: "a string", "a JSON object with keys ['data']" ...

    >>> describe_json("hi"), describe_json(True), describe_json(5), describe_json(None), describe_json([1])
    ('a string', 'true / false', 'a number', 'null', 'a list')
    """
    if isinstance(value, dict):
        keys = list(value)
        return f"a JSON object with keys {keys[:10]}" + (
            f" (and {len(keys) - 10} more)" if len(keys) > 10 else ""
        )
    if isinstance(value, bool):
        return "true / false"
    kinds = {str: "a string", int: "a number", float: "a number", list: "a list", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def wrapped_hint(value, path: Path) -> str:
    """How to turn a top-level JSON value that is not a list into a list of records (an empty string if unknown)."""
    if not isinstance(value, dict):
        return ""
    lists = [key for key, item in value.items() if isinstance(item, list)]
    if len(lists) == 1 and all(isinstance(item, dict) for item in value[lists[0]]):
        key = lists[0]
        return (
            f"the {len(value[key])} records are the list under {key!r}: make that list the whole file (e.g. "
            f"jq '.[{json.dumps(key)}]' {path} > records.json); "
        )
    if lists and len(lists) == len(value):
        return "its keys hold lists (columns?): write one object per record instead; "
    return "for a single record, put it in a list, [{...}]; "


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
    """Raise when `dataset` lacks any of `columns`, listing the columns it does have, or when a record has no
    value (null: a JSON record without the field, an empty CSV cell) in one of them, naming the record.

    `what` maps a column to the flag that names it (e.g. {"text": "--text_column_name"}), for the hint.
    """
    missing = [name for name in columns if name not in dataset.column_names]
    if missing:
        flags = [f"{(what or {}).get(name, 'the column flag')}" for name in missing]
        raise ValueError(
            f"column(s) {missing} not found in the {split} split; the columns found are {dataset.column_names}. "
            f"Pass {' / '.join(dict.fromkeys(flags))} with one of them."
        )
    table = dataset.with_format("arrow")
    first_nulls = {}  # column -> its first null, found by Arrow without reading the values into Python
    for name in columns:
        values = table[name]
        if values.null_count:
            first_nulls[name] = values.is_null().index(True).as_py()
    if first_nulls:
        name = min(first_nulls, key=first_nulls.get)
        flags = {column: f" ({(what or {})[column]})" if column in (what or {}) else "" for column in columns}
        needs = " and ".join(f"{column!r}{flags[column]}" for column in columns)
        raise record_error(
            dataset, split, first_nulls[name], f"{name!r} is missing or null", f"every record needs {needs}"
        )


def check_text_fields(
    dataset: Dataset, split: str, required: Sequence[str], optional: Sequence[str] = (), needs: str = ""
) -> None:
    """Raise on the first record whose `required` fields are not text (missing, null, a number, a list ...) or
    whose `optional` fields are neither text nor null: the error names the split, the record's index, the field,
    and `needs` (the fields the format needs). One pass over the columns, before anything is tokenized.

    >>> check_text_fields(Dataset.from_list([{"q": "a", "a": "b"}, {"q": "c"}]), "train", ["q", "a"],
    ...                   needs="records need text in 'q' and 'a'")
    Traceback (most recent call last):
    ...
    ValueError: the train split, record 1: 'a' is missing or null; records need text in 'q' and 'a'. The record: {'q': 'c', 'a': None}
    """
    fields = [*required, *optional]
    columns = [dataset[name][:] if name in dataset.column_names else [None] * len(dataset) for name in fields]
    for index, values in enumerate(zip(*columns, strict=True)):
        for name, value in zip(fields, values, strict=True):
            if isinstance(value, str) or (value is None and name not in required):
                continue
            problem = (
                "is missing or null"
                if value is None
                else f"is {describe_json(value)} ({value!r:.60}), not text"
            )
            raise record_error(dataset, split, index, f"{name!r} {problem}", needs)


def record_error(dataset: Dataset, split: str, index: int, problem: str, needs: str) -> ValueError:
    """The error for record `index` of `split`: what is wrong with it, what its format needs, and the record."""
    record = repr(dataset[index])
    record = record if len(record) <= 300 else record[:300] + " ..."
    return ValueError(f"the {split} split, record {index}: {problem}; {needs}. The record: {record}")


def quoted(names: Sequence[str]) -> str:
    """`names` in a sentence: "'a'", "'a' and 'b'", "'a', 'b' and 'c'"."""
    quoted_names = [repr(name) for name in names]
    return " and ".join([", ".join(quoted_names[:-1]), quoted_names[-1]] if len(names) > 1 else quoted_names)


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
