"""Bad data files never train: a file of the wrong shape names the file, what it holds and what was expected; a
record missing a field names its split, its index, the field and the fields its format needs. Valid files still
load exactly as they are written (checked against Python's own json / line reading of the book's files)."""

import json
import re

import pandas as pd
import pytest
from conftest import shared_file
from recipe_helpers import (
    FAST_ARGS,
    ascii_text,
    instruction_records,
    labelled_rows,
    load_recipe,
    make_checkpoint,
    preference_records,
    run_recipe,
    write_jsonl,
)

from hf_scratch_gpt.data.arguments import DataArguments
from hf_scratch_gpt.data.classify import tokenize_for_classification
from hf_scratch_gpt.data.instruct import to_messages
from hf_scratch_gpt.data.loading import carve_splits, limit_samples, load_local_file, load_raw_datasets
from hf_scratch_gpt.data.preference import drop_identical_pairs, to_preference_pairs

classifier = load_recipe("finetune_classifier")


def write_json(path, records) -> object:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def chat_records(n: int) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"Say {i}."},
                {"role": "assistant", "content": f"{i}."},
            ]
        }
        for i in range(n)
    ]


def conversational_records(n: int) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": f"Say {i}."}],
            "chosen": [{"role": "assistant", "content": f"{i}."}],
            "rejected": [{"role": "assistant", "content": "No."}],
        }
        for i in range(n)
    ]


# Each recipe format: its records, and the recipe's data path from the files to the examples it trains on.
RECORDS = {
    "alpaca": lambda: instruction_records(20),
    "chat": lambda: chat_records(20),
    "alpaca_preference": lambda: preference_records(20),
    "conversational_preference": lambda: conversational_records(20),
    "classifier": lambda: labelled_rows(20),
}


@pytest.fixture(scope="module")
def tokenizer():
    from scratch_tokenizer.train import train_tokenizer

    return train_tokenizer(texts=[ascii_text(3_000)], vocab_size=280, show_progress=False)


def recipe_data(kind: str, train: str, tokenizer, **files) -> dict:
    """What the recipe for records of `kind` does with its data files, up to the examples it trains on."""
    data_args = DataArguments(train_file=str(train), **{k: str(v) for k, v in files.items()})
    if kind == "classifier":
        raw, text_column, _ = classifier.load_splits(data_args, classifier.ClassifierArguments(), seed=0)
        return tokenize_for_classification(raw, tokenizer, text_column, max_length=64)
    raw = load_raw_datasets(data_args)
    raw = limit_samples(carve_splits(raw, 5.0, 10.0, False), data_args)
    if kind in ("alpaca", "chat"):
        return {split: to_messages(dataset, split) for split, dataset in raw.items()}
    return {
        split: drop_identical_pairs(to_preference_pairs(dataset, split), split)
        for split, dataset in raw.items()
    }


# --- 1. The shape of a file -------------------------------------------------------------------------------------

# (file name, contents from the format's records, what the error must say after naming the file)
BAD_SHAPES = [
    (
        "wrapped.json",
        lambda records: json.dumps({"data": records}),
        r"holds a JSON object with keys \['data'\], not a list of records.*the 20 records are the list under "
        r"'data': make that list the whole file",
    ),
    (
        "columns.json",
        lambda records: json.dumps({key: [r[key] for r in records] for key in records[0]}),
        r"holds a JSON object with keys \[.*\], not a list of records.*one object per record",
    ),
    ("string.json", lambda records: json.dumps("records.json"), r"holds a string, not a list of records"),
    ("number.json", lambda records: "42", r"holds a number, not a list of records"),
    (
        # no ':' after the key on the third line: the error is at its value, column 8 (hand-counted)
        "broken.json",
        lambda records: '[\n  {"a": "x"},\n  {"a" "b"}\n]',
        r"invalid JSON at line 3 column 8: Expecting ':' delimiter",
    ),
    ("empty_list.json", lambda records: "[]", r"holds no records \(an empty list\)"),
    ("blank.json", lambda records: " \n\n", r"holds no records \(the file is blank\)"),
    (
        "not_objects.json",
        lambda records: json.dumps([records[0], "oops", records[2]]),
        r"record 1 is a string, not a JSON object",
    ),
    (
        "line3.jsonl",
        lambda records: "".join(json.dumps(r) + "\n" for r in records[:2]) + "[1, 2]\n",
        r"line 3 holds a list, not a JSON object",
    ),
    (
        "broken_line.jsonl",
        lambda records: json.dumps(records[0]) + "\n" + json.dumps(records[1])[:-1] + "\n",
        r"line 2 is not valid JSON \(column \d+: Expecting ',' delimiter\)",
    ),
    (
        "array.jsonl",
        lambda records: json.dumps(records, indent=2),
        r"line 1 is not valid JSON .*it looks like a JSON list: name the file \.json",
    ),
    ("blank.jsonl", lambda records: "\n\n", r"holds no records \(the file is blank\)"),
    (
        "header.csv",
        lambda records: ",".join(records[0]) + "\n",
        r"holds no records \(a header line only\)",
    ),
]


