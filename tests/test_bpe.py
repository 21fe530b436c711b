"""Our from-scratch byte-level BPE: hand-worked training, GPT-2 parity, round trips, special tokens, files."""

import json
from collections import Counter
from itertools import pairwise

import pytest
import regex
from conftest import shared_file
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
from transformers import GPT2TokenizerFast

from scratch_tokenizer.bpe import (
    GPT2_SPLIT_PATTERN,
    ByteLevelBPE,
    bytes_to_unicode,
    count_pretokens,
    learn_merges,
    train_bpe,
)
from scratch_tokenizer.default_corpus import default_corpus_documents

EOT = "<|endoftext|>"
# From ../shared/data/README.md (tiktoken "gpt2" gives the same ids).
GPT2_TEXT = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
GPT2_IDS = [
    15496,
    11,
    466,
    345,
    588,
    8887,
    30,
    220,
    50256,
    554,
    262,
    4252,
    18250,
    8812,
    2114,
    286,
    617,
    34680,
    27271,
    13,
]

TRICKY_TEXTS = [
    "",
    "a",
    " ",
    "hello world",
    "👍🏽 🤗 👨‍👩‍👧‍👦",  # skin tone modifier, ZWJ family
    "안녕하세요, 세계! 한국어 텍스트",
    "e\u0301 n\u0303 a\u0308\u0323",  # combining marks
    "\x00\x01\t\r\n\x0b\x0c\x1b[0m\x7f\u2028\u00a0",  # controls, line separator, no-break space
    "  leading and trailing spaces   \n\n\n  ",
    "I'm, you're, they've, we'll, she'd, it's; Don'T",
    "3.14159 + 2,718 = ٣٤٥ ⅷ",
    "<|endoftext|> is spelled here <|endoftext|>",
]


@pytest.fixture(scope="module")
def gpt2() -> ByteLevelBPE:
    gpt2_dir = shared_file("gpt2/encoder.json").parent
    return ByteLevelBPE.from_gpt2_files(gpt2_dir / "encoder.json", gpt2_dir / "vocab.bpe")


@pytest.fixture(scope="module")
def hf_gpt2() -> GPT2TokenizerFast:
    gpt2_dir = shared_file("gpt2/encoder.json").parent
    # encoder.json holds what HF calls vocab.json, vocab.bpe what it calls merges.txt.
    return GPT2TokenizerFast(vocab=str(gpt2_dir / "encoder.json"), merges=str(gpt2_dir / "vocab.bpe"))


@pytest.fixture(scope="module")
def trained() -> ByteLevelBPE:
    return train_bpe(
        default_corpus_documents(), vocab_size=1024, special_tokens=[EOT, "<|pad|>"], show_progress=False
    )


def naive_train(word_counts: dict[str, int], num_merges: int) -> dict[tuple[int, int], int]:
    """The textbook trainer: recount every pair of every word after every merge. Same tie-break (count,
    then smallest pair) and same rule for a merge whose bytes already have an id (reuse that id)."""
    words = [(list(w.encode("utf-8")), c) for w, c in word_counts.items()]
    vocab = [bytes([b]) for b in range(256)]
    merges = {}
    while len(vocab) < 256 + num_merges:
        counts = Counter()
        for ids, c in words:
            for pair in pairwise(ids):
                counts[pair] += c
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merged = vocab[best[0]] + vocab[best[1]]
        if merged not in vocab:
            vocab.append(merged)
        new_id = vocab.index(merged)
        merges[best] = new_id
        new_words = []
        for ids, c in words:
            out, i = [], 0
            while i < len(ids):
                if tuple(ids[i : i + 2]) == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            new_words.append((out, c))
        words = new_words
    return merges


# ---- training -----------------------------------------------------------------------------------------------


