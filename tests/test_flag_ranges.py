"""Every numeric flag of every recipe is checked where it is parsed: an out-of-range value, NaN or infinity is
refused with a ValueError that names the flag, the value and the valid range, before anything is trained.

The numeric flags are enumerated from the dataclasses each recipe's `parse_args` returns (ours, transformers'
TrainingArguments, TRL's DPOConfig), so a numeric field added later is covered automatically: the enumeration test
fails until it gets an out-of-range value in BAD_VALUES, or a reason in EXEMPT. The bad values are chosen from
what each flag means, not read from the checking code. Parse only: nothing trains here.
"""

import dataclasses
import re

import pytest
from recipe_helpers import ascii_text, load_recipe, make_checkpoint

pytest.importorskip("trl", reason="needs the trl extra: pip install -e '.[trl]'")

RECIPES = ("pretrain", "finetune_classifier", "finetune_instruct", "finetune_preference")

# One out-of-range value per numeric flag, and what it would do if it were accepted.
BAD_VALUES = {
    # pretrain.py
    "block_size": "1",  # one token per block leaves nothing to predict (the labels are the inputs shifted by one)
    "vocab_size": "257",  # 256 bytes + <|endoftext|> leave no room for a single merge
    "sample_max_new_tokens": "0",  # a sample of no tokens
    # finetune_classifier.py / finetune_instruct.py
    "max_seq_length": "0",  # used to mean the model's context, silently
    "test_split_percentage": "100",  # no rows left to train on
    "task_train_examples": "0",
    "task_eval_examples": "0",
    "task_multiturn_share": "1.5",  # a share of the records, 0 .. 1
    "judge_max_new_tokens": "0",  # the judge could write no rating
    # DataArguments
    "validation_split_percentage": "100",
    "max_train_samples": "0",  # trains on nothing
    "max_eval_samples": "0",  # evaluates nothing
    "preprocessing_num_workers": "-1",
    # ResponseArguments
    "max_new_tokens": "0",
    "num_generate": "-1",
    "generation_batch_size": "0",
    "no_repeat_ngram_size": "-1",
    "repetition_penalty": "0",
    # LoraArguments
    "lora_r": "0",  # an adapter of rank 0 has no weights
    "lora_alpha": "0",  # scales the adapters' output to zero: they train nothing
    "lora_dropout": "1",  # drops every input of the adapters
    # RunArguments
    "max_train_seconds": "-1",
    # TrainingArguments
    "per_device_train_batch_size": "0",
    "per_device_eval_batch_size": "0",
    "gradient_accumulation_steps": "0",
    "eval_accumulation_steps": "0",
    "num_train_epochs": "0",
    "max_steps": "0",  # Trainer reads 0 as "use --num_train_epochs" (-1 is the documented way)
    "warmup_steps": "-1",
    "logging_steps": "-1",
    "eval_steps": "0",  # TrainingArguments silently replaces 0 by --logging_steps
    "eval_delay": "-1",
    "save_steps": "0",
    "save_total_limit": "0",  # transformers reads 0 as "keep every checkpoint"
    "torch_empty_cache_steps": "0",
    "learning_rate": "0",  # trains nothing
    "weight_decay": "-0.1",  # grows the weights
    "adam_beta1": "1",  # the first moment would never move
    "adam_beta2": "1",
    "adam_epsilon": "-1e-08",
    "max_grad_norm": "-1",
    "label_smoothing_factor": "1",  # every target uniform: nothing to learn
    "neftune_noise_alpha": "0",  # NEFTune switched on with no noise
    "seed": "-1",  # numpy's seeds are 0 .. 2**32 - 1
    "data_seed": "-1",
    "dataloader_num_workers": "-1",
    "dataloader_prefetch_factor": "0",
    "ddp_bucket_cap_mb": "0",
    "ddp_timeout": "0",
    "local_rank": "-2",  # -1 (not distributed) or a process index
    # DPOConfig
    "beta": "-1",  # trains towards the rejected answers
    "label_smoothing": "0.5",  # half the labels flipped: chosen and rejected weigh the same
    "max_length": "0",  # used to mean the model's context, silently
    "dataset_num_proc": "-1",
    "precompute_ref_batch_size": "0",
    "loss_weights": "-1",  # a negative weight trains a loss backwards
    "ld_alpha": "1.5",  # LD-DPO's alpha is a share of the tail's log-probability, 0 .. 1
    "f_alpha_divergence_coef": "nan",  # any finite alpha works; NaN poisons the loss
    "discopop_tau": "0",  # a temperature that divides
    "ref_model_mixup_alpha": "1.5",  # a mixing weight, 0 .. 1
    "ref_model_sync_steps": "0",
    "router_aux_loss_coef": "-1",
}

