"""The built-in task set's answers recomputed from a record's text alone (independent of the generator's code).

Shared by the task-set tests and the browser test that checks a trained model's answers in the Space.
"""

import re

from hf_scratch_gpt.data.instruct_tasks import WORDS


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
