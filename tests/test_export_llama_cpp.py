"""llama.cpp's own converter (`convert_hf_to_gguf.py`, as the llama-cpp-python sdist vendors it) on our GPT-2
export, run unchanged; the GGUF it writes, loaded back by transformers, gives our logits (within 1e-5) and our
greedy tokens, and its tokenizer encodes as ours.

Slow, and it needs the sdist (about 76 MB, not a dependency): point LLAMA_CPP_PYTHON_SDIST at the .tar.gz or at
an extracted folder, e.g.

    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/llama_src
    LLAMA_CPP_PYTHON_SDIST=/tmp/llama_src/llama_cpp_python-0.3.36.tar.gz pytest -m slow tests/test_export_llama_cpp.py

The converter names a BPE pre-tokenizer by hashing its tokenization of a fixed text, so it accepts unchanged an
export with GPT-2's vocabulary (its hash list has GPT-2) and refuses every vocabulary we train; for those, the
benchmark's `convert_with_llama_cpp(..., pre_tokenizer="gpt-2")` supplies the name after checking our tokenizer
splits text as GPT-2's does (see benchmarks/llama_cpp.py).
"""

import importlib.util
import os
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from export_helpers import (
    N_POSITIONS,
    PROMPTS,
    export_gpt2,
    gpt2_vocab_tokenizer,
    our_greedy,
    our_logits,
    tiny_checkpoint,
    trained_tokenizer,
)
from transformers import AutoTokenizer, GPT2LMHeadModel

from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
from scratch_tokenizer.bpe import ByteLevelBPE, train_bpe
from scratch_tokenizer.hf_tokenizer import to_hf_tokenizer

pytestmark = pytest.mark.slow
gguf = pytest.importorskip(
    "gguf", reason="transformers' GGUF loader needs it: pip install 'hf_scratch_gpt[gguf]'"
)


def load_benchmark():
    """benchmarks/llama_cpp.py as a module (not importable by name: `llama_cpp` is llama-cpp-python's package)."""
    spec = importlib.util.spec_from_file_location(
        "bench_llama_cpp", REPO_ROOT / "benchmarks" / "llama_cpp.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_benchmark()


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    sdist = os.environ.get(bench.SDIST_ENV)
    if not sdist:
        pytest.skip(
            f"set {bench.SDIST_ENV} to the llama-cpp-python {bench.SDIST_VERSION} sdist (.tar.gz or extracted "
            f"folder); get it with: {bench.HOW_TO_GET}"
        )
    return bench.llama_cpp_source(sdist, tmp_path_factory.mktemp("llama_src"))


def field(reader, key: str):
    return reader.get_field(key).contents()


def check_gguf(gguf_path: Path, model: ScratchGPTForCausalLM, source_tokenizer) -> None:
    """What the converter wrote, read back by transformers and by the gguf package, against our model."""
    reader = gguf.GGUFReader(gguf_path)
    assert field(reader, "tokenizer.ggml.pre") == "gpt-2"
    assert field(reader, "gpt2.context_length") == N_POSITIONS  # from the export's n_ctx
    template = field(reader, "tokenizer.chat_template")
    assert "{% generation %}" not in template and "endgeneration" not in template
    assert field(reader, "tokenizer.ggml.unknown_token_id") == source_tokenizer.eos_token_id

    folder, name = gguf_path.parent, gguf_path.name
    # transformers' gpt2 GGUF mapping fills n_ctx, not n_positions: pass it, or wpe has the wrong shape.
    loaded = GPT2LMHeadModel.from_pretrained(folder, gguf_file=name, n_positions=N_POSITIONS).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    for text in PROMPTS:
        ids = source_tokenizer(text)["input_ids"]
        assert tokenizer(text)["input_ids"] == ids, text
        with torch.no_grad():
            logits = loaded(torch.tensor([ids])).logits[0]
        torch.testing.assert_close(logits, our_logits(model, ids), rtol=0, atol=1e-5)
        assert our_greedy(loaded, ids) == our_greedy(model, ids), text


def exported(tmp_path: Path, tokenizer) -> tuple[Path, ScratchGPTForCausalLM, object]:
    checkpoint = tiny_checkpoint(tmp_path / "ours", tokenizer)
    gpt2_dir = export_gpt2(checkpoint, tmp_path / "gpt2")
    model = ScratchGPTForCausalLM.from_pretrained(checkpoint).eval()
    return gpt2_dir, model, AutoTokenizer.from_pretrained(gpt2_dir)


def test_gpt2_vocabulary_converts_unchanged(llama_dir, tmp_path):
    gpt2_dir, model, tokenizer = exported(tmp_path, gpt2_vocab_tokenizer())
    out = tmp_path / "model-f32.gguf"
    result = bench.convert_with_llama_cpp(llama_dir, gpt2_dir, out, "f32")
    assert result.returncode == 0, result.stderr[-3000:]
    check_gguf(out, model, tokenizer)


def test_our_vocabulary_needs_the_pre_tokenizer_named(llama_dir, tmp_path):
    gpt2_dir, model, tokenizer = exported(tmp_path, trained_tokenizer())
    out = tmp_path / "model-f32.gguf"
    unchanged = bench.convert_with_llama_cpp(llama_dir, gpt2_dir, out, "f32")
    assert unchanged.returncode != 0 and "BPE pre-tokenizer was not recognized" in unchanged.stderr
    named = bench.convert_with_llama_cpp(llama_dir, gpt2_dir, out, "f32", pre_tokenizer="gpt-2")
    assert named.returncode == 0, named.stderr[-3000:]
    check_gguf(out, model, tokenizer)


def test_a_tokenizer_that_splits_otherwise_gets_no_gpt2_name(llama_dir, tmp_path):
    """Naming the pre-tokenizer is only honest for a tokenizer that splits text as GPT-2's regex does."""
    bpe = train_bpe([PROMPTS[0] * 20], vocab_size=265, show_progress=False)
    whitespace_split = to_hf_tokenizer(ByteLevelBPE(bpe.merges, bpe.special_tokens, pattern=r"\S+|\s+"))
    gpt2_dir, _, _ = exported(tmp_path, whitespace_split)
    with pytest.raises(ValueError, match="GPT-2's pre-tokenizer"):
        bench.convert_with_llama_cpp(llama_dir, gpt2_dir, tmp_path / "x.gguf", "f32", pre_tokenizer="gpt-2")
