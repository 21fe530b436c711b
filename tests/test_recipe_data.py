"""Unit tests of the recipes' data stage: readers, splits, packing with character counts, labels, balancing."""

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from hypothesis import given, settings
from hypothesis import strategies as st
from recipe_helpers import ascii_text

from hf_scratch_gpt.data.classify import balance_classes, encode_labels, label_names
from hf_scratch_gpt.data.lm import TextUnits, pack_function, text_units, token_char_counts, tokenize_function
from hf_scratch_gpt.data.loading import carve_splits, load_local_file, read_tab_separated, split_off
from scratch_tokenizer.text_files import require_utf8


@pytest.fixture(scope="module")
def tokenizer():
    from scratch_tokenizer.train import train_tokenizer

    return train_tokenizer(
        texts=[ascii_text(20_000), "héllo wörld 😀 한국어 naïve café"], vocab_size=320, show_progress=False
    )


def test_token_char_counts_hand_example():
    # "é" is split across two byte tokens: it is charged to the token it ends in.
    assert token_char_counts("héllo", [(0, 1), (1, 2), (1, 2), (2, 5)]) == ([1, 1, 0, 3], [1, 2, 0, 3])


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_every_character_and_byte_is_charged_once(tokenizer, text):
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    chars, n_bytes = token_char_counts(text, encoded["offset_mapping"])
    assert len(chars) == len(encoded["input_ids"])
    assert sum(chars) == len(text)
    assert sum(n_bytes) == len(text.encode("utf-8", errors="surrogatepass"))


def test_ascii_token_char_counts_equal_decoded_token_lengths(tokenizer):
    text = ascii_text(3000)
    out = tokenize_function(tokenizer, "text", append_eos=True, count_chars=True)({"text": [text]})
    decoded = [len(tokenizer.decode([token])) for token in out["input_ids"][0][:-1]]
    assert out["token_chars"][0] == [*decoded, 0]  # the EOS separator covers no text
    assert out["input_ids"][0][-1] == tokenizer.eos_token_id


def test_pack_cuts_blocks_and_counts_the_predicted_tokens():
    batch = {"input_ids": [[1, 2, 3], [4, 5, 6, 7]], "token_chars": [[1, 2, 3], [4, 5, 6, 7]]}
    batch["token_bytes"] = batch["token_chars"]
    packed = pack_function(block_size=3)(batch)
    assert packed["input_ids"] == [[1, 2, 3], [4, 5, 6]] and packed["labels"] == packed["input_ids"]
    assert packed["n_chars"] == [2 + 3, 5 + 6]  # positions 1..2 of each block; token 7 is dropped
    units = text_units(Dataset.from_dict(packed))
    assert units == TextUnits(n_predicted_tokens=4, n_chars=16, n_bytes=16)