def test_hand_worked_example_aaabdaaabac():
    # The classic BPE example (Wikipedia), worked by hand. Bytes: a=97, b=98, c=99, d=100.
    # "aaabdaaabac" is one pre-token (all letters). Pairs: aa x4, ab x2, bd, da, ba, ac x1.
    # 1. (97, 97) "aa" (4) -> 256 "Z", left to right: Z a b d Z a b a c.
    #    Pairs now: Za x2, ab x2, bd, dZ, ba, ac x1. Tie at 2 between (256, 97) and (97, 98):
    #    the smaller pair wins, so
    # 2. (97, 98) "ab" -> 257 "Y": Z Y d Z Y a c. Pairs: ZY x2, Yd, dZ, Ya, ac x1.
    # 3. (256, 257) "aaab" -> 258 "X": X d X a c.
    # Special tokens follow the merges: <|endoftext|> = 259.
    bpe = train_bpe(["aaabdaaabac"], vocab_size=256 + 3 + 1, show_progress=False)
    assert bpe.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert bpe.special_tokens == {EOT: 259}
    assert bpe.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert bpe.vocab[258] == b"aaab"
    assert bpe.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"


def test_tie_break_is_smallest_pair():
    # Each word once: (97, 98) "ab" and (99, 100) "cd" both occur once, as do (32, 99) " c" and the rest.
    # The smallest pair, (32, 99) " c", wins; " cd" is then [256, 100], so next come (97, 98) and (256, 100).
    bpe = train_bpe(["ab cd"], vocab_size=256 + 3, special_tokens=[], show_progress=False)
    assert list(bpe.merges) == [(32, 99), (97, 98), (256, 100)]


def test_training_is_deterministic_and_matches_textbook_trainer():
    text = "".join(default_corpus_documents()[:5])
    word_counts = count_pretokens([text], num_workers=1)
    fast = learn_merges(word_counts, 300, show_progress=False)
    assert fast == learn_merges(word_counts, 300, show_progress=False)
    assert list(fast.items()) == list(naive_train(word_counts, 300).items())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="aab c\n", max_size=20), max_size=8), st.integers(1, 25))
def test_incremental_updates_equal_recounting(texts, num_merges):
    # Tiny alphabets make overlapping pairs ("aaaa"), back-to-back sites ("abab") and merges whose bytes
    # already exist (a+bc vs ab+c): exactly where incremental pair counting could go wrong.
    word_counts = count_pretokens(texts, num_workers=1)
    assert list(learn_merges(word_counts, num_merges, False).items()) == list(
        naive_train(word_counts, num_merges).items()
    )


def test_learns_what_hf_bpe_trainer_learns():
    # HF tokenizers' Rust BpeTrainer with the same regex, byte alphabet, vocab size and special token is an
    # independent implementation: the merges may differ only in the order of ties.
    text = shared_file("tinyshakespeare.txt").read_text(encoding="utf-8")
    train, held_out = text[:1_000_000], text[1_000_000:]
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GPT2_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    hf_trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator([train], hf_trainer)
    ours = train_bpe([train], 1024, show_progress=False)
    alphabet = bytes_to_unicode()

    def as_text(token: bytes) -> str:
        return "".join(alphabet[b] for b in token)

    as_hf = [f"{as_text(ours.vocab[left])} {as_text(ours.vocab[right])}" for left, right in ours.merges]
    hf_merges = [
        " ".join(m) if isinstance(m, list) else m for m in json.loads(hf.to_str())["model"]["merges"]
    ]
    assert len(set(as_hf) & set(hf_merges)) >= 0.95 * len(hf_merges)
    ours_tokens, hf_tokens = len(ours.encode(held_out)), len(hf.encode(held_out).ids)
    assert abs(ours_tokens / hf_tokens - 1) < 0.01


def test_parallel_chunked_counting_equals_one_regex_pass():
    text = shared_file("tinyshakespeare.txt").read_text(encoding="utf-8")[:300_000]
    text += "\n\n  \n end \n\nx\n \ny\t\n\nz"  # whitespace runs around line breaks
    expected = Counter(regex.findall(GPT2_SPLIT_PATTERN, text))
    assert count_pretokens([text], num_workers=2, chunk_chars=5_000) == expected  # 4 * 5_000 chars: parallel
    assert count_pretokens([text], num_workers=1, chunk_chars=5_000) == expected


