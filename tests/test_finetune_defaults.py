"""Finetuning defaults chosen from the base: small project bases vs GPT-2-sized ones, and only for flags not given."""

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM
from hf_scratch_gpt.data.arguments import DataArguments
from hf_scratch_gpt.model.presets import preset_config_kwargs
from hf_scratch_gpt.training.arguments import ModelArguments, RunArguments, parse_recipe_args
from hf_scratch_gpt.training.defaults import count_config_parameters, defaults_help, finetune_defaults

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


@pytest.fixture
def mini_base(tmp_path):
    """A folder holding only the main job's base config (no pretraining record): the small-base table applies."""
    MINI.save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def parse(argument_types, task, base, *argv):
    """The recipes' parser on `argv`, with the values chosen from `base` for `task`; the TrainingArguments."""
    args = ["--model_name_or_path", str(base), "--output_dir", str(base.parent / "out"), *argv]
    return parse_recipe_args(argument_types, {"report_to": "none"}, args, defaults_from_base=task)[-1]


def test_flags_given_win_over_the_base_and_the_rest_come_from_it(mini_base):
    small = finetune_defaults("instruct", MINI, mini_base)
    chosen = parse(ARGUMENT_TYPES, "instruct", mini_base)
    assert (chosen.learning_rate, chosen.num_train_epochs, chosen.warmup_steps) == (1e-3, 10, 0.05)
    assert chosen.lr_scheduler_type.value == "cosine"  # an enum, as TrainingArguments keeps it
    assert chosen.per_device_train_batch_size == small.per_device_train_batch_size == 32
    # An abbreviated flag and --flag=value count, as argparse reads them; what is not given stays the base's.
    given = parse(ARGUMENT_TYPES, "instruct", mini_base, "--learning_r", "3e-4", "--num_train_epochs=3")
    assert (given.learning_rate, given.num_train_epochs) == (3e-4, 3)
    assert given.warmup_steps == 0.05 and given.lr_scheduler_type.value == "cosine"
    # A falsy value given (no warmup) is given all the same.
    no_warmup = parse(ARGUMENT_TYPES, "instruct", mini_base, "--warmup_steps", "0")
    assert no_warmup.warmup_steps == 0 and no_warmup.learning_rate == 1e-3


def test_config_file_values_win_over_the_base_and_flags_over_the_file(mini_base, tmp_path):
    config = tmp_path / "args.json"
    config.write_text(json.dumps({"warmup_steps": 10, "learning_rate": 2e-4}))
    from_file = parse(ARGUMENT_TYPES, "instruct", mini_base, "--config", str(config))
    assert (from_file.warmup_steps, from_file.learning_rate) == (10, 2e-4)
    assert from_file.num_train_epochs == 10  # not in the file: the base's
    flag_beside = parse(
        ARGUMENT_TYPES, "instruct", mini_base, "--config", str(config), "--learning_rate", "5e-4"
    )
    assert (flag_beside.learning_rate, flag_beside.warmup_steps) == (5e-4, 10)
    # A lone config file names the base itself.
    lone = tmp_path / "run.yaml"
    lone.write_text(f"model_name_or_path: {mini_base}\noutput_dir: {tmp_path / 'o'}\nnum_train_epochs: 4\n")
    alone = parse_recipe_args(
        ARGUMENT_TYPES, {"report_to": "none"}, [str(lone)], defaults_from_base="instruct"
    )
    assert (alone[-1].num_train_epochs, alone[-1].learning_rate) == (4, 1e-3)


def test_without_a_task_nothing_comes_from_the_base(mini_base):
    args = ["--model_name_or_path", str(mini_base), "--output_dir", str(mini_base.parent / "o")]
    plain = parse_recipe_args(ARGUMENT_TYPES, {"report_to": "none"}, args)[-1]
    assert plain.learning_rate == TrainingArguments(output_dir="o").learning_rate  # transformers' own default


def test_a_task_needs_the_base(tmp_path):
    with pytest.raises(ValueError, match="--model_name_or_path is required"):
        parse_recipe_args(ARGUMENT_TYPES, {}, ["--output_dir", str(tmp_path)], defaults_from_base="classify")


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


def test_dpo_beta_is_a_default_only_when_not_given(mini_base):
    pytest.importorskip("trl", reason="needs the trl extra: pip install -e '.[trl]'")
    from recipes.finetune_preference import ARGUMENT_TYPES as DPO_ARGUMENT_TYPES

    given = parse(DPO_ARGUMENT_TYPES, "preference", mini_base, "--train_file", "x.json", "--beta", "0.5")
    assert given.beta == 0.5  # given: TRL's 0.1 and the base's 0.3 both lose
    assert (
        given.learning_rate == 1e-4
        and given.num_train_epochs == 2
        and given.lr_scheduler_type.value == "linear"
    )
    fresh = parse(DPO_ARGUMENT_TYPES, "preference", mini_base, "--learning_rate", "2e-4")
    assert fresh.beta == 0.3 and fresh.learning_rate == 2e-4
    lora = parse(DPO_ARGUMENT_TYPES, "preference", mini_base, "--use_peft")
    assert lora.learning_rate == pytest.approx(1e-3) and lora.beta == 0.3  # LoRA's 10 x learning rate


def test_preference_help_names_both_tables():
    text = defaults_help("preference")
    assert "beta 0.3, learning_rate 0.0001, 2 epochs" in text
    assert "beta 0.1, learning_rate 5e-06, 1 epochs" in text and "10 x higher" in text
