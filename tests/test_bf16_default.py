"""The recipes' `--bf16` default: on where the hardware computes bfloat16 natively and, on a CPU, the model is wide
enough (hf_scratch_gpt.training.arguments.bf16_default); a flag or a config file always wins."""

import json

import pytest
from transformers import TrainingArguments

from hf_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.presets import MODEL_PRESETS, preset_config_kwargs
from hf_scratch_gpt.training import arguments
from hf_scratch_gpt.training.arguments import (
    BF16_CPU_MIN_WIDTH,
    ModelArguments,
    RunArguments,
    parse_recipe_args,
)

TYPES = (ModelArguments, RunArguments, TrainingArguments)


@pytest.fixture
def native_bf16_cpu(monkeypatch):
    """A CPU that computes bfloat16 natively (AMX / AVX512-BF16), whatever this machine has."""
    monkeypatch.setattr(arguments, "bf16_is_fast", lambda: True)
    monkeypatch.setattr(arguments.torch.cuda, "is_available", lambda: False)


def parse(tmp_path, *argv) -> tuple[bool, str | None]:
    """(--bf16 as the run gets it, the reason logged for it being off)."""
    _, run_args, training_args = parse_recipe_args(
        TYPES, {"report_to": "none"}, ["--output_dir", str(tmp_path / "out"), *argv]
    )
    return training_args.bf16, run_args.precision_reason


def base_folder(tmp_path, width: int):
    folder = tmp_path / f"base{width}"
    config = ScratchGPTConfig(n_layer=2, n_head=4, n_embd=width, vocab_size=300, n_positions=64)
    config.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("size", ["tiny", "mini", "small", "baby", "gpt2"])
def test_a_preset_trains_in_bf16_on_a_native_cpu_only_from_the_minimum_width(native_bf16_cpu, tmp_path, size):
    width = MODEL_PRESETS[size]["n_embd"]
    bf16, reason = parse(tmp_path, "--model_size", size)
    assert bf16 == (width >= BF16_CPU_MIN_WIDTH)
    if bf16:
        assert reason is None
    else:  # the log line says why, and how to turn it on
        for part in (f"{width} wide", f"n_embd {BF16_CPU_MIN_WIDTH}", "--bf16 true"):
            assert part in reason


def test_the_width_comes_from_the_overrides_or_the_base_folder(native_bf16_cpu, tmp_path):
    assert preset_config_kwargs("mini")["n_embd"] < BF16_CPU_MIN_WIDTH
    assert parse(tmp_path, "--model_size", "mini", "--config_overrides", "n_embd=512,n_head=8")[0] is True
    assert parse(tmp_path, "--model_name_or_path", str(base_folder(tmp_path, 128)))[0] is False
    assert parse(tmp_path, "--model_name_or_path", str(base_folder(tmp_path, 512)))[0] is True
    # A name that is no local folder (a Hub model): its width is unknown without loading it, so native bf16 rules.
    assert parse(tmp_path, "--model_name_or_path", "openai-community/gpt2")[0] is True


def test_a_flag_or_a_config_file_wins(native_bf16_cpu, tmp_path):
    assert parse(tmp_path, "--model_size", "mini", "--bf16", "true") == (True, None)
    assert parse(tmp_path, "--model_size", "baby", "--bf16", "false") == (False, None)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"bf16": True, "model_size": "mini"}))
    assert parse(tmp_path, "--config", str(config)) == (True, None)


def test_without_native_bf16_the_default_is_float32_at_any_width(monkeypatch, tmp_path):
    monkeypatch.setattr(arguments, "bf16_is_fast", lambda: False)
    assert parse(tmp_path, "--model_size", "gpt2") == (False, None)