def test_special_tokens_are_cut_out_before_training():
    with pytest.warns(UserWarning, match="only supports 1 merges"):
        bpe = train_bpe([f"ab{EOT}ab{EOT}" * 50], vocab_size=300, show_progress=False)
    learned = [bpe.vocab[i] for i in set(bpe.merges.values())]
    assert learned == [b"ab"]  # nothing from "<|endoftext|>"


def test_small_corpus_warns_and_stops_early():
    with pytest.warns(UserWarning, match="only supports 1 merges"):
        bpe = train_bpe(["ab"], vocab_size=400, show_progress=False)
    assert bpe.special_tokens == {EOT: 257}
    assert bpe.vocab_size == 258


def test_single_string_is_one_document_and_one_special_token():
    bpe = train_bpe("aaabdaaabac", 260, EOT, show_progress=False)
    assert bpe.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}  # as worked by hand above
    assert bpe.special_tokens == {EOT: 259}


@pytest.mark.parametrize(
    ("texts", "vocab_size", "special_tokens", "message"),
    [
        ([], 300, [EOT], "corpus is empty"),
        (["", ""], 300, [EOT], "corpus is empty"),
        ([EOT * 3], 300, [EOT], "corpus is empty"),
        (["text"], 257, [EOT], r"vocab_size \(257\) must be larger than 256 bytes \+ 1 special tokens = 257"),
        (["text"], 256, [], "must be larger than 256"),
        (["text"], 300, [EOT, "<|pad|>", EOT], "duplicate special tokens"),
        (["text"], 300, [""], "must be a non-empty string"),
        (["text"], 300, ["<|a\nb|>"], "without line breaks"),
        (["text"], 300, ["<|a\rb|>"], "without line breaks"),  # read back as "\n" by universal newlines
    ],
)
def test_bad_training_input(texts, vocab_size, special_tokens, message):
    with pytest.raises(ValueError, match=message):
        train_bpe(texts, vocab_size, special_tokens, show_progress=False)


# ---- GPT-2 parity -----------------------------------------------------------------------------------------


def test_gpt2_ground_truth(gpt2):
    assert gpt2.encode(GPT2_TEXT) == GPT2_IDS
    assert gpt2.decode(GPT2_IDS) == GPT2_TEXT
    assert gpt2.vocab_size == 50257
    assert gpt2.special_tokens == {EOT: 50256}


@pytest.mark.parametrize("name", ["the-verdict.txt", "tinyshakespeare.txt"])
def test_gpt2_equals_hf_gpt2_fast(gpt2, hf_gpt2, name):
    text = shared_file(name).read_text(encoding="utf-8")
    ids = gpt2.encode(text)
    assert ids == hf_gpt2(text)["input_ids"]
    assert gpt2.decode(ids) == text


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_gpt2_equals_hf_on_tricky_text(gpt2, hf_gpt2, text):
    assert gpt2.encode(text) == hf_gpt2(text)["input_ids"]


# ---- round trips ------------------------------------------------------------------------------------------

SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
SPICY = st.sampled_from(
    ["👍🏽", "🤗", "\u200d", "한", "국", "e\u0301", "\u0308", "\x00", "\x1b", "\r\n", " ", "\t"]
)
# Any valid Unicode (hypothesis leaves out surrogates), salted with emoji, Korean, combining marks, controls.
UNICODE_TEXT = st.lists(st.one_of(st.text(), SPICY)).map("".join)


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_round_trip_tricky(trained, gpt2, text):
    assert trained.decode(trained.encode(text)) == text
    assert gpt2.decode(gpt2.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(UNICODE_TEXT)
def test_round_trip_any_unicode(trained, gpt2, text):
    assert trained.decode(trained.encode(text)) == text
    assert gpt2.decode(gpt2.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(), SURROGATE)))
