"""The UTF-8 check every reader of user files runs first (tokenizer training, recipes).

A file that is not UTF-8 would otherwise fail deep inside `datasets` (`DatasetGenerationError`) or the tokenizer,
without saying which file or where. Torch-free, so the tokenizer CLI can use it.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "latin1.txt"
    >>> _ = path.write_bytes("café au lait".encode("latin-1"))
    >>> require_utf8(path, "--train_file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --train_file ... is not UTF-8: byte 0xe9 at byte offset 3 (invalid continuation byte); ...
"""

import codecs
from pathlib import Path


def require_utf8(path: str | Path, what: str = "file", chunk_bytes: int = 1 << 20) -> None:
    """Raise when `path` is not UTF-8, naming the file, the first bad byte and its byte offset.

    Without this check `datasets` fails with a bare `DatasetGenerationError`. The file is decoded in chunks, so a
    large pretraining corpus is never held in memory twice.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with Path(path).open("rb") as handle:
        while True:
            chunk = handle.read(chunk_bytes)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                # err.start counts from the bytes the decoder still held back from the previous chunk.
                held_back = len(err.object) - len(chunk)
                bad = offset - held_back + err.start
                raise ValueError(
                    f"{what} {path} is not UTF-8: byte 0x{err.object[err.start]:02x} at byte offset {bad} "
                    f"({err.reason}); convert it first, e.g. iconv -f latin1 -t utf-8 {path}"
                ) from None
            if not chunk:
                return
            offset += len(chunk)
