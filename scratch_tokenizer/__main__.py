"""`python -m scratch_tokenizer`: train a byte-level BPE tokenizer (see scratch_tokenizer.train)."""

from scratch_tokenizer.train import main

main()
