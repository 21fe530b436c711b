"""Stage 4, text and records -> training examples: what each recipe feeds the Trainer.

arguments.py       the data flags every recipe shares (`--train_file`, `--dataset_name`, ...)
loading.py         raw datasets from the Hub or local files, checked; splits carved when missing
lm.py              pretraining: tokenize, pack into blocks, count the characters and bytes each block covers
classify.py        classification: labels to ids, class balancing, the book's spam split
instruct.py        instruction finetuning: records -> chat messages -> ids, loss on the answers only
instruct_tasks.py  the built-in instruction task set (answers computed, seeded, disjoint splits)
preference.py      preference pairs for DPO, in TRL's conversational format
"""


def __getattr__(name: str):
    """The flat layout's module `data` is `hf_scratch_gpt.data.loading` now: old imports of its names still work."""
    from hf_scratch_gpt._moved import moved_attribute

    value = moved_attribute(__name__, "hf_scratch_gpt.data.loading", name)
    globals()[name] = value  # warned once; later lookups find it here
    return value
