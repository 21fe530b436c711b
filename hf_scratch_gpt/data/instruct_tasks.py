"""The built-in instruction task set: Alpaca records whose answers are computed, for the offline path.

Like the built-in pretraining corpus, this needs no download: code generates instruction records with a seed,
and every answer is computed from the record (so exact match is a fair score). Each task family has several
phrasings of its instruction; some put the data in the `input` field, some in the instruction itself, as
Alpaca data does. Answers are a few tokens long and the lists short (1-4 words from a 40-word vocabulary,
single digits for arithmetic), so a ~1M-parameter base learns them in minutes.

| family | example instruction (input) | output |
|---|---|---|
| reverse_words | Reverse the order of these words. (red cat blue) | blue cat red |
| sort_words | Sort these words alphabetically. (red cat blue) | blue cat red |
| count_words | How many words are in this text? (red cat blue) | 3 |
| first_word | What is the first word? (red cat blue) | red |
| last_word | What is the last word? (red cat blue) | blue |
| uppercase | Write this in capital letters. (cat) | CAT |
| join_commas | Join these words with commas. (red cat blue) | red, cat, blue |
| repeat_word | Repeat the word "cat" 3 times. | cat cat cat |
| add | What is 8 + 7? | 15 |
| subtract | Subtract 3 from 8. | 5 |
| max_number | Which number is the largest? (4, 9, 2) | 9 |
| even_odd | Is 14 even or odd? | even |

`DEFAULT_FAMILIES` (all but `uppercase` and `subtract`) is used unless families are named.

Conversations: a share of the records (`multiturn_share`, DEFAULT_MULTITURN_SHARE) are conversations of 2 to
MAX_TURNS user turns, each turn a record of its own (any family, its own data, answered correctly), so a chat model
learns to answer the last question rather than repeat an earlier answer. A record's `instruction`, `input`, `output`
and `family` are its last turn, the one a test scores; `history` lists the earlier turns, oldest first, as records
of the same four fields ([] for a single-turn record). The data of a turn never depends on an earlier one.

Splits never share an (instruction, input) pair, in any turn: the validation and test records are drawn first (every
turn distinct), and no turn of a training record repeats one of theirs (training turns may repeat each other: small
families such as `add` have a few hundred distinct records). The same seed gives the same records.

Usage:

    splits = instruct_task_splits(n_train=12000, n_validation=200, n_test=200, seed=42)  # a DatasetDict
    splits["train"][0]  # {"instruction": ..., "input": ..., "output": ..., "family": ..., "history": [...]}
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from datasets import Dataset, DatasetDict

WORDS = [
    "apple",
    "bird",
    "blue",
    "book",
    "cake",
    "cat",
    "cloud",
    "dog",
    "door",
    "fish",
    "frog",
    "green",
    "hat",
    "house",
    "king",
    "lamp",
    "leaf",
    "lion",
    "milk",
    "moon",
    "nut",
    "owl",
    "pen",
    "pig",
    "rain",
    "red",
    "ring",
    "rose",
    "sea",
    "ship",
    "sky",
    "snow",
    "star",
    "sun",
    "tea",
    "tree",
    "wind",
    "wolf",
    "yellow",
    "zoo",
]


@dataclass(frozen=True)
class TaskFamily:
    """Instruction phrasings plus a generator: `make(rng)` -> (values for the phrasing, input text, output).

    A phrasing is a format string over the values; "{data}" in it puts the data into the instruction and leaves
    the input empty.
    """

    phrasings: tuple[str, ...]
    make: Callable[[random.Random], tuple[dict, str]]


def _words(rng: random.Random, low: int = 3, high: int = 5) -> list[str]:
    return rng.sample(WORDS, rng.randint(low, high))


def _list_task(answer: Callable[[list[str]], str], low: int = 3, high: int = 5):
    def make(rng: random.Random) -> tuple[dict, str]:
        words = _words(rng, low, high)
        return {"data": " ".join(words)}, answer(words)

    return make


def _repeat(rng: random.Random) -> tuple[dict, str]:
    word, times = rng.choice(WORDS), rng.randint(2, 3)
    return {"word": word, "times": times}, " ".join([word] * times)


def _add(rng: random.Random) -> tuple[dict, str]:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    return {"a": a, "b": b}, str(a + b)


def _subtract(rng: random.Random) -> tuple[dict, str]:
    a = rng.randint(0, 9)
    b = rng.randint(a, 9)
    return {"a": a, "b": b}, str(b - a)  # "subtract a from b": single digits, never negative


def _max_number(rng: random.Random) -> tuple[dict, str]:
    numbers = rng.sample(range(10), rng.randint(2, 3))
    return {"data": ", ".join(map(str, numbers))}, str(max(numbers))


def _even_odd(rng: random.Random) -> tuple[dict, str]:
    n = rng.randint(0, 99)
    return {"n": n}, "even" if n % 2 == 0 else "odd"


TASK_FAMILIES: dict[str, TaskFamily] = {
    "reverse_words": TaskFamily(
        (
            "Reverse the order of these words.",
            "Write the words in reverse order.",
            "Reverse the word order: {data}",
            "Put these words backwards, last word first.",
        ),
        _list_task(lambda words: " ".join(reversed(words)), 2, 3),
    ),
    "sort_words": TaskFamily(
        (
            "Sort these words alphabetically.",
            "Put the words in alphabetical order.",
            "Sort alphabetically: {data}",
        ),
        _list_task(lambda words: " ".join(sorted(words)), 2, 3),
    ),
    "count_words": TaskFamily(
        (
            "How many words are in this text?",
            "Count the words.",
            "How many words are there in: {data}",
        ),
        _list_task(lambda words: str(len(words)), 1, 4),
    ),
    "first_word": TaskFamily(
        ("What is the first word?", "Give the first word of the text.", "Which word comes first in: {data}"),
        _list_task(lambda words: words[0], 2, 4),
    ),
    "last_word": TaskFamily(
        ("What is the last word?", "Give the last word of the text.", "Which word comes last in: {data}"),
        _list_task(lambda words: words[-1], 2, 4),
    ),
    "uppercase": TaskFamily(
        ("Write this in capital letters.", "Convert the text to uppercase.", "Uppercase: {data}"),
        _list_task(lambda words: " ".join(words).upper(), 1, 1),
    ),
    "join_commas": TaskFamily(
        (
            "Join these words with commas.",
            "Separate the words with commas.",
            "Make a comma-separated list: {data}",
        ),
        _list_task(", ".join, 2, 3),
    ),
    "repeat_word": TaskFamily(
        (
            'Repeat the word "{word}" {times} times.',
            "Write {word} {times} times.",
            'Say "{word}" {times} times, separated by spaces.',
        ),
        _repeat,
    ),
    "add": TaskFamily(("What is {a} + {b}?", "Add {a} and {b}.", "What is the sum of {a} and {b}?"), _add),
    "subtract": TaskFamily(
        ("What is {b} - {a}?", "Subtract {a} from {b}.", "Take {a} away from {b}."), _subtract
    ),
    "max_number": TaskFamily(
        ("Which number is the largest?", "Find the biggest number.", "What is the largest of: {data}"),
        _max_number,
    ),
    "even_odd": TaskFamily(
        ("Is {n} even or odd?", "Is the number {n} odd or even?", "Say whether {n} is even or odd."),
        _even_odd,
    ),
}


# The default set: the families the main job's 1.2M-parameter base learns in its 10 default epochs. `uppercase` and
# `subtract` are left out: they need a mapping learned per token or per pair of digits, and that base gets only
# about 60% of them right, against 71-100% for each of the others (benchmarks/RESULTS.md). Ask for them with
# --task_families.
DEFAULT_FAMILIES = tuple(name for name in TASK_FAMILIES if name not in ("uppercase", "subtract"))

MAX_TURNS = 4  # user turns in a conversation: 2 to this many
# The share of each split's records that are conversations (the recipe's --task_multiturn_share). Half: at the same
# training tokens as a quarter (12,000 records instead of 16,000), the README's flow answered both single questions
# and the last turn of a conversation better (benchmarks/RESULTS.md).
DEFAULT_MULTITURN_SHARE = 0.5
DEFAULT_TRAIN_EXAMPLES = 12000  # training records (the recipe's --task_train_examples)


def check_families(families: Sequence[str] | None) -> list[str]:
    """The family names to use (DEFAULT_FAMILIES when None), or a ValueError naming what is wrong."""
    names = list(DEFAULT_FAMILIES) if families is None else list(families)
    if not names:
        raise ValueError(f"the task set is empty: name at least one task family of {sorted(TASK_FAMILIES)}")
    unknown = [name for name in names if name not in TASK_FAMILIES]
    if unknown:
        raise ValueError(f"unknown task family {unknown}: choose from {sorted(TASK_FAMILIES)}")
    return names


def make_record(family: str, rng: random.Random) -> dict:
    """One Alpaca record of `family`, with its phrasing drawn from `rng`."""
    task = TASK_FAMILIES[family]
    phrasing = rng.choice(task.phrasings)
    values, output = task.make(rng)
    instruction = phrasing.format(**values)
    data = values.get("data", "")
    return {
        "instruction": instruction,
        "input": "" if "{data}" in phrasing else data,
        "output": output,
        "family": family,
    }


def instruct_task_records(
    n: int,
    families: Sequence[str] | None = None,
    seed: int = 0,
    exclude: set[tuple[str, str]] | None = None,
    distinct: bool = True,
    rng: random.Random | None = None,
    multiturn_share: float = 0.0,
    max_turns: int = MAX_TURNS,
) -> list[dict]:
    """`n` records drawn under `seed` (or from `rng`); round(n * multiturn_share) of them are conversations.

    The single-turn records and the conversations' last turns each take the families in turn; a conversation has
    2 to `max_turns` user turns (uniform), its earlier turns of families drawn at random. No turn has an
    (instruction, input) pair in `exclude`; with `distinct` no two turns anywhere share one (otherwise a turn may
    come again, as a small family's records must in a big training split).
    """
    names = check_families(families)
    if n < 1:
        raise ValueError(f"the task set is empty: ask for at least one record, not {n}")
    if not 0 <= multiturn_share <= 1:
        raise ValueError(
            f"the share of conversations (--task_multiturn_share) must be in [0, 1], not {multiturn_share}"
        )
    if max_turns < 2:
        raise ValueError(f"a conversation has at least 2 user turns: max_turns {max_turns} is too few")
    rng = rng or random.Random(seed)
    refused = set(exclude or ())  # with `distinct`, every key drawn joins it
    n_conversations = round(n * multiturn_share)
    records: list[dict] = []
    drawn = {False: 0, True: 0}  # single-turn records, conversations: each kind cycles through the families

    def draw(family: str) -> dict:
        for _ in range(2000):  # draws in a row that were refused: a family with no record left stops here
            turn = make_record(family, rng)
            key = (turn["instruction"], turn["input"])
            if key not in refused:
                if distinct:
                    refused.add(key)
                return turn
        raise ValueError(
            f"the task families {names} gave only {len(records)} records, fewer than the {n} asked for "
            f"({family} has no more distinct ones): ask for fewer records or add families"
        )

    for index in range(n):
        # Conversations spread evenly through the list: record `index` is one when the count due so far grows.
        conversation = (index + 1) * n_conversations // n > index * n_conversations // n
        last = names[drawn[conversation] % len(names)]
        drawn[conversation] += 1
        earlier = [rng.choice(names) for _ in range(rng.randint(2, max_turns) - 1)] if conversation else []
        turns = [draw(family) for family in [*earlier, last]]
        records.append({**turns[-1], "history": turns[:-1]})
    return records


def instruct_task_splits(
    families: Sequence[str] | None = None,
    n_train: int = DEFAULT_TRAIN_EXAMPLES,
    n_validation: int = 200,
    n_test: int = 200,
    seed: int = 0,
    multiturn_share: float = DEFAULT_MULTITURN_SHARE,
    max_turns: int = MAX_TURNS,
) -> DatasetDict:
    """Train / validation / test splits of the built-in task set; no (instruction, input) is in two splits.

    Each split has round(size * multiturn_share) conversations. The test records are drawn first, then the
    validation records, every turn distinct from all before; the training records never repeat a held-out turn,
    but may repeat each other (a family such as `add` has only a few hundred distinct records).
    """
    if min(n_train, n_validation, n_test) < 1:
        raise ValueError(
            f"every split needs at least one record, got train {n_train}, validation {n_validation}, test {n_test}"
        )
    rng = random.Random(seed)
    held_out: set[tuple[str, str]] = set()  # every turn of the test and validation records
    splits = {}
    for split, n in (("test", n_test), ("validation", n_validation), ("train", n_train)):
        records = instruct_task_records(
            n, families, exclude=held_out, distinct=split != "train", rng=rng,
            multiturn_share=multiturn_share, max_turns=max_turns,
        )  # fmt: skip
        rng.shuffle(records)  # the conversations, drawn evenly spread, anywhere in the split
        held_out.update((turn["instruction"], turn["input"]) for r in records for turn in [*r["history"], r])
        splits[split] = Dataset.from_list(records)
    return DatasetDict({split: splits[split] for split in ("train", "validation", "test")})