@pytest.mark.parametrize("kind", sorted(RECORDS))
@pytest.mark.parametrize(("name", "contents", "message"), BAD_SHAPES, ids=[case[0] for case in BAD_SHAPES])
def test_a_file_of_the_wrong_shape_names_the_file_what_it_holds_and_what_was_expected(
    kind, name, contents, message, tokenizer, tmp_path
):
    if name.endswith(".csv") and kind not in ("alpaca", "alpaca_preference", "classifier"):
        pytest.skip("csv files hold flat records only")
    path = tmp_path / name
    path.write_text(contents(RECORDS[kind]()), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"--train_file {re.escape(str(path))}\b.*{message}") as error:
        recipe_data(kind, path, tokenizer)
    assert "expected" in str(error.value)  # and what the file should hold
    if name == "line3.jsonl":  # a list on a later line is a bad record, not a .json file misnamed
        assert "looks like a JSON list" not in str(error.value)
    if name.endswith(".json") and "no records" not in str(error.value):
        assert "expected a list of records" in str(error.value)


@pytest.mark.parametrize(("name", "flag"), [("train.json", "--train_file"), ("test.json", "--test_file")])
def test_the_split_file_with_the_bad_shape_is_the_one_named(name, flag, tokenizer, tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(instruction_records(20)))
    bad = tmp_path / name
    bad.write_text(json.dumps({"data": instruction_records(5)}))
    files = {"train": bad, "test_file": good} if flag == "--train_file" else {"train": good, "test_file": bad}
    with pytest.raises(ValueError, match=rf"^{flag} {re.escape(str(bad))} holds a JSON object"):
        recipe_data("alpaca", files.pop("train"), tokenizer, **files)


def test_zero_record_files_of_every_type(tmp_path):
    (tmp_path / "blank.tsv").write_text("\n \n")
    pd.DataFrame({"text": pd.Series([], dtype=str)}).to_parquet(tmp_path / "none.parquet")
    for name, why in (("blank.tsv", "the file is blank"), ("none.parquet", "0 rows")):
        with pytest.raises(ValueError, match=rf"--train_file .*{name} holds no records \({why}\)"):
            load_local_file(tmp_path / name, "train", ("label", "text"))


def test_parquet_files_are_read(tmp_path):
    """A parquet file is binary: it is read by its reader, not refused as 'not UTF-8'."""
    rows = labelled_rows(6)
    pd.DataFrame(rows).to_parquet(tmp_path / "rows.parquet")
    assert load_local_file(tmp_path / "rows.parquet", "train").to_list() == rows


# --- 2. Records -------------------------------------------------------------------------------------------------

ALPACA_NEEDS = r"Alpaca records need text in 'instruction' and 'output' \('input' is optional\)"
CHAT_NEEDS = (
    r"chat records need 'messages': a list of \{'role': 'system' \| 'user' \| 'assistant', 'content': text\}"
)
PREFERENCE_NEEDS = (
    r"Alpaca preference records need text in 'instruction', 'chosen' and 'rejected' \('input' is optional\)"
)
CONVERSATIONAL_NEEDS = r"conversational preference records need 'prompt'"
CLASSIFIER_NEEDS = r"every record needs 'text' \(--text_column_name\) and 'label' \(--label_column_name\)"
CLASSIFIER_TEXT_NEEDS = r"every record needs text in 'text' \(--text_column_name\)"


def drop(field):
    return lambda record: {k: v for k, v in record.items() if k != field}


def put(field, value):
    return lambda record: {**record, field: value}


def message(field, value, turn=0, key="messages"):
    def change(record):
        turns = [dict(m) for m in record[key]]
        if value is None:
            del turns[turn][field]
        else:
            turns[turn][field] = value
        return {**record, key: turns}

    return change


