"""CTranslate2 runs our GPT-2 export unchanged: its converter (Python API and command line) reads the folder, and the
converted model gives our logits (fp32, within 1e-5) and our `generate()`'s greedy tokens.

The checkpoint's tokenizer is saved as tokenizers trained before unk_token was named were: CTranslate2 refuses a
null unk_token (`json type_error.302` when loading), so this also checks that the export repairs it.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import PROMPTS, export_gpt2, our_greedy, our_logits, tiny_checkpoint, trained_tokenizer
from transformers import AutoTokenizer

from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM

ctranslate2 = pytest.importorskip("ctranslate2", reason="optional: pip install 'hf_scratch_gpt[ctranslate2]'")

# CTranslate2 keeps only the vocabulary (vocabulary.json) unless told to copy the tokenizer files too.
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]
CLI = Path(sys.executable).parent / "ct2-transformers-converter"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, ScratchGPTForCausalLM]:
    """The GPT-2 export of a tiny checkpoint with our own tokenizer (saved without unk), and our model."""
    folder = tmp_path_factory.mktemp("ct2")
    checkpoint = tiny_checkpoint(folder / "ours", trained_tokenizer())
    return export_gpt2(checkpoint, folder / "gpt2"), ScratchGPTForCausalLM.from_pretrained(checkpoint).eval()


def convert(gpt2_dir: Path, output_dir: Path, route: str, quantization: str | None = None) -> Path:
    """Convert with CTranslate2's Python API or its command line, copying the tokenizer files along."""
    if route == "api":
        converter = ctranslate2.converters.TransformersConverter(str(gpt2_dir), copy_files=TOKENIZER_FILES)
        return Path(converter.convert(str(output_dir), quantization=quantization))
    if not CLI.is_file():
        pytest.skip(f"{CLI} is absent (it comes with the ctranslate2 wheel)")
    command = [
        str(CLI),
        "--model",
        str(gpt2_dir),
        "--output_dir",
        str(output_dir),
        "--copy_files",
        *TOKENIZER_FILES,
    ]
    command += ["--quantization", quantization] if quantization else []
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


def generator(folder: Path):
    return ctranslate2.Generator(str(folder), device="cpu", intra_threads=2)


@pytest.mark.parametrize("route", ["api", "cli"])
def test_fp32_gives_our_logits_and_greedy_tokens(exported, tmp_path, route):
    gpt2_dir, model = exported
    folder = convert(gpt2_dir, tmp_path / "ct2", route)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["unk_token"] == config["eos_token"] == "<|endoftext|>"
    ct2 = generator(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)  # the copied tokenizer loads from the converted folder
    for text in PROMPTS:
        ids = tokenizer(text)["input_ids"]
        tokens = tokenizer.convert_ids_to_tokens(ids)  # CTranslate2 takes token strings
        logits = torch.from_numpy(np.asarray(ct2.forward_batch([tokens])))[0]
        torch.testing.assert_close(logits, our_logits(model, ids), rtol=0, atol=1e-5)
        n_new = 24
        result = ct2.generate_batch(
            [tokens], max_length=n_new, min_length=n_new, sampling_topk=1, include_prompt_in_result=False
        )
        assert result[0].sequences_ids[0] == our_greedy(model, ids, n_new), text


def test_vocabulary_and_tokenizer_of_the_converted_folder(exported, tmp_path):
    gpt2_dir, _ = exported
    folder = convert(gpt2_dir, tmp_path / "ct2", "api")
    source = AutoTokenizer.from_pretrained(gpt2_dir)
    vocabulary = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
    assert vocabulary == source.convert_ids_to_tokens(list(range(len(source))))  # id order, specials included
    copied = AutoTokenizer.from_pretrained(folder)
    for text in PROMPTS:
        assert copied(text)["input_ids"] == source(text)["input_ids"]
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    assert copied.apply_chat_template(messages, tokenize=False) == source.apply_chat_template(
        messages, tokenize=False
    )


def test_int8_is_close_to_fp32(exported, tmp_path):
    """int8 quantizes the weights per output row and the activations per token, so it is not our model exactly:
    the bound is on the logits' relative error, 0.053 measured on this seeded model (up to 0.16 on random tiny
    models with larger weights: weights without the structure of trained ones are int8's worst case, so greedy
    tokens are not compared). 0.15 leaves room for other CPUs' int8 kernels; a broken conversion (a transposed or
    missing matrix) gives an error near 1 or more."""
    gpt2_dir, model = exported
    ct2 = generator(convert(gpt2_dir, tmp_path / "ct2_int8", "api", quantization="int8"))
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    for text in PROMPTS:
        ids = tokenizer(text)["input_ids"]
        logits = torch.from_numpy(np.asarray(ct2.forward_batch([tokenizer.convert_ids_to_tokens(ids)])))[0]
        reference = our_logits(model, ids)
        relative = (logits - reference).norm() / reference.norm()
        assert relative < 0.15, f"{text!r}: int8 logits' relative error {relative:.3f}"
