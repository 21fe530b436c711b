"""The export to a Hugging Face fast tokenizer: same ids as our encoder and as GPT-2, chat template, loading."""

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
import regex
from conftest import shared_file
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bpe import GPT2_IDS, GPT2_TEXT
from tokenizers import Regex, pre_tokenizers
from transformers import GPT2TokenizerFast

from scratch_tokenizer.bpe import GPT2_SPLIT_PATTERN, ByteLevelBPE, replace_surrogates, train_bpe
from scratch_tokenizer.default_corpus import default_corpus_documents
from scratch_tokenizer.hf_tokenizer import (
    CHAT_TEMPLATE,
    load_chat_tokenizer,
    serving_chat_template,
    serving_tokenizer,
    to_hf_tokenizer,
)

EOT = "<|endoftext|>"
TEXTS = [
    "",
    "Hello, world!",
    "👍🏽 🤗 👨‍👩‍👧‍👦 안녕하세요 e\u0301 \x00\x1b\t\r\n  \n\n",
    f"two{EOT}specials{EOT}",
    "I'm, you're, they've, we'll; 3.14159 ٣٤٥",
]
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "Another?"},
    {"role": "assistant", "content": "Red, or green."},
]


@pytest.fixture(scope="module")
def bpe() -> ByteLevelBPE:
    return train_bpe(
        default_corpus_documents(), vocab_size=1024, special_tokens=[EOT, "<|pad|>"], show_progress=False
    )


@pytest.fixture(scope="module")
def tokenizer(bpe):
    return to_hf_tokenizer(bpe, model_max_length=256)


@pytest.fixture(scope="module")
def gpt2_files() -> tuple[Path, Path]:
    gpt2_dir = shared_file("gpt2/encoder.json").parent
    return gpt2_dir / "encoder.json", gpt2_dir / "vocab.bpe"


@pytest.fixture(scope="module")
def exported_gpt2(gpt2_files):
    return to_hf_tokenizer(ByteLevelBPE.from_gpt2_files(*gpt2_files))


# ---- same ids -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["the-verdict.txt", "tinyshakespeare.txt"])
def test_exported_gpt2_equals_hf_gpt2(gpt2_files, exported_gpt2, name):
    text = shared_file(name).read_text(encoding="utf-8")
    exported = exported_gpt2
    reference = GPT2TokenizerFast(vocab=str(gpt2_files[0]), merges=str(gpt2_files[1]))
    assert exported(text)["input_ids"] == reference(text)["input_ids"]
    assert exported.convert_ids_to_tokens(list(range(300))) == reference.convert_ids_to_tokens(
        list(range(300))
    )


def test_exported_gpt2_ground_truth(exported_gpt2):
    assert exported_gpt2(GPT2_TEXT)["input_ids"] == GPT2_IDS


@pytest.mark.parametrize("text", TEXTS)
def test_same_ids_as_our_encoder(bpe, tokenizer, text):
    ids = bpe.encode(text)
    assert tokenizer(text)["input_ids"] == ids
    assert tokenizer.decode(ids) == text


def test_same_ids_on_a_real_file(bpe, tokenizer):
    text = shared_file("tinyshakespeare.txt").read_text(encoding="utf-8")[:200_000]
    assert tokenizer(text)["input_ids"] == bpe.encode(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.text(), st.sampled_from(["👍🏽", "한국", "e\u0301", "\x00", "\r\n", EOT]))).map(
        "".join
    )
)
def test_round_trip_and_same_ids_any_unicode(bpe, tokenizer, text):
    ids = tokenizer(text)["input_ids"]
    assert ids == bpe.encode(text)
    assert tokenizer.decode(ids) == text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="aab c\n", max_size=20), min_size=1, max_size=8), st.integers(1, 30))
@pytest.mark.filterwarnings("ignore:the corpus only supports")
def test_exported_merges_encode_like_ours(texts, num_merges):
    # Small alphabets give merges whose bytes already exist (a+bc, ab+c): the export must still agree.
    corpus = [t for t in texts if t] or ["ab"]
    ours = train_bpe(corpus, 256 + num_merges + 1, show_progress=False)
    exported = to_hf_tokenizer(ours)
    for text in corpus:
        assert exported(text)["input_ids"] == ours.encode(text)


