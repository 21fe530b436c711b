"""A byte-level BPE tokenizer written from scratch, as GPT-2 defines it.

Byte-level BPE in four sentences. Text is first cut into pre-tokens by GPT-2's regex (words with their
leading space, numbers, punctuation runs, whitespace), so merges never cross a word boundary. Every pre-token
is turned into its UTF-8 bytes; each of the 256 byte values is a base token, so any text can be encoded and
nothing is ever unknown. Training repeatedly finds the most frequent adjacent pair of tokens in the corpus and
merges it into a new token. Encoding replays the learned merges, lowest rank (earliest learned) first.

Usage, on the classic example (worked by hand in tests/test_bpe.py):

    >>> from scratch_tokenizer.bpe import ByteLevelBPE, train_bpe
    >>> bpe = train_bpe(["aaabdaaabac"], vocab_size=256 + 3 + 1, show_progress=False)
    >>> bpe.encode("aaabdaaabac")
    [258, 100, 258, 97, 99]
    >>> bpe.decode([258, 100, 258, 97, 99, 259])
    'aaabdaaabac<|endoftext|>'

Token ids. A trained tokenizer uses ids 0..255 for the bytes (id == byte value), then one id per learned
merge in the order learned, then the special tokens. OpenAI's GPT-2 files (`ByteLevelBPE.from_gpt2_files`)
number the bytes differently, so the byte -> id table (`byte_ids`) is part of the model.

Special tokens (e.g. `<|endoftext|>`) are whole tokens that are never split and never learned from: training
cuts them out of the text first. `encode(text, allowed_special=...)` decides what happens when the text
contains one (see `ByteLevelBPE.encode`).

Lone surrogates: a Python `str` can hold code points U+D800..U+DFFF, which UTF-8 cannot encode (the HF
`tokenizers` core rejects them with a TypeError). Here `encode` and training replace each one with U+FFFD,
the replacement character, exactly what a UTF-8 decoder produces for broken bytes; so
`decode(encode(s)) == replace_surrogates(s)` for every string, and `== s` for every valid one.
"""

from __future__ import annotations

import heapq
import json
import multiprocessing
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path
from typing import Literal

import regex
from tqdm.auto import tqdm

# GPT-2's pre-tokenization regex (the contractions written with one group; same matches as OpenAI's).
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
FORMAT_VERSION = "hf_scratch_gpt-bpe v1"
_SURROGATES = regex.compile(r"[\ud800-\udfff]")


