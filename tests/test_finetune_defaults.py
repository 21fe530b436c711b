"""Finetuning defaults chosen from the base: small project bases vs GPT-2-sized ones, and only for flags not given."""

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM
from hf_scratch_gpt.data.arguments import DataArguments
from hf_scratch_gpt.model.presets import preset_config_kwargs
from hf_scratch_gpt.training.arguments import ModelArguments, RunArguments
from hf_scratch_gpt.training.defaults import (
    apply_finetune_defaults,
    count_config_parameters,
    defaults_help,
    finetune_defaults,
    given_arguments,
)

ARGUMENT_TYPES = (ModelArguments, DataArguments, RunArguments, TrainingArguments)
MINI = ScratchGPTConfig(**preset_config_kwargs("mini"), vocab_size=4096)  # the main job's base shape


def test_parameter_count_from_the_config_matches_built_models():
    """GPT-2 small built on the meta device (nothing allocated, nothing downloaded), and a built ScratchGPT."""
    with torch.device("meta"):
        gpt2 = GPT2LMHeadModel(GPT2Config())
    assert count_config_parameters(GPT2Config()) == sum(p.numel() for p in gpt2.parameters()) == 124_439_808
    tiny = ScratchGPTConfig(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=300)
    assert count_config_parameters(tiny) == sum(p.numel() for p in ScratchGPTForCausalLM(tiny).parameters())


@pytest.mark.parametrize("config", [GPT2Config(), ScratchGPTConfig(**preset_config_kwargs("gpt2"))])
def test_gpt2_sized_bases_keep_the_books_settings(config, tmp_path):
    # Even with a pretraining record, a GPT-2-sized base gets the book's values (chapter 7: 5e-5, 2 epochs).
    (tmp_path / "all_results.json").write_text(json.dumps({"learning_rate": 2e-3}))
    instruct = finetune_defaults("instruct", config, tmp_path)
    assert (instruct.learning_rate, instruct.num_train_epochs, instruct.lr_scheduler_type) == (
        5e-5,
        2,
        "constant",
    )
    assert instruct.warmup_steps == 0.0 and instruct.per_device_train_batch_size == 8
    assert "GPT-2-sized" in instruct.reason
    classify = finetune_defaults("classify", config, None)
    assert classify.learning_rate == 5e-5 and classify.num_train_epochs == 5  # the book's chapter 6


def test_a_small_base_gets_a_high_learning_rate_from_its_pretraining_record(tmp_path):
    no_record = finetune_defaults("instruct", MINI, tmp_path)  # a folder without all_results.json
    assert (no_record.learning_rate, no_record.num_train_epochs) == (1e-3, 10)
    assert no_record.per_device_train_batch_size == 32
    assert "no pretraining record" in no_record.reason
    # The learning rate the base was pretrained with, as recipes/pretrain.py records it.
    (tmp_path / "all_results.json").write_text(
        json.dumps({"learning_rate": 4e-3, "train_tokens_seen": 638_976})
    )
    recorded = finetune_defaults("instruct", MINI, tmp_path)
    assert recorded.learning_rate == pytest.approx(4e-3) and recorded.num_train_epochs == 10
    assert "1.2M parameters" in recorded.reason and "0.6M tokens" in recorded.reason
    assert finetune_defaults("classify", MINI, tmp_path).learning_rate == pytest.approx(1e-3)  # a quarter


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match=r"unknown finetuning task 'summarize'.*'instruct', 'classify'"):
        finetune_defaults("summarize", MINI, None)


def test_given_arguments_are_what_was_typed(tmp_path):
    argv = [
        "--model_name_or_path",
        "x",
        "--learning_r",
        "1e-3",
        "--num_train_epochs=3",
        "--bf16",
        "--seed",
        "1",
    ]
    assert given_arguments(ARGUMENT_TYPES, argv) == {
        "model_name_or_path",
        "learning_rate",  # an abbreviated flag, as argparse reads it
        "num_train_epochs",
        "bf16",
        "seed",
    }
    assert given_arguments(ARGUMENT_TYPES, []) == set()
    config = tmp_path / "args.json"
    config.write_text(json.dumps({"model_name_or_path": "x", "warmup_steps": 10}))
    assert given_arguments(ARGUMENT_TYPES, [str(config)]) == {"model_name_or_path", "warmup_steps"}


