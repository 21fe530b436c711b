"""Stage 1, text -> tokens: hf_scratch_gpt's byte-level BPE, in a package of its own that never imports torch.

    bpe.py             the tokenizer written from scratch: GPT-2's regex, `get_stats` / `merge`, training, encode
    hf_tokenizer.py    our merges as a Hugging Face fast tokenizer, with the chat template
    default_corpus.py  the built-in training text (Python's own help pages)
    text_files.py      the UTF-8 check every reader of user files runs first
    train.py           the tokenizer as a job: Python API and the command line (`python -m scratch_tokenizer`)

It is separate from `hf_scratch_gpt` because `import hf_scratch_gpt` registers the model with transformers, which
imports torch; training a tokenizer needs none of that.
"""