def get_stats(ids: list[int], counts: dict[tuple[int, int], int] | None = None) -> dict[tuple[int, int], int]:
    """Count each adjacent pair in `ids` (overlapping pairs count twice), adding to `counts` if given.

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, scanning left to right, by the token `idx`.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([7, 7, 7], (7, 7), 8)  # left to right: the first two merge, the third stays
    [8, 7]
    """
    first, second = pair
    out = []
    i, n = 0, len(ids)
    while i < n:
        if ids[i] == first and i + 1 < n and ids[i + 1] == second:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def replace_surrogates(text: str) -> str:
    """Replace each lone surrogate code point (not encodable in UTF-8) by U+FFFD.

    >>> replace_surrogates("a\\ud800b") == "a\\ufffdb"
    True
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character, used to write byte tokens as text.

    Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes (space,
    control characters, ...) take the characters U+0100, U+0101, ... in byte order. So the space byte is 'Ġ'.

    >>> bytes_to_unicode()[ord(" ")], bytes_to_unicode()[ord("a")]
    ('Ġ', 'a')
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


def _special_pattern(tokens: Iterable[str]) -> regex.Pattern | None:
    """A regex that finds any of `tokens`, longest first (so '<|a|>b' wins over its prefix '<|a|>')."""
    tokens = sorted(tokens, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(t) for t in tokens) + ")") if tokens else None


def validate_special_tokens(special_tokens: Iterable[str]) -> list[str]:
    """Return the special tokens as a list (one string alone is one token); raise ValueError for bad ones.

    Empty, repeated and multi-line tokens are refused (`save` writes one special token per line).
    """
    tokens = [special_tokens] if isinstance(special_tokens, str) else list(special_tokens)
    for token in tokens:
        if not isinstance(token, str) or not token or "\n" in token or "\r" in token:
            raise ValueError(f"special token {token!r} must be a non-empty string without line breaks")
    repeated = sorted({t for t in tokens if tokens.count(t) > 1})
    if repeated:
        raise ValueError(f"duplicate special tokens {repeated}: list each special token once")
    return tokens


def num_merges_for(vocab_size: int, num_special_tokens: int) -> int:
    """How many merges a vocabulary of `vocab_size` holds (256 bytes + merges + special tokens), at least 1.

    >>> num_merges_for(260, 1)
    3
    """
    num_merges = vocab_size - 256 - num_special_tokens
    if num_merges < 1:
        raise ValueError(
            f"vocab_size ({vocab_size}) must be larger than 256 bytes + {num_special_tokens} special tokens "
            f"= {256 + num_special_tokens}: there would be no room for a single merge"
        )
    return num_merges


class ByteLevelBPE:
    """A byte-level BPE tokenizer: merges learned in order, special tokens, GPT-2's split regex.

    Attributes:
        merges: `{(left_id, right_id): merged_id}` in the order learned; that order is the merge priority.
        special_tokens: `{token_text: id}`.
        byte_ids: the id of each byte value 0..255 (identity for tokenizers trained here).
        pattern: the pre-tokenization regex.
        vocab: `{id: bytes}`, derived from the above (never stored separately).
    """

    def __init__(
        self,
        merges: dict[tuple[int, int], int],
        special_tokens: dict[str, int] | None = None,
        pattern: str = GPT2_SPLIT_PATTERN,
        byte_ids: list[int] | None = None,
    ):
        self.merges = dict(merges)
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        if len(self.byte_ids) != 256 or len(set(self.byte_ids)) != 256:
            raise ValueError("byte_ids must give 256 distinct ids, one per byte value")
        validate_special_tokens(self.special_tokens)
        self._compiled = regex.compile(pattern)
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._cache: dict[str, list[int]] = {}
        self.vocab = self._build_vocab()

    def _build_vocab(self) -> dict[int, bytes]:
        vocab = {idx: bytes([b]) for b, idx in enumerate(self.byte_ids)}
        for (left, right), idx in self.merges.items():
            if left not in vocab or right not in vocab:
                raise ValueError(f"merge ({left}, {right}) -> {idx} uses an id that no earlier merge defines")
            merged = vocab[left] + vocab[right]
            if vocab.setdefault(idx, merged) != merged:
                raise ValueError(
                    f"merge ({left}, {right}) reuses id {idx}, which already means {vocab[idx]!r}"
                )
        for token, idx in self.special_tokens.items():
            if idx in vocab:
                raise ValueError(f"special token {token!r} has id {idx}, which a byte or merge already uses")
            vocab[idx] = token.encode("utf-8")
        return vocab

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (ids are contiguous for tokenizers trained here and GPT-2's)."""
        return max(self.vocab) + 1

    # ---- encoding -------------------------------------------------------------------------------------------

    def _encode_chunk(self, chunk: str) -> list[int]:
        """Encode one pre-token: start from its bytes and apply the best-ranked merge until none applies."""
        ids = [self.byte_ids[b] for b in chunk.encode("utf-8")]
        while len(ids) >= 2:
            stats = get_stats(ids)
            pair = min(stats, key=lambda p: self._ranks.get(p, float("inf")))
            if pair not in self._ranks:
                break  # no adjacent pair was ever merged: done
            ids = merge(ids, pair, self.merges[pair])
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode text with no special-token handling: '<|endoftext|>' here is just 13 characters."""
        ids = []
        for chunk in self._compiled.findall(replace_surrogates(text)):
            if chunk not in self._cache:
                if len(self._cache) > 100_000:  # bound memory on huge, diverse inputs
                    self._cache.clear()
                self._cache[chunk] = self._encode_chunk(chunk)
            ids.extend(self._cache[chunk])
        return ids

    def encode(
        self, text: str, allowed_special: Literal["all", "none", "none_raise"] | set[str] = "all"
    ) -> list[int]:
        """Encode text to ids.

        `allowed_special` says which special tokens written in `text` become their special id:
        "all" (the default, like the HF tokenizer), a set of them, or "none". Text that spells a special
        token that is not allowed is encoded as ordinary text (`<|endoftext|>` -> '<', '|', 'end', ...).
        "none_raise" allows none and raises ValueError if the text spells one (catches prompt injection of
        control tokens from user data).

        >>> bpe = ByteLevelBPE({}, {"<|endoftext|>": 256})
        >>> bpe.encode("hi<|endoftext|>"), len(bpe.encode("hi<|endoftext|>", allowed_special="none"))
        ([104, 105, 256], 15)
        """
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special in ("none", "none_raise"):
            allowed = set()
        elif isinstance(allowed_special, set | frozenset):
            allowed = set(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise ValueError(
                    f"allowed_special names {sorted(unknown)}, which are not special tokens here"
                )
        else:
            raise ValueError(
                f'allowed_special must be "all", "none", "none_raise" or a set, not {allowed_special!r}'
            )
        if allowed_special == "none_raise":
            found = _special_pattern(self.special_tokens)
            match = found.search(text) if found else None
            if match:
                raise ValueError(
                    f"text contains the special token {match.group()!r} at character {match.start()}; pass "
                    'allowed_special="all" to encode it as a special token or "none" to encode it as text'
                )
        splitter = _special_pattern(allowed)
        if splitter is None:
            return self.encode_ordinary(text)
        ids = []
        # With a capturing group, split() alternates: text, special, text, special, ..., text.
        for i, part in enumerate(splitter.split(text)):
            ids.extend([self.special_tokens[part]] if i % 2 else self.encode_ordinary(part))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text. Byte sequences that are not valid UTF-8 (a cut-off emoji) become U+FFFD."""
        try:
            data = b"".join(self.vocab[i] for i in ids)
        except KeyError as err:
            raise ValueError(
                f"id {err.args[0]} is not in the vocabulary (ids 0..{self.vocab_size - 1})"
            ) from None
        return data.decode("utf-8", errors="replace")

    # ---- saving and loading ---------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the human-readable, versioned model file: header, special tokens, one merge per line.

        Each merge line reads `left right merged` and, after a tab, the tokens as text, e.g.
        `32 116 256<TAB>[ ] + [t] -> [ t]`. The vocabulary is not stored: it follows from the merges.
        """
        lines = [FORMAT_VERSION, f"pattern {self.pattern}"]
        identity = self.byte_ids == list(range(256))
        lines.append("byte_ids identity" if identity else "byte_ids " + " ".join(map(str, self.byte_ids)))
        lines.append(f"special_tokens {len(self.special_tokens)}")
        lines += [f"{idx} {token}" for token, idx in self.special_tokens.items()]
        lines.append(f"merges {len(self.merges)}")
        for (left, right), idx in self.merges.items():
            shown = f"{show_token(self.vocab[left])} + {show_token(self.vocab[right])} -> {show_token(self.vocab[idx])}"
            lines.append(f"{left} {right} {idx}\t{shown}")
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> ByteLevelBPE:
        """Read a file written by `save`."""
        lines = Path(path).read_text(encoding="utf-8").split("\n")
        if lines[0] != FORMAT_VERSION:
            raise ValueError(
                f"{path} starts with {lines[0][:60]!r}, not {FORMAT_VERSION!r}: not a file from save()"
            )
        pattern = lines[1].removeprefix("pattern ")
        byte_field = lines[2].removeprefix("byte_ids ")
        byte_ids = None if byte_field == "identity" else [int(x) for x in byte_field.split()]
        n_special = int(lines[3].removeprefix("special_tokens "))
        special_tokens = {}
        for line in lines[4 : 4 + n_special]:
            idx, token = line.split(" ", 1)
            special_tokens[token] = int(idx)
        header = lines[4 + n_special]
        n_merges = int(header.removeprefix("merges "))
        merges = {}
        for line in lines[5 + n_special : 5 + n_special + n_merges]:
            left, right, idx = map(int, line.split("\t", 1)[0].split())
            merges[(left, right)] = idx
        if len(merges) != n_merges:
            raise ValueError(
                f"{path} announces {n_merges} merges but holds {len(merges)}: the file is cut short"
            )
        return cls(merges, special_tokens, pattern, byte_ids)

    @classmethod
    def from_gpt2_files(cls, encoder_json: str | os.PathLike, vocab_bpe: str | os.PathLike) -> ByteLevelBPE:
        """Load OpenAI's GPT-2 tokenizer (`encoder.json` + `vocab.bpe`) with GPT-2's exact token ids.

        Both files write tokens through GPT-2's byte -> character alphabet (`bytes_to_unicode`), which we
        map back to bytes; every token in `encoder.json` that is not a byte or a merge is a special token.
        """
        encoder = json.loads(Path(encoder_json).read_text(encoding="utf-8"))
        alphabet = bytes_to_unicode()
        byte_ids = [encoder[alphabet[b]] for b in range(256)]
        merges = {}
        for line in Path(vocab_bpe).read_text(encoding="utf-8").split("\n"):
            if not line or line.startswith("#version"):
                continue
            left, right = line.split(" ")
            merges[(encoder[left], encoder[right])] = encoder[left + right]
        known = set(byte_ids) | set(merges.values())
        special_tokens = {token: idx for token, idx in encoder.items() if idx not in known}
        return cls(merges, special_tokens, GPT2_SPLIT_PATTERN, byte_ids)


_CONTROL_ESCAPES = {c: repr(chr(c))[1:-1] for c in [*range(32), 127]}  # "\n" -> "\\n" etc.


def show_token(token: bytes) -> str:
    """A token's bytes for humans, in brackets: control characters escaped, partial UTF-8 as \\xNN.

    >>> print(show_token(b" t"), show_token(b"\\n\\n"), show_token("한".encode()[:2]))
    [ t] [\\n\\n] [\\xed\\x95]
    """
    return "[" + token.decode("utf-8", errors="backslashreplace").translate(_CONTROL_ESCAPES) + "]"


# ---- training --------------------------------------------------------------------------------------------------


def _count_chunk(args: tuple[str, str]) -> Counter:
    """Count the pre-tokens of one chunk of text (runs in a worker process)."""
    text, pattern = args
    return Counter(regex.findall(pattern, text))


def _safe_chunks(text: str, chunk_chars: int) -> list[str]:
    """Cut `text` into pieces of about `chunk_chars` whose pre-tokens are exactly those of the whole.

    We cut right after a lone '\\n' that sits between two non-space characters: there the regex always ends a
    whitespace match ('\\n' alone, since only a literal space may join the next word), and the '(?!\\S)'
    look-ahead at the end of the left piece sees the same thing as in the whole text.
    """
    cuts = regex.compile(r"(?<=\S\n)(?=\S)")
    pieces, start = [], 0
    while len(text) - start > chunk_chars:
        found = cuts.search(text, start + chunk_chars)
        if found is None:
            break
        pieces.append(text[start : found.start()])
        start = found.start()
    pieces.append(text[start:])
    return pieces


def count_pretokens(
    texts: Iterable[str],
    special_tokens: Iterable[str] = (),
    pattern: str = GPT2_SPLIT_PATTERN,
    num_workers: int | None = None,
    chunk_chars: int = 1_000_000,
    show_progress: bool = False,
) -> Counter:
    """Count every distinct pre-token in the corpus, special tokens cut out first.

    A corpus of several chunks of `chunk_chars` characters is counted by `num_workers` processes (default:
    all cores); the counts are identical to a single pass. Smaller corpora are counted in this process.

    >>> sorted(count_pretokens(["the cat, the hat<|endoftext|>!"], ["<|endoftext|>"]).items())
    [(' cat', 1), (' hat', 1), (' the', 1), ('!', 1), (',', 1), ('the', 1)]
    """
    splitter = _special_pattern(special_tokens)
    chunks = []
    for text in texts:
        text = replace_surrogates(text)
        for part in splitter.split(text)[::2] if splitter else [text]:
            chunks.extend(_safe_chunks(part, chunk_chars))
    num_workers = min(num_workers or os.cpu_count() or 1, len(chunks))
    big = sum(map(len, chunks)) >= 4 * chunk_chars  # below that, starting processes costs more than it saves
    jobs = [(chunk, pattern) for chunk in chunks]
    progress = tqdm(total=len(jobs), desc="pre-tokenizing", unit="chunk", disable=not show_progress)
    total = Counter()
    # Processes are forked (cheap, nothing re-imported); where fork does not exist, count in this process.
    if num_workers > 1 and big and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(num_workers) as pool:
            for counts in pool.imap_unordered(
                _count_chunk, jobs, chunksize=max(1, len(jobs) // (4 * num_workers))
            ):
                total.update(counts)
                progress.update()
    else:
        for job in jobs:
            total.update(_count_chunk(job))
            progress.update()
    progress.close()
    return total


def _merge_word(
    word: list[int], pair: tuple[int, int], new_id: int, freq: int, pair_counts: dict[tuple[int, int], int]
) -> tuple[list[int], list[tuple[int, int]]] | None:
    """`merge(word, pair, new_id)` that also updates `pair_counts` for the pairs around each merge site.

    Returns the merged word and the pairs it gained (all contain `new_id`), or None if `pair` is absent.
    Only neighbours change: merging (a, b) in `x a b y` removes (x, a), (a, b), (b, y) and adds (x, Z), (Z, y).
    With back-to-back sites (`a b a b`) the pair between them, (b, a), is removed once and (Z, Z) added once.
    The count of `pair` itself is left for the caller to delete.
    """
    left, right = pair
    n = len(word)
    starts = []  # where the pair starts, left to right, non-overlapping (as `merge` does it)
    i = 0
    while i < n - 1:
        if word[i] == left and word[i + 1] == right:
            starts.append(i)
            i += 2
        else:
            i += 1
    if not starts:
        return None
    new_word, gained = [], []
    prev = -2  # start of the previous site
    for k, s in enumerate(starts):
        new_word += word[prev + 2 : s]
        if s > 0:  # left neighbour: (x, a) -> (x, Z), or (b, a) -> (Z, Z) right after another site
            pair_counts[word[s - 1], left] -= freq
            gained.append((new_id, new_id) if prev == s - 2 else (word[s - 1], new_id))
        if s + 2 < n and (k + 1 == len(starts) or starts[k + 1] != s + 2):  # right neighbour, not a site
            pair_counts[right, word[s + 2]] -= freq
            gained.append((new_id, word[s + 2]))
        new_word.append(new_id)
        prev = s
    new_word += word[prev + 2 :]
    for p in gained:
        pair_counts[p] += freq
    return new_word, gained


def learn_merges(
    word_counts: dict[str, int], num_merges: int, show_progress: bool = True
) -> dict[tuple[int, int], int]:
    """Learn up to `num_merges` new tokens from pre-token counts; return `{(left, right): new_id}`.

    Instead of recounting every pair after every merge, we keep:
      - `pair_counts[pair]`: how often the pair occurs in the corpus (each word weighted by its count);
      - `where[pair]`: the indices of the words that contain it (may list words that no longer do);
      - a heap of `(-count, pair)`: the best pair is on top. Entries go stale when a count drops; a popped
        entry whose count is out of date is pushed back with the current count ("lazy invalidation").
    A merge touches only the words in `where[pair]`, and in each only the pairs next to a merge site
    (`_merge_word`). Pairs can only gain count when they contain the new token, so exactly those are
    (re)pushed on the heap.

    Tie-break (deterministic): among pairs with the same count, the smallest `(left_id, right_id)` wins, i.e.
    the pair whose left token is oldest (bytes by value, then merges in the order learned), then likewise
    for the right token.

    Two merges can spell the same bytes ('a'+'bc' and 'ab'+'c'); the second reuses the first one's id (as HF
    `tokenizers` does), so every id stands for distinct bytes and the vocabulary grows by one per new string.
    """
    words = [list(word.encode("utf-8")) for word in word_counts]
    freqs = list(word_counts.values())
    pair_counts: defaultdict[tuple[int, int], int] = defaultdict(int)
    where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
    for i, (word, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in pairwise(word):
            pair_counts[pair] += freq
            where[pair].add(i)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    token_bytes = [bytes([b]) for b in range(256)]
    id_of = {tok: idx for idx, tok in enumerate(token_bytes)}
    merges: dict[tuple[int, int], int] = {}
    progress = tqdm(total=num_merges, desc="BPE merges", unit="tok", disable=not show_progress)
    while len(token_bytes) < 256 + num_merges and heap:
        neg_count, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -neg_count:  # stale entry: its count dropped since it was pushed
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        merged = token_bytes[pair[0]] + token_bytes[pair[1]]
        new_id = id_of.get(merged)
        if new_id is None:
            new_id = id_of[merged] = len(token_bytes)
            token_bytes.append(merged)
            progress.update()
        merges[pair] = new_id

        grown = set()
        for i in where.pop(pair):
            result = _merge_word(words[i], pair, new_id, freqs[i], pair_counts)
            if result is None:
                continue  # stale index entry: an earlier merge already consumed the pair in this word
            words[i], gained = result
            for new_pair in gained:
                where[new_pair].add(i)
            grown.update(gained)
        del pair_counts[pair]
        for new_pair in grown:
            heapq.heappush(heap, (-pair_counts[new_pair], new_pair))
    progress.close()
    return merges


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    special_tokens: Iterable[str] = ("<|endoftext|>",),
    show_progress: bool = True,
    num_workers: int | None = None,
) -> ByteLevelBPE:
    """Train a byte-level BPE tokenizer of `vocab_size` tokens (256 bytes + merges + special tokens).

    `texts` is an iterable of documents (a single string is one document). Special tokens get the last ids.
    If the corpus runs out of pairs to merge first, the vocabulary is smaller (with a warning).

    >>> bpe = train_bpe(["low lower lowest"] * 3, vocab_size=260, special_tokens=[], show_progress=False)
    >>> [bpe.decode([i]) for i in range(256, 260)]
    ['lo', 'low', ' low', ' lowe']
    """
    special_tokens = validate_special_tokens(special_tokens)
    num_merges = num_merges_for(vocab_size, len(special_tokens))
    if isinstance(texts, str):
        texts = [texts]
    word_counts = count_pretokens(texts, special_tokens, num_workers=num_workers, show_progress=show_progress)
    if not word_counts:
        raise ValueError("the training corpus is empty (no text outside special tokens): give it some text")
    merges = learn_merges(word_counts, num_merges, show_progress)
    n_tokens = 256 + len(set(merges.values()))
    if n_tokens < 256 + num_merges:
        warnings.warn(
            f"the corpus only supports {n_tokens - 256} merges, not {num_merges}: the vocabulary has "
            f"{n_tokens + len(special_tokens)} tokens instead of {vocab_size}; use more text or a smaller vocab_size",
            stacklevel=2,
        )
    specials = {token: n_tokens + i for i, token in enumerate(special_tokens)}
    return ByteLevelBPE(merges, specials)
