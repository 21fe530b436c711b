"""`python -m scratch_tokenizer`: train a byte-level BPE tokenizer (see scratch_tokenizer.train)."""

from scratch_tokenizer.train import main

if __name__ == "__main__":  # importing it (a tool walking the package) runs nothing
    main()