def test_pre_tokenizer_splits_like_python_regex():
    # The Rust (Oniguruma) regex must cut exactly where Python's `regex` does.
    split = pre_tokenizers.Split(Regex(GPT2_SPLIT_PATTERN), behavior="isolated")
    text = shared_file("tinyshakespeare.txt").read_text(encoding="utf-8")[:50_000] + TEXTS[2] + TEXTS[4]
    assert [piece for piece, _ in split.pre_tokenize_str(text)] == regex.findall(GPT2_SPLIT_PATTERN, text)


def test_lone_surrogates_documented_behaviour(bpe, tokenizer):
    text = "a\ud800b"
    with pytest.raises(TypeError):  # the Rust core accepts only valid Unicode
        tokenizer(text)
    assert tokenizer(replace_surrogates(text))["input_ids"] == bpe.encode(text)


# ---- special tokens ----------------------------------------------------------------------------------------


def test_special_tokens_and_lengths(bpe, tokenizer):
    eot = bpe.special_tokens[EOT]
    assert tokenizer.eos_token == tokenizer.bos_token == tokenizer.pad_token == EOT
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == eot
    assert tokenizer.model_max_length == 256
    assert len(tokenizer) == bpe.vocab_size == 1024
    assert tokenizer.convert_tokens_to_ids("<|pad|>") == bpe.special_tokens["<|pad|>"]
    text = f"a {EOT} b"
    assert tokenizer(text)["input_ids"].count(eot) == 1
    # HF's way to treat a spelled special token as plain text = our allowed_special="none".
    assert tokenizer(text, split_special_tokens=True)["input_ids"] == bpe.encode(text, allowed_special="none")


def test_without_endoftext_the_first_special_is_eos():
    bpe = train_bpe(["some text here"], 265, special_tokens=["<|end|>"], show_progress=False)
    assert to_hf_tokenizer(bpe).eos_token == "<|end|>"


def test_without_special_tokens_there_is_no_eos_and_no_chat_template():
    # The template ends every answer with eos_token: without one it is left out, and HF says so clearly.
    bpe = train_bpe(["some text here"], 260, special_tokens=[], show_progress=False)
    tokenizer = to_hf_tokenizer(bpe)
    assert tokenizer.eos_token is None and tokenizer.chat_template is None
    assert tokenizer("some text")["input_ids"] == bpe.encode("some text")
    with pytest.raises(ValueError, match="chat_template is not set"):
        tokenizer.apply_chat_template(MESSAGES, tokenize=False)


def saved_without_unk(tokenizer, folder: Path) -> Path:
    """`tokenizer` saved as tokenizers exported before unk was named were: no unk_token in tokenizer_config.json."""
    tokenizer.save_pretrained(folder)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    del config["unk_token"]
    config_file.write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_unk_token_is_eos_and_changes_no_encoding(bpe, tokenizer, tmp_path):
    from transformers import AutoTokenizer

    assert tokenizer.unk_token == EOT and tokenizer.unk_token_id == bpe.special_tokens[EOT]
    assert tokenizer.backend_tokenizer.model.unk_token is None  # as in GPT-2: the Rust BPE itself has no unk
    before = AutoTokenizer.from_pretrained(saved_without_unk(tokenizer, tmp_path / "old"))
    assert before.unk_token is None
    # Every byte value, every script of TEXTS, a whole file: the same ids with and without unk, and ours.
    texts = [*TEXTS, bytes(range(256)).decode("latin-1"), "".join(map(chr, range(0x2000, 0x2400)))]
    texts.append(shared_file("the-verdict.txt").read_text(encoding="utf-8"))
    for text in texts:
        assert tokenizer(text)["input_ids"] == before(text)["input_ids"] == bpe.encode(text)


def test_serving_tokenizer_names_unk_and_drops_only_the_markers(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    old = AutoTokenizer.from_pretrained(saved_without_unk(tokenizer, tmp_path / "old"))
    assert old.chat_template == CHAT_TEMPLATE
    served = serving_tokenizer(old)
    assert served.unk_token == EOT
    assert "{% generation %}" not in served.chat_template and "endgeneration" not in served.chat_template
    for prompt in (False, True):  # the same text, with and without the generation prompt
        expected = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=prompt)
        assert served.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=prompt) == expected
    # A tokenizer with neither eos nor template stays as it is.
    bare = to_hf_tokenizer(train_bpe(["some text here"], 260, special_tokens=[], show_progress=False))
    assert serving_tokenizer(bare).unk_token is None and bare.chat_template is None


