"""The tokenizer job: `python -m scratch_tokenizer.train` and `train_tokenizer(...)`, good and bad input."""

import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, shared_file
from transformers import AutoTokenizer

from scratch_tokenizer import train as job
from scratch_tokenizer.bpe import ByteLevelBPE, train_bpe
from scratch_tokenizer.default_corpus import default_corpus_documents, default_corpus_text
from scratch_tokenizer.train import main, train_tokenizer

EOT = "<|endoftext|>"
SAMPLE_TEXT = "It was the best of times, it was the worst of times.\n" * 40 + "Déjà vu, 한국어 🤗\n"


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(SAMPLE_TEXT, encoding="utf-8")
    return path


def run_main_expecting_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_cli_subprocess_writes_a_loadable_tokenizer(tmp_path):
    path = shared_file("the-verdict.txt")
    out = tmp_path / "tok"
    result = subprocess.run(
        [sys.executable, "-m", "scratch_tokenizer.train", str(path), "--vocab_size", "600"]
        + ["--output_dir", str(out), "--model_max_length", "128", "--no_progress"],
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sample:" in result.stdout and "decoded back:" in result.stdout
    tokenizer = AutoTokenizer.from_pretrained(out)
    bpe = ByteLevelBPE.load(out / "bpe_merges.txt")
    assert len(tokenizer) == bpe.vocab_size == 600
    assert tokenizer.model_max_length == 128
    text = path.read_text(encoding="utf-8")
    assert tokenizer(text)["input_ids"] == bpe.encode(text)
    # The same training through the Python API gives the same merges (deterministic).
    assert bpe.merges == train_bpe([text], 600, show_progress=False).merges


def test_cli_default_corpus(tmp_path, capsys):
    out = tmp_path / "tok"
    main(["--vocab_size", "512", "--output_dir", str(out), "--no_progress"])
    printed = capsys.readouterr().out
    assert "built-in default corpus" in printed
    assert f"decoded back: {job.SAMPLE!r}" in printed
    bpe = ByteLevelBPE.load(out / "bpe_merges.txt")
    assert bpe.merges == train_bpe(default_corpus_documents(), 512, show_progress=False).merges


def test_default_corpus_is_python_help_text():
    text = default_corpus_text()
    assert len(text) > 400_000
    assert 'The "assert" statement' in text and 'The "for" statement' in text


def test_cli_special_tokens_and_rerun_into_own_output(corpus_file, tmp_path, capsys):
    out = tmp_path / "tok"
    argv = [str(corpus_file), "--vocab_size", "290", "--output_dir", str(out), "--no_progress"]
    main([*argv, "--special_tokens", EOT, "<|pad|>"])
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.convert_ids_to_tokens([288, 289]) == [EOT, "<|pad|>"]
    assert tokenizer("a<|pad|>")["input_ids"][-1] == 289
    main(argv)  # the folder holds only this job's files: rewriting it is allowed
    assert len(AutoTokenizer.from_pretrained(out)) == 290
    assert "<|pad|>" not in AutoTokenizer.from_pretrained(out).get_vocab()


def test_train_tokenizer_api_files_and_texts(corpus_file):
    tokenizer = train_tokenizer(
        files=[corpus_file], texts=["extra text"], vocab_size=290, show_progress=False
    )
    bpe = train_bpe([SAMPLE_TEXT, "extra text"], 290, show_progress=False)
    assert tokenizer(SAMPLE_TEXT)["input_ids"] == bpe.encode(SAMPLE_TEXT)
    assert tokenizer.eos_token == EOT
    # A single path or string is one document, not a sequence of characters.
    expected = train_bpe([SAMPLE_TEXT], 290, show_progress=False).encode(SAMPLE_TEXT)
    for single in (dict(files=corpus_file), dict(files=str(corpus_file)), dict(texts=SAMPLE_TEXT)):
        tokenizer = train_tokenizer(**single, vocab_size=290, show_progress=False)
        assert tokenizer(SAMPLE_TEXT)["input_ids"] == expected, single


# ---- bad input: a clear error, nothing written ----------------------------------------------------------


def test_missing_file(tmp_path, capsys):
    err = run_main_expecting_error(
        [str(tmp_path / "nope.txt"), "--output_dir", str(tmp_path / "out")], capsys
    )
    assert "nope.txt does not exist" in err
    assert not (tmp_path / "out").exists()


def test_non_utf8_file_names_file_and_offset(tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9 ol\u00e9".encode("latin-1"))  # é = 0xe9 at byte offset 3
    err = run_main_expecting_error([str(bad), "--output_dir", str(tmp_path / "out")], capsys)
    assert "latin1.txt is not UTF-8: byte 0xe9 at byte offset 3" in err
    assert not (tmp_path / "out").exists()


def test_empty_corpus(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    err = run_main_expecting_error([str(empty), "--output_dir", str(tmp_path / "out")], capsys)
    assert "corpus is empty" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vocab_size", "257"], "vocab_size (257) must be larger than 256 bytes + 1 special tokens = 257"),
        (["--vocab_size", "258", "--special_tokens", "<|a|>", "<|b|>"], "must be larger than 256 bytes + 2"),
        (["--special_tokens", EOT, "<|pad|>", EOT], "duplicate special tokens ['<|endoftext|>']"),
    ],
)
def test_bad_settings(corpus_file, tmp_path, capsys, extra, message):
    err = run_main_expecting_error([str(corpus_file), "--output_dir", str(tmp_path / "out"), *extra], capsys)
    assert message in err
    assert not (tmp_path / "out").exists()


def test_output_dir_with_other_content(corpus_file, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.md").write_text("mine", encoding="utf-8")
    argv = [str(corpus_file), "--vocab_size", "290", "--output_dir", str(out), "--no_progress"]
    err = run_main_expecting_error(argv, capsys)
    assert "already holds other content (notes.md)" in err and "--overwrite_output_dir" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.md"]

    main([*argv, "--overwrite_output_dir"])
    names = {p.name for p in out.iterdir()}
    assert {"notes.md", "bpe_merges.txt", "tokenizer.json", "tokenizer_config.json"} <= names
    assert (out / "notes.md").read_text(encoding="utf-8") == "mine"  # overwrite never deletes other files
    assert len(AutoTokenizer.from_pretrained(out)) == 290


def test_output_path_is_a_file(corpus_file, tmp_path, capsys):
    (tmp_path / "file").write_text("x", encoding="utf-8")
    err = run_main_expecting_error([str(corpus_file), "--output_dir", str(tmp_path / "file")], capsys)
    assert "is not a folder" in err


def test_failure_while_saving_leaves_nothing(corpus_file, tmp_path, capsys, monkeypatch):
    def broken_save(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(ByteLevelBPE, "save", broken_save)
    parent = tmp_path / "runs"
    err = run_main_expecting_error(
        [str(corpus_file), "--vocab_size", "290", "--output_dir", str(parent / "tok"), "--no_progress"],
        capsys,
    )
    assert "disk full" in err
    assert list(parent.iterdir()) == []  # no output folder, no staging folder left behind
