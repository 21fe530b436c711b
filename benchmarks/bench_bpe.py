"""Speed and quality of our pure-Python BPE trainer against HF `tokenizers`' Rust BpeTrainer.

Both train on the same files (minus a held-out tail) with the same regex, byte-level initial alphabet,
vocabulary size and special token. Runs are interleaved (HF, ours, ours, HF, ...) so machine load hits both
alike; the script prints each run, the time ratio ours/HF and bytes per token on the held-out text.

    .venv/bin/python benchmarks/bench_bpe.py
    .venv/bin/python benchmarks/bench_bpe.py ../shared/data/tinyshakespeare.txt --vocab_size 2048 --rounds 1

Target: a time ratio <= 3.0 on a 2-core CPU at vocab 8192 on the default files, and bytes per token within 1% of
HF's. Measured figures: benchmarks/RESULTS.md.
"""

import argparse
import time
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from scratch_tokenizer.bpe import GPT2_SPLIT_PATTERN, train_bpe
from scratch_tokenizer.hf_tokenizer import byte_level_pre_tokenizer

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DEFAULT_FILES = [DATA / "shakespeare_gutenberg_42works.txt", DATA / "kjv_bible.txt"]
SPECIAL = "<|endoftext|>"


def split_held_out(text: str, fraction: float) -> tuple[str, str]:
    """(train, held_out): the held-out part is the last `fraction` of the text, cut at a line start."""
    cut = text.rfind("\n", 0, int(len(text) * (1 - fraction))) + 1
    return text[:cut], text[cut:]


def train_hf(texts: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = byte_level_pre_tokenizer(GPT2_SPLIT_PATTERN)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--vocab_size", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each trainer")
    parser.add_argument("--held_out", type=float, default=0.05, help="fraction at the end of each file")
    args = parser.parse_args()

    train_texts, held_out = [], []
    for path in args.files:
        train, test = split_held_out(path.read_text(encoding="utf-8"), args.held_out)
        train_texts.append(train)
        held_out.append(test)
    n_chars = sum(map(len, train_texts))
    print(f"training on {n_chars:,} characters from {len(args.files)} files, vocab_size {args.vocab_size}")

    times = {"hf": [], "ours": []}
    trained = {}
    for r in range(args.rounds):
        order = ["hf", "ours"] if r % 2 == 0 else ["ours", "hf"]  # alternate who goes first
        for name in order:
            start = time.perf_counter()
            if name == "hf":
                trained[name] = train_hf(train_texts, args.vocab_size)
            else:
                trained[name] = train_bpe(train_texts, args.vocab_size, [SPECIAL], show_progress=False)
            times[name].append(time.perf_counter() - start)
            print(f"round {r + 1}: {name:>4} {times[name][-1]:6.2f} s")

    hf_vocab = trained["hf"].get_vocab_size()
    ours_vocab = trained["ours"].vocab_size
    ratio = sum(times["ours"]) / sum(times["hf"])
    best_ratio = min(times["ours"]) / min(times["hf"])
    print(
        f"time ratio ours/HF: {ratio:.2f} (total over rounds), {best_ratio:.2f} (best run each); target <= 3.0"
    )

    n_bytes = sum(len(t.encode("utf-8")) for t in held_out)
    hf_tokens = sum(len(trained["hf"].encode(t).ids) for t in held_out)
    ours_tokens = sum(len(trained["ours"].encode(t)) for t in held_out)
    hf_bpt, ours_bpt = n_bytes / hf_tokens, n_bytes / ours_tokens
    print(f"held-out {n_bytes:,} bytes; vocab sizes: ours {ours_vocab}, HF {hf_vocab}")
    print(
        f"bytes per token: ours {ours_bpt:.4f}, HF {hf_bpt:.4f} "
        f"(ours/HF - 1 = {100 * (ours_bpt / hf_bpt - 1):+.2f}%; target within 1%)"
    )


if __name__ == "__main__":
    main()
