"""The built-in instruction task set: deterministic under its seed, answers right, splits disjoint, bad input."""

import re

import pytest

from hf_scratch_gpt.data.instruct_tasks import (
    DEFAULT_FAMILIES,
    TASK_FAMILIES,
    WORDS,
    instruct_task_records,
    instruct_task_splits,
)


def data_of(record: dict) -> str:
    """The record's data: its input, or what follows the colon of an instruction that holds the data."""
    return record["input"] or record["instruction"].rsplit(": ", 1)[-1]


def numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def solve(record: dict) -> str:
    """The answer recomputed from the record's text alone (independent of the generator's code)."""
    family, text = record["family"], record["instruction"]
    words = data_of(record).split()
    if family == "reverse_words":
        return " ".join(words[::-1])
    if family == "sort_words":
        return " ".join(sorted(words))
    if family == "count_words":
        return str(len(words))
    if family == "first_word":
        return words[0]
    if family == "last_word":
        return words[-1]
    if family == "uppercase":
        return data_of(record).upper()
    if family == "join_commas":
        return ", ".join(words)
    if family == "repeat_word":
        word = next(w.strip('"') for w in text.split() if w.strip('"') in WORDS)
        return " ".join([word] * numbers(text)[0])
    if family == "add":
        return str(sum(numbers(text)))
    if family == "subtract":
        a, b = numbers(text)
        return str(
            a - b if " - " in text else b - a
        )  # "b - a?" vs "Subtract a from b" / "Take a away from b"
    if family == "max_number":
        return str(max(numbers(data_of(record))))
    if family == "even_odd":
        return "odd" if numbers(text)[0] % 2 else "even"
    raise AssertionError(f"no solver for {family}")


@pytest.fixture(scope="module")
def splits():
    return instruct_task_splits(list(TASK_FAMILIES), n_train=1200, n_validation=120, n_test=120, seed=7)


def test_every_answer_is_right(splits):
    for split in splits.values():
        for record in split:
            assert record["output"] == solve(record), record


def test_splits_do_not_overlap_and_hold_every_family(splits):
    keys = {name: {(r["instruction"], r["input"]) for r in split} for name, split in splits.items()}
    assert len(splits["train"]) == 1200 and len(keys["validation"]) == len(keys["test"]) == 120  # distinct
    assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    for split in splits.values():
        assert set(split["family"]) == set(TASK_FAMILIES)


def test_the_same_seed_gives_the_same_records_and_another_seed_others(splits):
    again = instruct_task_splits(list(TASK_FAMILIES), n_train=1200, n_validation=120, n_test=120, seed=7)
    assert all(again[name].to_list() == splits[name].to_list() for name in splits)
    other = instruct_task_splits(list(TASK_FAMILIES), n_train=1200, n_validation=120, n_test=120, seed=8)
    assert other["test"].to_list() != splits["test"].to_list()


def test_several_phrasings_per_family_and_short_answers(splits):
    train = splits["train"]
    for family, task in TASK_FAMILIES.items():
        phrasings = {r["instruction"] for r in train if r["family"] == family}
        assert len(task.phrasings) >= 3 and len(phrasings) >= 3
    assert max(len(output.split()) for output in train["output"]) <= 5


def test_a_chosen_family_only_and_a_training_split_bigger_than_the_family():
    records = instruct_task_records(30, families=["add"], seed=0)
    assert {r["family"] for r in records} == {"add"} and len(records) == 30
    # add has 10 x 10 x 3 = 300 distinct records: 1,000 training records repeat some, never a held-out one
    splits = instruct_task_splits(families=["add"], n_train=1000, n_validation=20, n_test=20, seed=0)
    train = {(r["instruction"], r["input"]) for r in splits["train"]}
    assert len(splits["train"]) == 1000 and len(train) <= 300 - 40
    assert not train & {(r["instruction"], r["input"]) for r in splits["test"]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"families": ["add", "translate"]}, r"unknown task family \['translate'\]: choose from \["),
        ({"families": []}, "the task set is empty: name at least one task family"),
        ({"n_test": 0}, "every split needs at least one record"),
        (
            {"families": ["even_odd"], "n_validation": 200, "n_test": 200},  # 100 numbers x 3 phrasings
            r"gave only 300 records, fewer than the 400 asked for \(even_odd has no more distinct ones\)",
        ),
    ],
)
def test_bad_task_sets_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        instruct_task_splits(**kwargs)


def test_the_default_set_leaves_out_the_two_families_a_small_base_does_not_learn():
    default = instruct_task_splits(n_train=100, n_validation=20, n_test=20, seed=0)
    assert (
        set(default["train"]["family"])
        == set(DEFAULT_FAMILIES)
        == set(TASK_FAMILIES) - {"uppercase", "subtract"}
    )