# (format, change to record 3, the problem the error names, the fields the format needs)
BAD_RECORDS = [
    ("alpaca", drop("output"), r"'output' is missing or null", ALPACA_NEEDS),
    ("alpaca", put("output", None), r"'output' is missing or null", ALPACA_NEEDS),
    ("alpaca", put("output", 5), r"'output' is a number \(5\), not text", ALPACA_NEEDS),
    ("alpaca", drop("instruction"), r"'instruction' is missing or null", ALPACA_NEEDS),
    (
        "alpaca",
        put("instruction", ["a", "b"]),
        r"'instruction' is a list \(\['a', 'b'\]\), not text",
        ALPACA_NEEDS,
    ),
    ("alpaca", put("input", 7), r"'input' is a number \(7\), not text", ALPACA_NEEDS),
    ("chat", put("messages", None), r"'messages' is missing or null", CHAT_NEEDS),
    (
        "chat",
        put("messages", "hi"),
        r"'messages' must be a list of messages, got a string \('hi'\)",
        CHAT_NEEDS,
    ),
    (
        "chat",
        message("content", None, turn=1),
        r"message 1 of 'messages' has no text in 'content'",
        CHAT_NEEDS,
    ),
    ("chat", message("role", None), r"message 0 of 'messages' has no 'role'", CHAT_NEEDS),
    (
        "chat",
        message("role", "bot"),
        r"message 0 of 'messages' has role 'bot' \(the chat template knows 'system', 'user' and 'assistant'\)",
        CHAT_NEEDS,
    ),
    ("alpaca_preference", drop("rejected"), r"'rejected' is missing or null", PREFERENCE_NEEDS),
    ("alpaca_preference", put("chosen", None), r"'chosen' is missing or null", PREFERENCE_NEEDS),
    (
        "alpaca_preference",
        put("rejected", 1.5),
        r"'rejected' is a number \(1.5\), not text",
        PREFERENCE_NEEDS,
    ),
    ("alpaca_preference", drop("instruction"), r"'instruction' is missing or null", PREFERENCE_NEEDS),
    (
        "conversational_preference",
        message("content", None, key="chosen"),
        r"message 0 of 'chosen' has no text in 'content'",
        CONVERSATIONAL_NEEDS,
    ),
    (
        "conversational_preference",
        put("prompt", "Say 3."),
        r"'prompt' must be a list of messages ending with a user turn, got a string \('Say 3.'\)",
        CONVERSATIONAL_NEEDS,
    ),
    (
        "conversational_preference",
        put("rejected", None),
        r"'rejected' is missing or null",
        CONVERSATIONAL_NEEDS,
    ),
    ("classifier", drop("label"), r"'label' is missing or null", CLASSIFIER_NEEDS),
    ("classifier", put("text", None), r"'text' is missing or null", CLASSIFIER_NEEDS),
    ("classifier", put("text", 5), r"'text' is a number \(5\), not text", CLASSIFIER_TEXT_NEEDS),
    (
        "classifier",
        put("text", ""),
        r"'text' is empty \(empty in 1 of the split's 20 records\)",
        CLASSIFIER_TEXT_NEEDS,
    ),
    (
        "classifier",
        put("label", 1),
        r"'label' is a number \(1\) where record 0's is a string",
        "the labels must be all text or all numbers",
    ),
]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
@pytest.mark.parametrize(("kind", "change", "problem", "needs"), BAD_RECORDS)
def test_a_bad_record_names_the_split_its_index_the_field_and_what_the_format_needs(
    kind, change, problem, needs, suffix, tokenizer, tmp_path
):
    records = RECORDS[kind]()
    records[3] = change(records[3])
    write = write_jsonl if suffix == ".jsonl" else write_json
    path = write(tmp_path / f"records{suffix}", records)
    # split files, so that record 3 of the file is record 3 of the training split whatever the recipe shuffles
    held_out = write(tmp_path / f"held_out{suffix}", RECORDS[kind]()[:4])
    with pytest.raises(ValueError, match=rf"^the train split, record 3: {problem}.*{needs}"):
        recipe_data(kind, path, tokenizer, validation_file=held_out, test_file=held_out)


def test_a_bad_record_in_a_carved_split_is_found_before_anything_is_tokenized(tmp_path):
    """Record 19 of 20 lands in the validation split (85/10/5, in file order): its index there is 0."""
    records = preference_records(20)
    records[19]["rejected"] = None
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"^the validation split, record 0: 'rejected' is missing or null"):
        recipe_data("alpaca_preference", path, None)


def test_a_csv_record_with_an_empty_label_cell(tokenizer, tmp_path):
    rows = labelled_rows(10)
    lines = ["text,label", *(f"{r['text']},{r['label']}" for r in rows)]
    lines[5] = "see you later,"  # record 4: no label
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "held.csv").write_text("\n".join(lines[:1] + lines[1:4]) + "\n")
    with pytest.raises(
        ValueError, match=rf"^the train split, record 4: 'label' is missing or null.*{CLASSIFIER_NEEDS}"
    ):
        recipe_data(
            "classifier", tmp_path / "rows.csv", tokenizer, validation_file=tmp_path / "held.csv",
            test_file=tmp_path / "held.csv",
        )  # fmt: skip


# --- 3. End to end: the recipes refuse before training ----------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("base") / "ckpt", ascii_text(5_000))