def test_tab_separated_with_and_without_header(tmp_path):
    headerless = tmp_path / "sms"
    headerless.write_text('ham\tOk lar... "quoted" text\nspam\tFree entry\twith a tab\n\n')
    rows = read_tab_separated(headerless, ("label", "text"))
    assert rows.column_names == ["label", "text"]
    assert rows["text"][:] == [
        'Ok lar... "quoted" text',
        "Free entry\twith a tab",
    ]  # quotes kept, one row per line
    with_header = tmp_path / "data.tsv"
    with_header.write_text("text\tlabel\nhello\tham\n")
    assert load_local_file(with_header, "train", ("label", "text"))[0] == {"text": "hello", "label": "ham"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("ham\tfine\nno tab here\n")
    with pytest.raises(ValueError, match=r"bad.tsv, line 2: expected 2 tab-separated fields"):
        read_tab_separated(bad, ("label", "text"))


def test_local_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--validation_file .*nope.csv does not exist"):
        load_local_file(tmp_path / "nope.csv", "validation")
    (tmp_path / "data.xml").write_text("<a/>")
    with pytest.raises(ValueError, match="unknown file type '.xml'"):
        load_local_file(tmp_path / "data.xml", "train")


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 1 << 20])
def test_non_utf8_is_found_at_its_byte_offset_across_chunk_borders(tmp_path, chunk_bytes):
    # "한" is 3 bytes and "🤗" 4, so small chunks cut characters in two; the bad byte 0xff sits at offset 2+3+4.
    path = tmp_path / "mixed.txt"
    path.write_bytes("a\n한🤗".encode() + b"\xff" + b"tail")
    with pytest.raises(
        ValueError, match=r"--train_file .*mixed.txt is not UTF-8: byte 0xff at byte offset 9 "
    ):
        require_utf8(path, "--train_file", chunk_bytes=chunk_bytes)
    # A file cut in the middle of a character: the incomplete 4-byte "🤗" starts at offset 1.
    path.write_bytes("a🤗".encode()[:-1])
    with pytest.raises(ValueError, match=r"byte 0xf0 at byte offset 1 \(unexpected end of data\)"):
        require_utf8(path, "--train_file", chunk_bytes=chunk_bytes)
    path.write_text("a\n한🤗 fine", encoding="utf-8")
    require_utf8(path, "--train_file", chunk_bytes=chunk_bytes)  # valid UTF-8: no error


def test_text_file_rows_concatenate_back_to_the_file(tmp_path):
    text = "First line\n\nThird line, no newline at the end"
    (tmp_path / "t.txt").write_text(text)
    assert "".join(load_local_file(tmp_path / "t.txt", "train")["text"]) == text


def test_split_off_takes_the_tail_or_a_random_sample():
    dataset = Dataset.from_dict({"x": list(range(10))})
    ordered = split_off(dataset, 20, shuffle=False)
    assert ordered["train"]["x"][:] == list(range(8)) and ordered["validation"]["x"][:] == [8, 9]
    shuffled = split_off(dataset, 20, shuffle=True, seed=1)
    assert sorted(shuffled["train"]["x"][:] + shuffled["validation"]["x"][:]) == list(range(10))
    with pytest.raises(ValueError, match="between 0 and 100"):
        split_off(dataset, 100, shuffle=False)


def test_carve_splits_uses_the_books_arithmetic():
    records = DatasetDict({"train": Dataset.from_dict({"x": list(range(1100))})})
    splits = carve_splits(records, validation_percentage=5, test_percentage=10, shuffle=False)
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 935,
        "validation": 55,
        "test": 110,
    }
    assert splits["test"]["x"][0] == 935 and splits["validation"]["x"][0] == 1045  # train | test | validation
    with_validation = DatasetDict(
        {"train": records["train"], "validation": records["train"].select(range(3))}
    )
    assert len(carve_splits(with_validation, 5, 10, shuffle=False)["test"]) == 110


def test_balance_classes_downsamples_to_the_smallest_class():
    dataset = Dataset.from_dict({"label": ["a"] * 7 + ["b"] * 3 + ["c"] * 4, "i": list(range(14))})
    balanced = balance_classes(dataset, "label", seed=0)
    labels = balanced["label"][:]
    assert labels.count("a") == labels.count("b") == labels.count("c") == 3
    assert sorted(i for i, label in zip(balanced["i"], labels, strict=True) if label == "b") == [7, 8, 9]


def test_labels_from_classlabel_and_strings():
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    train = Dataset.from_dict({"text": ["a", "b"], "label": [1, 0]}, features=features)
    assert label_names(train, "label") == ["neg", "pos"]
    encoded = encode_labels(DatasetDict({"train": train}), "label", ["neg", "pos"])
    assert encoded["train"]["labels"][:] == [1, 0]
    strings = Dataset.from_dict({"text": ["a", "b", "c"], "label": ["spam", "ham", "spam"]})
    assert label_names(strings, "label") == ["ham", "spam"]
