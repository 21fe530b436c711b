"""The built-in instruction task set: deterministic under its seed, answers right, splits disjoint, bad input."""

from collections import Counter

import pytest
from task_answers import solve

from hf_scratch_gpt.data.instruct_tasks import (
    DEFAULT_FAMILIES,
    DEFAULT_MULTITURN_SHARE,
    TASK_FAMILIES,
    instruct_task_records,
    instruct_task_splits,
)


@pytest.fixture(scope="module")
def splits():
    return instruct_task_splits(list(TASK_FAMILIES), n_train=1200, n_validation=120, n_test=120, seed=7)


def turns(record: dict) -> list[dict]:
    """Every turn of a record, oldest first: its history, then the record itself (the last turn)."""
    return [*record["history"], record]


def test_every_answer_is_right(splits):
    for split in splits.values():
        for record in split:
            for turn in turns(record):
                assert turn["output"] == solve(turn), record


def test_splits_do_not_overlap_in_any_turn_and_hold_every_family(splits):
    keys = {
        name: [(t["instruction"], t["input"]) for r in split for t in turns(r)]
        for name, split in splits.items()
    }
    for name in ("validation", "test"):
        assert (
            len(keys[name]) == len(set(keys[name])) > 120
        )  # every held-out turn distinct, conversations too
    train, validation, test = (set(keys[name]) for name in ("train", "validation", "test"))
    assert len(splits["train"]) == 1200 and len(splits["validation"]) == len(splits["test"]) == 120
    assert not train & validation and not train & test and not validation & test
    for split in splits.values():
        assert set(split["family"]) == set(TASK_FAMILIES)


def test_a_share_of_each_split_are_conversations_of_2_to_4_turns(splits):
    for name, size in (("train", 1200), ("validation", 120), ("test", 120)):
        conversations = [r for r in splits[name] if r["history"]]
        assert len(conversations) == round(size * DEFAULT_MULTITURN_SHARE)
        assert {len(r["history"]) + 1 for r in conversations} == {2, 3, 4}
        # the scored (last) turns take the families in turn: each family about as often
        last = Counter(r["family"] for r in conversations)
        assert set(last) == set(TASK_FAMILIES) and max(last.values()) - min(last.values()) <= 1
    # earlier turns are of any family, the last turn's own too
    train = [r for r in splits["train"] if r["history"]]
    assert {t["family"] for r in train for t in r["history"]} == set(TASK_FAMILIES)
    assert any(r["history"][-1]["family"] == r["family"] for r in train)


def test_share_0_gives_single_turn_records_only_and_1_conversations_only():
    single = instruct_task_splits(n_train=50, n_validation=10, n_test=10, seed=0, multiturn_share=0.0)
    assert all(not r["history"] for split in single.values() for r in split)
    chats = instruct_task_splits(n_train=50, n_validation=10, n_test=10, seed=0, multiturn_share=1.0)
    assert all(2 <= len(r["history"]) + 1 <= 4 for split in chats.values() for r in split)


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
            {"families": ["even_odd"], "n_validation": 200, "n_test": 200, "multiturn_share": 0},
            # 100 numbers x 3 phrasings: the test split takes 200, the validation split gets only 100
            r"gave only 100 records, fewer than the 200 asked for \(even_odd has no more distinct ones\)",
        ),
        ({"multiturn_share": 1.5}, r"share of conversations \(--task_multiturn_share\) must be in \[0, 1\]"),
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