# Numeric fields that have no range to check, and why.
EXEMPT = {
    # DPOConfig takes it as text ('auto', 'none' or a number) and converts it itself; padding to a multiple changes
    # the batch shapes, never what is trained.
    "pad_to_multiple_of": "text option converted by TRL",
}

NUMERIC = re.compile(r"\b(int|float)\b")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("base") / "ckpt", ascii_text(5_000))


def base_args(recipe: str, checkpoint, tmp_path) -> list[str]:
    args = ["--output_dir", str(tmp_path / "out")]
    return args if recipe == "pretrain" else [*args, "--model_name_or_path", str(checkpoint)]


def numeric_fields(recipe: str, checkpoint, tmp_path) -> dict[str, str]:
    """Every numeric flag the recipe's parser accepts: name -> type, from the dataclasses it returns."""
    parsed = load_recipe(recipe).parse_args(base_args(recipe, checkpoint, tmp_path))
    return {
        field.name: str(field.type)
        for arguments in parsed
        for field in dataclasses.fields(arguments)
        if field.init and NUMERIC.search(str(field.type))
    }


def refusal(recipe: str, args: list[str]) -> str:
    with pytest.raises(ValueError) as error:
        load_recipe(recipe).parse_args(args)
    return str(error.value)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_numeric_flag_has_a_bad_value_or_an_exemption(recipe, checkpoint, tmp_path):
    fields = numeric_fields(recipe, checkpoint, tmp_path)
    assert len(fields) > 20  # the enumeration sees TrainingArguments' flags, not only ours
    missing = sorted(set(fields) - set(BAD_VALUES) - set(EXEMPT))
    assert not missing, f"numeric flags of {recipe} with no out-of-range value in BAD_VALUES: {missing}"


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_out_of_range_value_is_refused_naming_flag_value_and_range(recipe, checkpoint, tmp_path):
    base = base_args(recipe, checkpoint, tmp_path)
    wrong = []
    for name, type_name in numeric_fields(recipe, checkpoint, tmp_path).items():
        if name in EXEMPT:
            continue
        bad_values = [BAD_VALUES[name]] + (["nan", "inf"] if "float" in type_name else [])
        for bad in bad_values:  # --flag=value: argparse would read "-1e-08" as a flag of its own
            try:
                load_recipe(recipe).parse_args([*base, f"--{name}={bad}"])
            except ValueError as error:
                message = str(error)
            except Exception as error:  # noqa: BLE001 - a crash instead of a refusal is a finding too
                wrong.append(f"--{name} {bad}: {type(error).__name__}: {error}")
                continue
            else:
                wrong.append(f"--{name} {bad}: accepted")
                continue
            shown = {bad, str(float(bad))}
            if (
                f"--{name} " not in message
                or "must be" not in message
                or not any(s in message for s in shown)
            ):
                wrong.append(f"--{name} {bad}: {message}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("recipe", "flags"),
    [
        ("pretrain", ["--max_steps", "-1", "--warmup_steps", "0", "--max_grad_norm", "0", "--seed", "0"]),
        ("pretrain", ["--block_size", "2", "--vocab_size", "258", "--logging_steps", "0.5"]),
        (
            "pretrain",
            ["--max_train_seconds", "0", "--dataloader_num_workers", "0", "--save_total_limit", "1"],
        ),
        ("finetune_classifier", ["--max_seq_length", "1", "--lora_dropout", "0", "--adam_beta1", "0"]),
        (
            "finetune_instruct",
            ["--num_generate", "0", "--no_repeat_ngram_size", "0", "--max_seq_length", "2"],
        ),
        ("finetune_preference", ["--beta", "0.01", "--label_smoothing", "0", "--ld_alpha", "1"]),
        ("finetune_preference", ["--validation_split_percentage", "45", "--test_split_percentage", "45"]),
    ],
)
def test_values_at_the_edge_of_their_range_still_parse(recipe, flags, checkpoint, tmp_path):
    parsed = load_recipe(recipe).parse_args([*base_args(recipe, checkpoint, tmp_path), *flags])
    given = dict(zip(flags[::2], flags[1::2], strict=True))
    values = {f"--{f.name}": getattr(a, f.name) for a in parsed for f in dataclasses.fields(a) if f.init}
    for flag, text in given.items():
        assert float(values[flag]) == float(text), flag


