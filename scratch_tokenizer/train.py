"""Train our byte-level BPE on text files and save a Hugging Face tokenizer folder.

Command line (with no FILE it trains on the built-in default corpus, `default_corpus.py`):

    python -m scratch_tokenizer.train --vocab_size 4096 --output_dir outputs/tokenizer
    python -m scratch_tokenizer.train ../shared/data/tinyshakespeare.txt --vocab_size 2048 \\
        --output_dir outputs/shakespeare_tokenizer --special_tokens "<|endoftext|>" "<|pad|>"

The folder holds what `AutoTokenizer.from_pretrained(folder)` reads (tokenizer.json, tokenizer_config.json,
chat_template.jinja) and `bpe_merges.txt`, our human-readable model file (`ByteLevelBPE.load` reads it).
A folder holding anything else is refused unless `--overwrite_output_dir` is given; even then only the
files above are replaced, nothing else is deleted. Files are written to a temporary folder first and moved
in at the end, so a failure leaves nothing half-written.

Python:

    >>> from scratch_tokenizer.train import train_tokenizer
    >>> tokenizer = train_tokenizer(texts=["low lower lowest"], vocab_size=261, show_progress=False)
    >>> [tokenizer.decode([i]) for i in tokenizer(" lowest<|endoftext|>")["input_ids"]]
    [' lowe', 's', 't', '<|endoftext|>']
"""

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from scratch_tokenizer.bpe import ByteLevelBPE, num_merges_for, show_token, train_bpe, validate_special_tokens
from scratch_tokenizer.default_corpus import default_corpus_documents
from scratch_tokenizer.hf_tokenizer import to_hf_tokenizer
from scratch_tokenizer.text_files import require_utf8

BPE_FILE = "bpe_merges.txt"
# Everything this job may write (transformers' tokenizer files across versions, plus ours).
OUTPUT_FILES = {
    BPE_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
}
SAMPLE = "Hello, world! Byte-level BPE turns any text into ids: 한국어, emoji 🤗.<|endoftext|>"


def read_text_file(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file, with errors that name the file (and the byte offset of bad UTF-8)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training file {path} does not exist: check the path")
    if not path.is_file():
        raise ValueError(f"training file {path} is not a regular file: pass text files, not folders")
    require_utf8(path, "training file")
    return path.read_text(encoding="utf-8")


def check_output_dir(output_dir: str | os.PathLike, overwrite_output_dir: bool = False) -> Path:
    """Refuse an output folder that holds files this job does not write, unless told to overwrite."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir {output_dir} exists and is not a folder: choose another path")
    if output_dir.is_dir() and not overwrite_output_dir:
        others = sorted(p.name for p in output_dir.iterdir() if p.name not in OUTPUT_FILES)
        if others:
            raise ValueError(
                f"output_dir {output_dir} already holds other content ({', '.join(others[:5])}"
                f"{', ...' if len(others) > 5 else ''}): choose an empty folder or pass --overwrite_output_dir"
            )
    return output_dir


def _train(
    files: Sequence[str | os.PathLike] | str | os.PathLike | None,
    texts: Sequence[str] | str | None,
    vocab_size: int,
    special_tokens: Sequence[str],
    show_progress: bool,
    num_workers: int | None,
) -> ByteLevelBPE:
    special_tokens = validate_special_tokens(special_tokens)
    num_merges_for(vocab_size, len(special_tokens))  # raises before reading gigabytes of text
    if files is None and texts is None:
        corpus = default_corpus_documents()
    else:
        # One file or one text on its own is one document (iterating a str would give its characters).
        files = [files] if isinstance(files, str | os.PathLike) else files or []
        texts = [texts] if isinstance(texts, str) else texts or []
        corpus = [read_text_file(f) for f in files] + list(texts)
    return train_bpe(corpus, vocab_size, special_tokens, show_progress=show_progress, num_workers=num_workers)


def train_tokenizer(
    files: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
    texts: Sequence[str] | str | None = None,
    vocab_size: int = 8192,
    special_tokens: Sequence[str] = ("<|endoftext|>",),
    model_max_length: int | None = None,
    show_progress: bool = True,
    num_workers: int | None = None,
) -> PreTrainedTokenizerFast:
    """Train our BPE on `files` and/or `texts` (documents) and return it as a HF fast tokenizer.

    With neither, trains on the built-in default corpus; a single path or string counts as a list of one.
    `vocab_size` counts the 256 bytes, the merges and the special tokens. Save it with
    `tokenizer.save_pretrained(folder)`, or use the command line, which also writes the human-readable
    merges file.
    """
    bpe = _train(files, texts, vocab_size, special_tokens, show_progress, num_workers)
    return to_hf_tokenizer(bpe, model_max_length)


def save_tokenizer(
    bpe: ByteLevelBPE,
    tokenizer: PreTrainedTokenizerFast,
    output_dir: Path,
    overwrite_output_dir: bool = False,
) -> None:
    """Write the HF folder and `bpe_merges.txt` into `output_dir`, all or nothing."""
    output_dir = check_output_dir(output_dir, overwrite_output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = output_dir.parent / f".{output_dir.name}.partial-{os.getpid()}-{time.time_ns()}"
    staging.mkdir()  # beside output_dir, so the final moves are renames on one file system
    try:
        tokenizer.save_pretrained(staging)
        bpe.save(staging / BPE_FILE)
        if output_dir.exists():
            for path in staging.iterdir():
                os.replace(path, output_dir / path.name)
        else:
            staging.rename(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scratch_tokenizer.train",
        description="Train a byte-level BPE tokenizer from scratch and save it as a Hugging Face tokenizer.",
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="UTF-8 text files (default: built-in corpus)"
    )
    parser.add_argument("--vocab_size", type=int, default=8192, help="bytes + merges + special tokens")
    parser.add_argument("--output_dir", required=True, help="folder for the tokenizer")
    parser.add_argument("--special_tokens", nargs="+", default=["<|endoftext|>"], metavar="TOKEN")
    parser.add_argument("--model_max_length", type=int, default=None, help="the model's context size")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="write into a non-empty folder")
    parser.add_argument("--num_workers", type=int, default=None, help="processes for pre-tokenization")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        check_output_dir(args.output_dir, args.overwrite_output_dir)  # fail before the long part
        bpe = _train(
            args.files or None,
            None,
            args.vocab_size,
            args.special_tokens,
            not args.no_progress,
            args.num_workers,
        )
        tokenizer = to_hf_tokenizer(bpe, args.model_max_length)
        save_tokenizer(bpe, tokenizer, Path(args.output_dir), args.overwrite_output_dir)
    except (ValueError, OSError, RuntimeError) as err:
        parser.error(str(err))
    corpus = ", ".join(args.files) if args.files else "the built-in default corpus (Python's help topics)"
    print(
        f"trained a {len(tokenizer)}-token byte-level BPE on {corpus} in {time.perf_counter() - start:.1f} s"
    )
    print(f"saved to {args.output_dir} (load with AutoTokenizer.from_pretrained({args.output_dir!r}))")
    ids = tokenizer(SAMPLE)["input_ids"]
    print(f"sample: {SAMPLE!r}")
    print(f"  {len(ids)} ids: {ids}")
    # Bytes that are only part of a UTF-8 character (Korean, emoji) show as \xNN.
    print("  tokens: " + "".join(show_token(bpe.vocab[i]) for i in ids))
    print(f"  decoded back: {tokenizer.decode(ids)!r}")


if __name__ == "__main__":
    main()