def assert_nothing_trained(output_dir):
    """No model, adapter, checkpoint or results were written (a run folder may hold only its run record)."""
    if output_dir.exists():
        names = {path.name for path in output_dir.rglob("*")}
        left = names & {"model.safetensors", "adapter_model.safetensors", "config.json", "all_results.json"}
        assert not left and not any(name.startswith("checkpoint-") for name in names), names


END_TO_END = [
    ("finetune_preference", "wrapped.json", {"data": preference_records(20)}, r"holds a JSON object with keys \['data'\]"),
    ("finetune_preference", "missing.json",
     [*preference_records(20)[:2], drop("rejected")(preference_records(1)[0]), *preference_records(20)[2:]],
     r"the train split, record 2: 'rejected' is missing or null"),
    ("finetune_instruct", "wrapped.json", {"data": instruction_records(20)}, r"holds a JSON object with keys \['data'\]"),
    ("finetune_instruct", "missing.json", [*instruction_records(20)[:5], {"instruction": "Hi"}, *instruction_records(20)],
     r"the train split, record 5: 'output' is missing or null"),
]  # fmt: skip


@pytest.mark.parametrize(("recipe", "name", "contents", "match"), END_TO_END)
def test_the_recipes_refuse_bad_data_before_training(recipe, name, contents, match, checkpoint, tmp_path):
    if recipe == "finetune_preference":
        pytest.importorskip("trl", reason="preference tuning needs the trl extra: pip install -e '.[trl]'")
    path = tmp_path / name
    path.write_text(json.dumps(contents))
    output_dir = tmp_path / "out"
    args = [
        "--model_name_or_path",
        str(checkpoint),
        "--train_file",
        str(path),
        "--output_dir",
        str(output_dir),
    ]
    with pytest.raises(ValueError, match=match):
        run_recipe(recipe, [*args, "--max_steps", "1", *FAST_ARGS])
    assert_nothing_trained(output_dir)


# --- 4. Valid files load as written -----------------------------------------------------------------------------


def user_turn(record: dict) -> str:
    """The book's prompt text: the instruction, then a blank line and the input when there is one."""
    return record["instruction"] + (f"\n\n{record['input']}" if record["input"] else "")


@pytest.mark.parametrize("suffix", [".json", ".jsonl", "lines.json", ".parquet"])
def test_the_books_instruction_data_loads_as_written(suffix, tmp_path):
    records = json.loads(shared_file("instruction-data.json").read_text(encoding="utf-8"))
    path = shared_file("instruction-data.json")
    if suffix == ".jsonl":
        path = write_jsonl(tmp_path / "records.jsonl", records)
    elif suffix == "lines.json":  # JSON Lines in a .json file, which the json reader also takes
        path = write_jsonl(tmp_path / "records.json", records)
    elif suffix == ".parquet":
        path = tmp_path / "records.parquet"
        pd.DataFrame(records).to_parquet(path)
    loaded = load_raw_datasets(DataArguments(train_file=str(path)))
    assert loaded["train"].to_list() == records and len(records) == 1100
    chats = to_messages(loaded["train"])
    expected = [
        [{"role": "user", "content": user_turn(r)}, {"role": "assistant", "content": r["output"]}]
        for r in records
    ]
    assert chats["messages"][:] == expected


def test_the_books_preference_data_loads_as_written():
    path = shared_file("instruction-data-with-preference.json")
    records = json.loads(path.read_text(encoding="utf-8"))
    loaded = load_raw_datasets(DataArguments(train_file=str(path)))
    assert loaded["train"].to_list() == records and len(records) == 1100
    pairs = to_preference_pairs(loaded["train"])
    assert pairs["prompt"][:] == [[{"role": "user", "content": user_turn(r)}] for r in records]
    assert pairs["chosen"][:] == [[{"role": "assistant", "content": r["chosen"]}] for r in records]
    assert pairs["rejected"][:] == [[{"role": "assistant", "content": r["rejected"]}] for r in records]


def test_the_sms_spam_collection_loads_as_written():
    path = shared_file("SMSSpamCollection")
    lines = path.read_text(encoding="utf-8").splitlines()
    expected = [
        dict(zip(("label", "text"), line.split("\t", 1), strict=True)) for line in lines if line.strip()
    ]
    loaded = load_raw_datasets(DataArguments(train_file=str(path)), expected_columns=("label", "text"))
    assert len(expected) == 5574 and loaded["train"].to_list() == expected
    splits, _, labels = classifier.load_splits(
        DataArguments(train_file=str(path)), classifier.ClassifierArguments(), seed=0
    )
    assert labels == ["ham", "spam"] and sum(len(split) for split in splits.values()) == 5574