def test_defaults_apply_only_to_flags_not_given(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=3e-4, use_cpu=True, report_to="none")
    defaults = finetune_defaults("instruct", MINI, None)
    applied = apply_finetune_defaults(args, defaults, given={"learning_rate"})
    assert args.learning_rate == 3e-4 and "learning_rate" not in applied
    assert args.num_train_epochs == 10 and args.warmup_steps == 0.05
    assert args.lr_scheduler_type.value == "cosine"  # an enum, as TrainingArguments keeps it


def test_preference_defaults_of_a_small_base_are_the_measured_dpo_values(tmp_path):
    # The values benchmarks/dpo_preference.py measured (0.81 full / 0.80 LoRA held-out preference accuracy); a
    # recorded pretraining learning rate does not move them (DPO starts from an instruction-finetuned folder).
    (tmp_path / "all_results.json").write_text(json.dumps({"learning_rate": 4e-3}))
    full = finetune_defaults("preference", MINI, tmp_path)
    assert (full.beta, full.learning_rate, full.num_train_epochs) == (0.3, 1e-4, 2)
    assert (full.warmup_steps, full.lr_scheduler_type, full.per_device_train_batch_size) == (
        0.05,
        "linear",
        8,
    )
    assert full.as_dict()["beta"] == 0.3 and "a small base" in full.reason and "LoRA" not in full.reason
    lora = finetune_defaults("preference", MINI, tmp_path, use_peft=True)
    assert lora.learning_rate == pytest.approx(1e-3) and lora.beta == 0.3 and lora.num_train_epochs == 2
    assert "LoRA: 10 x the learning rate, 0.001" in lora.reason
    # use_peft changes nothing for the other tasks, and their defaults carry no beta
    instruct = finetune_defaults("instruct", MINI, tmp_path, use_peft=True)
    assert instruct.learning_rate == pytest.approx(4e-3) and "beta" not in instruct.as_dict()


@pytest.mark.parametrize("config", [GPT2Config(), ScratchGPTConfig(**preset_config_kwargs("gpt2"))])
def test_gpt2_sized_bases_keep_the_books_dpo_settings(config):
    # The book's chapter 7 DPO on GPT-2 medium: beta 0.1, AdamW lr 5e-6, 1 epoch, batch 8.
    full = finetune_defaults("preference", config, None)
    assert (full.beta, full.learning_rate, full.num_train_epochs, full.lr_scheduler_type) == (
        0.1,
        5e-6,
        1,
        "constant",
    )
    assert full.warmup_steps == 0.0 and full.per_device_train_batch_size == 8
    assert "the book's DPO settings" in full.reason
    assert finetune_defaults("preference", config, None, use_peft=True).learning_rate == pytest.approx(5e-5)


def test_dpo_beta_is_a_default_only_when_not_given(tmp_path):
    trl = pytest.importorskip("trl", reason="needs the trl extra: pip install -e '.[trl]'")
    # (DPOConfig has its own --trust_remote_code, so no ModelArguments here: the recipe drops theirs)
    argument_types = (DataArguments, RunArguments, trl.DPOConfig)
    given = given_arguments(argument_types, ["--train_file", "x.json", "--beta", "0.5"])
    assert given == {"train_file", "beta"}
    args = trl.DPOConfig(output_dir=str(tmp_path), beta=0.5, use_cpu=True, report_to="none")
    assert args.learning_rate == 1e-6  # TRL's own default, replaced below
    applied = apply_finetune_defaults(args, finetune_defaults("preference", MINI, None), given)
    assert args.beta == 0.5 and "beta" not in applied
    assert (
        args.learning_rate == 1e-4 and args.num_train_epochs == 2 and args.lr_scheduler_type.value == "linear"
    )
    fresh = trl.DPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", learning_rate=2e-4)
    apply_finetune_defaults(fresh, finetune_defaults("preference", MINI, None), {"learning_rate"})
    assert fresh.beta == 0.3 and fresh.learning_rate == 2e-4


def test_preference_help_names_both_tables():
    text = defaults_help("preference")
    assert "beta 0.3, learning_rate 0.0001, 2 epochs" in text
    assert "beta 0.1, learning_rate 5e-06, 1 epochs" in text and "10 x higher" in text