@pytest.mark.parametrize("beta", ["-1", "0", "-0.0"])
def test_dpo_beta_must_be_positive(beta, checkpoint, tmp_path):
    # DPO's implicit reward is beta * (log-ratio): a negative beta rewards the rejected answers and reports the
    # ranking it learned as accuracy; beta 0 makes the loss a constant (log 2), so nothing trains.
    message = refusal(
        "finetune_preference", [*base_args("finetune_preference", checkpoint, tmp_path), "--beta", beta]
    )
    assert f"--beta must be > 0, got {float(beta)}" in message


def test_dpo_max_length_must_leave_room_for_a_prompt_and_an_answer(checkpoint, tmp_path):
    from transformers import AutoTokenizer

    # The chat template's own tokens around a one-token prompt and a one-token answer (with its EOS): the
    # shortest pair there can be. The checkpoint's tokenizer has no template of its own, so it gets ours.
    from scratch_tokenizer.hf_tokenizer import CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    assert len(tokenizer("x")["input_ids"]) == len(tokenizer("y")["input_ids"]) == 1
    pair = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    shortest = len(
        tokenizer.apply_chat_template(pair, chat_template=CHAT_TEMPLATE, tokenize=True)["input_ids"]
    )
    assert 10 < shortest < 64  # "### User:" ... "### Assistant:" in a 300-token vocabulary; the context is 64
    base = base_args("finetune_preference", checkpoint, tmp_path)

    message = refusal("finetune_preference", [*base, "--max_length", str(shortest - 1)])
    assert f"--max_length must be >= {shortest}, got {shortest - 1}" in message
    assert "prompt" in message and "answer" in message
    # --max_length 1 used to end in "RuntimeError: cannot reshape tensor of 0 elements" after loading everything.
    assert "--max_length must be >=" in refusal("finetune_preference", [*base, "--max_length", "1"])
    parsed = load_recipe("finetune_preference").parse_args([*base, "--max_length", str(shortest)])
    assert parsed[-1].max_length == shortest
    # Above the model's context (64 tokens) is refused too, still at parse time.
    assert "--max_length 65 is above the model's context" in refusal(
        "finetune_preference", [*base, "--max_length", "65"]
    )


def test_dpo_max_length_unset_means_the_context_which_must_be_long_enough(tmp_path):
    short = make_checkpoint(tmp_path / "short", ascii_text(5_000), n_positions=16)
    message = refusal(
        "finetune_preference", ["--output_dir", str(tmp_path / "o"), "--model_name_or_path", str(short)]
    )
    assert "--max_length must be >=" in message and "the model's context (n_positions 16)" in message


def test_held_out_percentages_together_must_leave_training_rows(checkpoint, tmp_path):
    base = base_args("finetune_instruct", checkpoint, tmp_path)
    flags = ["--validation_split_percentage", "40", "--test_split_percentage", "60"]
    message = refusal("finetune_instruct", [*base, *flags])
    assert re.search(r"--validation_split_percentage 40(\.0)? \+ --test_split_percentage 60(\.0)?", message)


def test_a_config_file_value_is_checked_like_a_flag(checkpoint, tmp_path):
    config = tmp_path / "run.json"
    config.write_text('{"lora_dropout": 1.5, "learning_rate": 0.001}', encoding="utf-8")
    base = base_args("finetune_classifier", checkpoint, tmp_path)
    message = refusal("finetune_classifier", [*base, "--config", str(config)])
    assert "--lora_dropout must be >= 0 and < 1, got 1.5" in message