def test_chat_training_restores_the_markers_of_an_export(tokenizer, tmp_path):
    # Finetuning from an export (its template without markers) must still mask the loss to the answers.
    from transformers import AutoTokenizer

    old = AutoTokenizer.from_pretrained(saved_without_unk(tokenizer, tmp_path / "old"))
    serving_tokenizer(old).save_pretrained(tmp_path / "export")
    saved = (tmp_path / "export" / "chat_template.jinja").read_text(encoding="utf-8")
    assert saved == serving_chat_template(CHAT_TEMPLATE) and "endgeneration" not in saved
    assert load_chat_tokenizer(str(tmp_path / "export")).chat_template == CHAT_TEMPLATE


def test_gap_in_ids_is_refused():
    gapped = ByteLevelBPE({(97, 98): 256}, {EOT: 300})
    with pytest.raises(ValueError, match="contiguous"):
        to_hf_tokenizer(gapped)


# ---- chat template --------------------------------------------------------------------------------------------


def test_chat_template_text(tokenizer):
    expected = (
        "You are terse.\n\n"
        "### User:\nName a colour.\n\n"
        f"### Assistant:\nBlue.{EOT}\n\n"
        "### User:\nAnother?\n\n"
        f"### Assistant:\nRed, or green.{EOT}\n\n"
    )
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert tokenizer.apply_chat_template(MESSAGES, tokenize=False) == expected
    prompt = tokenizer.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True)
    assert prompt == "You are terse.\n\n### User:\nName a colour.\n\n### Assistant:\n"
    with pytest.raises(Exception, match="unknown chat role tool"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


@pytest.mark.parametrize("vocab", ["trained", "gpt2"])
def test_assistant_tokens_mask(tokenizer, vocab, request):
    tok = tokenizer if vocab == "trained" else request.getfixturevalue("exported_gpt2")
    out = tok.apply_chat_template(
        MESSAGES, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(mask) == len(ids)
    # The masked tokens are exactly the two answers, each with its eos: two runs of ones.
    runs = [tok.decode(ids[i:j]) for i, j in _runs_of_ones(mask)]
    assert runs == [f"Blue.{EOT}", f"Red, or green.{EOT}"]


def _runs_of_ones(mask: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, m in enumerate([*mask, 0]):
        if m and start is None:
            start = i
        if not m and start is not None:
            runs.append((start, i))
            start = None
    return runs


# ---- saving and loading elsewhere ---------------------------------------------------------------------------


def _site_packages_without_this_package(folder: Path) -> Path:
    """A folder of links to every installed distribution except hf_scratch_gpt (editable or not)."""
    folder.mkdir()
    for site_dir in site.getsitepackages():
        for entry in Path(site_dir).iterdir():
            if entry.name.startswith(("hf_scratch_gpt", "__editable__")) or entry.suffix == ".pth":
                continue
            if not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def test_auto_tokenizer_loads_without_the_package(bpe, tokenizer, tmp_path):
    folder = tmp_path / "tokenizer"
    tokenizer.save_pretrained(folder)
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    expected = {text: bpe.encode(text) for text in TEXTS}
    (tmp_path / "expected.json").write_text(json.dumps({"ids": expected, "chat": chat}), encoding="utf-8")
    child = """
import json, sys
try:
    import hf_scratch_gpt
    sys.exit("hf_scratch_gpt was importable: the test set-up is wrong")
except ModuleNotFoundError:
    pass
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained("tokenizer")
expected = json.load(open("expected.json", encoding="utf-8"))
got = {text: tok(text)["input_ids"] for text in expected["ids"]}
out = tok.apply_chat_template(expected["chat"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
answer = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
print(json.dumps({"same": got == expected["ids"], "eos": tok.eos_token, "pad": tok.pad_token,
                  "max": tok.model_max_length, "n": len(tok), "answer": tok.decode(answer)}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        PYTHONPATH=str(_site_packages_without_this_package(tmp_path / "site")),
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_OFFLINE="1",
    )
    # -S: no site-packages and no .pth files (the editable install's import hook); only the links above.
    result = subprocess.run(
        [sys.executable, "-S", "-c", child],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"same": True, "eos": EOT, "pad": EOT, "max": 256, "n": 1024, "answer": f"Yo{EOT}"}