def test_lone_surrogates_become_replacement_characters(trained, text):
    # Documented: each surrogate code point (not encodable in UTF-8) is encoded as U+FFFD.
    expected = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    assert trained.decode(trained.encode(text)) == expected
    assert trained.encode(text) == trained.encode(expected)


def test_decode_partial_utf8_and_unknown_ids(gpt2):
    ids = gpt2.encode("🤗")
    assert len(ids) > 1
    assert gpt2.decode(ids[:1]) == "\ufffd"  # a cut-off character decodes to U+FFFD, like HF's decoder
    with pytest.raises(ValueError, match="id 50257 is not in the vocabulary"):
        gpt2.decode([50257])


# ---- special tokens -------------------------------------------------------------------------------------------


def test_special_tokens_allowed_kept_whole(gpt2, hf_gpt2):
    text = f"a{EOT}b{EOT}"
    assert gpt2.encode(text) == hf_gpt2(text)["input_ids"]
    assert gpt2.encode(text).count(50256) == 2


def test_special_token_spelled_in_text_when_not_allowed(gpt2, hf_gpt2):
    text = f"hi {EOT} there"
    ordinary = hf_gpt2(text, split_special_tokens=True)["input_ids"]  # HF's "treat as plain text"
    assert 50256 not in ordinary
    assert gpt2.encode(text, allowed_special="none") == ordinary
    assert gpt2.encode(text, allowed_special=set()) == ordinary
    assert gpt2.encode_ordinary(text) == ordinary
    with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>' at character 3"):
        gpt2.encode(text, allowed_special="none_raise")
    assert gpt2.encode("no specials", allowed_special="none_raise") == hf_gpt2("no specials")["input_ids"]


def test_allowed_special_subset(trained):
    eot, pad = trained.special_tokens[EOT], trained.special_tokens["<|pad|>"]
    ids = trained.encode(f"x{EOT}<|pad|>", allowed_special={"<|pad|>"})
    assert ids[-1] == pad
    assert eot not in ids
    assert trained.decode(ids) == f"x{EOT}<|pad|>"
    with pytest.raises(ValueError, match="not special tokens"):
        trained.encode("x", allowed_special={"<|bos|>"})
    with pytest.raises(ValueError, match="allowed_special must be"):
        trained.encode("x", allowed_special="some")


def test_special_tokens_get_last_ids(trained):
    assert trained.special_tokens == {EOT: 1022, "<|pad|>": 1023}
    assert sorted(trained.vocab) == list(range(1024))


# ---- saving and loading ---------------------------------------------------------------------------------------


def test_save_load_round_trip(trained, tmp_path):
    path = tmp_path / "bpe.txt"
    trained.save(path)
    loaded = ByteLevelBPE.load(path)
    assert list(loaded.merges.items()) == list(trained.merges.items())
    assert loaded.special_tokens == trained.special_tokens
    assert loaded.vocab == trained.vocab
    for text in TRICKY_TEXTS:
        assert loaded.encode(text) == trained.encode(text)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "hf_scratch_gpt-bpe v1"
    # Header (4 lines) + 2 special tokens + "merges N" + one line per merge: no vocabulary stored.
    assert len(lines) == 4 + 2 + 1 + len(trained.merges)


def test_save_load_gpt2_is_readable(gpt2, hf_gpt2, tmp_path):
    path = tmp_path / "gpt2.txt"
    gpt2.save(path)
    # OpenAI's first merge is "Ġ t" (space + t) = ids 220 + 83 -> 256.
    assert path.read_text(encoding="utf-8").splitlines()[6] == "220 83 256\t[ ] + [t] -> [ t]"
    loaded = ByteLevelBPE.load(path)
    assert loaded.encode(GPT2_TEXT) == GPT2_IDS
    assert loaded.byte_ids == gpt2.byte_ids


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "merges.txt"
    path.write_text("#version: 0.2\nĠ t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a file from save"):
        ByteLevelBPE.load(path)
