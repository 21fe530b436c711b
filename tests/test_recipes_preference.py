"""Preference tuning (DPO through TRL): pair formatting, metrics against hand-computed values, the recipe end to end."""

import json
import logging
import math
import sys

import pytest
import torch
from datasets import Dataset
from huggingface_hub import ModelCard
from recipe_helpers import (
    FAST_ARGS,
    ascii_text,
    load_recipe,
    make_checkpoint,
    preference_records,
    run_recipe,
    write_jsonl,
)
from transformers import AutoModelForCausalLM, AutoTokenizer

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)
from hf_scratch_gpt.data.preference import (
    drop_identical_pairs,
    prompt_budget,
    to_preference_pairs,
    truncate_prompts_left,
)
from hf_scratch_gpt.evaluation.preference import PairLogps, answer_logps, pair_logps, preference_metrics

pytest.importorskip("trl", reason="preference tuning needs the trl extra: pip install -e '.[trl]'")
preference = load_recipe("finetune_preference")


def test_preference_metrics_against_a_hand_computed_case():
    # Pair 1: policy raises chosen by 2 nats and lowers rejected by 1 -> reward margin beta * 3 = 0.3.
    # Pair 2: policy lowers chosen by 1, leaves rejected -> margin -0.1 (rejected ranked first).
    # Pair 3: policy equals the reference -> both rewards 0, a tie, which does not count as ranked first.
    policy = PairLogps(torch.tensor([-3.0, -6.0, -2.0]), torch.tensor([-9.0, -4.0, -2.5]))
    reference = PairLogps(torch.tensor([-5.0, -5.0, -2.0]), torch.tensor([-8.0, -4.0, -2.5]))
    metrics = preference_metrics(policy, reference, beta=0.1)
    assert metrics["reward_accuracy"] == pytest.approx(1 / 3)
    assert metrics["reward_margin"] == pytest.approx((0.3 - 0.1 + 0.0) / 3)
    assert metrics["chosen_reward"] == pytest.approx((0.2 - 0.1 + 0.0) / 3)
    assert metrics["rejected_reward"] == pytest.approx((-0.1 + 0.0 + 0.0) / 3)
    # the policy's own ranking: -3 > -9 yes, -6 > -4 no, -2 > -2.5 yes
    assert metrics["likelihood_accuracy"] == pytest.approx(2 / 3)
    # before training (policy = reference) every reward is 0: accuracy 0, margin 0
    assert preference_metrics(reference, reference, beta=0.1)["reward_accuracy"] == 0.0


class UniformThenSure(torch.nn.Module):
    """A fake LM over 4 tokens: uniform after token 0, certain of the next token (token + 1) otherwise."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # says which device the model is on

    def forward(self, input_ids, attention_mask=None):
        batch, length = input_ids.shape
        logits = torch.zeros(batch, length, 4)
        sure = input_ids != 0
        logits[sure] = -1e4
        rows, cols = sure.nonzero(as_tuple=True)
        logits[rows, cols, (input_ids[rows, cols] + 1) % 4] = 0.0
        return type("Output", (), {"logits": logits})()


def test_answer_logps_sum_only_the_answer_tokens():
    model = UniformThenSure()
    # prompt [0], answer [1, 2]: log p(1 | 0) = log 1/4 (uniform), log p(2 | 0 1) = log 1 = 0
    input_ids = torch.tensor([[0, 1, 2, 3], [0, 2, 0, 0]])
    attention_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    answer_mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 0]])
    logps = answer_logps(model, input_ids, attention_mask, answer_mask)
    assert logps.tolist() == pytest.approx([math.log(0.25), math.log(0.25)])
    # the same through the batching of tokenized pairs (right padding, -1e4 logits are ~ -inf log-probs)
    pairs = Dataset.from_list([{"prompt_ids": [0], "chosen_ids": [1, 2], "rejected_ids": [3]}])
    scored = pair_logps(model, pairs, pad_token_id=0)
    assert scored.chosen.tolist() == pytest.approx([math.log(0.25)])
    assert scored.rejected.tolist() == pytest.approx([math.log(0.25)])


def test_alpaca_and_conversational_records_become_the_same_pairs():
    alpaca = to_preference_pairs(Dataset.from_list(preference_records(3)))
    first = alpaca[0]
    assert first["prompt"] == [{"role": "user", "content": "Add the two numbers.\n\n0 and 1"}]
    assert first["chosen"] == [{"role": "assistant", "content": "The sum is 1."}]
    assert first["rejected"] == [{"role": "assistant", "content": "Do it yourself."}]
    conversational = to_preference_pairs(Dataset.from_list([first]))
    assert conversational[0] == first
    with_system = to_preference_pairs(Dataset.from_list(preference_records(1)), system_prompt="Be kind.")
    assert with_system[0]["prompt"][0] == {"role": "system", "content": "Be kind."}


def test_records_without_chosen_or_rejected_list_the_columns_found():
    with pytest.raises(
        ValueError, match=r"no 'rejected' column.*columns found are \['instruction', 'chosen'\]"
    ):
        to_preference_pairs(Dataset.from_list([{"instruction": "q", "chosen": "a"}]))
    with pytest.raises(ValueError, match=r"no 'chosen' / 'rejected'.*\['instruction', 'output'\]"):
        to_preference_pairs(Dataset.from_list([{"instruction": "q", "output": "a"}]))
    with pytest.raises(ValueError, match="no prompt"):
        to_preference_pairs(Dataset.from_list([{"chosen": "a", "rejected": "b"}]))
    bad = {"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"}
    with pytest.raises(ValueError, match="'chosen' must be a list with one assistant message"):
        to_preference_pairs(Dataset.from_list([bad]))


def test_identical_pairs_are_skipped_with_a_count(caplog):
    records = preference_records(4)
    records[2]["rejected"] = records[2]["chosen"] + " "  # the same answer, up to a trailing space
    with caplog.at_level(logging.WARNING):
        kept = drop_identical_pairs(to_preference_pairs(Dataset.from_list(records)), "train")
    assert len(kept) == 3
    assert "skipped 1 of 4 train pairs whose chosen and rejected answers are identical" in caplog.text
    same = [dict(r, rejected=r["chosen"]) for r in records]
    with pytest.raises(ValueError, match="every train pair has identical"):
        drop_identical_pairs(to_preference_pairs(Dataset.from_list(same)), "train")


def test_long_prompts_lose_their_start(caplog):
    tokenized = Dataset.from_list(
        [
            {"prompt_ids": list(range(10)), "chosen_ids": [50, 51], "rejected_ids": [60, 61, 62]},
            {"prompt_ids": list(range(30)), "chosen_ids": [50], "rejected_ids": [60, 61, 62, 63]},
        ]
    )
    with caplog.at_level(logging.WARNING):
        truncated = truncate_prompts_left(tokenized, max_length=16, split="train")
    assert truncated[0]["prompt_ids"] == list(range(10))  # fits: 10 + 3 <= 16
    assert truncated[1]["prompt_ids"] == list(range(18, 30))  # the last 16 - 4 = 12 prompt tokens
    assert "1 of 2 train pairs do not fit in max_length=16" in caplog.text
    # an answer longer than half the context leaves the prompt half the context (TRL then cuts the answer)
    assert prompt_budget(prompt_length=40, completion_length=30, max_length=32) == 16


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("base") / "ckpt", ascii_text(20_000))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("data") / "pairs.jsonl", preference_records(40))


def run(checkpoint, data_file, output_dir, *extra):
    args = [
        "--model_name_or_path",
        str(checkpoint),
        "--train_file",
        str(data_file),
        "--output_dir",
        str(output_dir),
    ]
    return run_recipe(preference,
        [*args, "--max_steps", "4", "--learning_rate", "5e-3", "--max_new_tokens", "6", "--bf16", "false",
         *FAST_ARGS, *extra]
    )  # fmt: skip


def test_full_dpo_end_to_end(checkpoint, data_file, tmp_path):
    output_dir = tmp_path / "dpo"
    metrics = run(checkpoint, data_file, output_dir, "--beta", "0.5")
    for name in ("model.safetensors", "config.json", "modeling_scratch_gpt.py", "tokenizer.json",
                 "generation_config.json", "README.md", "loss.png", "all_results.json",
                 "generated_responses.json"):  # fmt: skip
        assert (output_dir / name).is_file(), name
    assert metrics["test_pairs"] == 4  # 10% of 40, records 34..37 (85% train, then test, then validation)
    assert metrics["trainable_params"] == metrics["total_params"]
    for name in ("before_likelihood_accuracy", "test_likelihood_accuracy", "test_reward_accuracy",
                 "test_reward_margin", "before_rouge_l", "test_rouge_l", "test_eos_rate",
                 "eval_rewards/accuracies", "eval_loss", "train_loss"):  # fmt: skip
        assert name in metrics and math.isfinite(metrics[name]), name
    assert json.loads((output_dir / "all_results.json").read_text())["test_reward_accuracy"] == pytest.approx(
        metrics["test_reward_accuracy"]
    )
    responses = json.loads((output_dir / "generated_responses.json").read_text())
    assert [r["chosen"] for r in responses] == [r["chosen"] for r in preference_records(40)[34:38]]
    card = (output_dir / "README.md").read_text()
    assert "| preference accuracy: DPO reward ranks chosen first | 0 |" in card
    # Flags given win over the base's defaults; the others come from the small-base DPO table.
    assert "- beta: 0.5\n" in card and "- learning_rate: 0.005\n" in card
    assert "- defaults chosen from the base: " in card and "a small base" in card
    assert json.loads((output_dir / "trainer_state.json").read_text())["train_batch_size"] == 8
    assert ModelCard.load(output_dir / "README.md").data.pipeline_tag == "text-generation"

    # Reloads with the Auto classes, and the policy moved away from the starting model.
    model = AutoModelForCausalLM.from_pretrained(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert model.config.use_cache and not model.generation_config.do_sample
    assert not torch.equal(
        model.transformer.h[0].attn.c_attn.weight, base.transformer.h[0].attn.c_attn.weight
    )

    # Cross-check with TRL: its eval reward accuracy and margin on the test pairs, from its own log-probs, equal
    # ours (saved policy vs the untouched checkpoint as reference). One batch, so TRL's batch mean is the mean.
    from trl import DPOConfig

    from hf_scratch_gpt.data.preference import drop_identical_pairs
    from hf_scratch_gpt.training.preference_trainer import PreferenceTrainer

    pairs = to_preference_pairs(Dataset.from_list(preference_records(40)[34:38]))
    args = DPOConfig(output_dir=str(tmp_path / "check"), beta=0.5, max_length=64, per_device_eval_batch_size=8,
                     use_cpu=True, report_to="none", disable_tqdm=True, bf16=False, activation_checkpointing=False)  # fmt: skip
    trainer = PreferenceTrainer(
        model=model, ref_model=base, args=args, train_dataset=pairs, processing_class=tokenizer
    )
    trl_metrics = trainer.evaluate(drop_identical_pairs(pairs, "test"))
    assert trl_metrics["eval_rewards/accuracies"] == pytest.approx(metrics["test_reward_accuracy"])
    assert trl_metrics["eval_rewards/margins"] == pytest.approx(
        metrics["test_reward_margin"], rel=1e-3, abs=1e-4
    )


def test_lora_dpo_end_to_end_merged(checkpoint, data_file, tmp_path):
    metrics = run(
        checkpoint, data_file, tmp_path / "lora", "--use_peft", "--lora_r", "4", "--merge_adapter",
        "--num_generate", "1",
    )  # fmt: skip
    assert metrics["trainable_params"] < metrics["total_params"] / 2
    assert math.isfinite(metrics["test_reward_margin"]) and metrics["test_num_responses"] == 1
    card = (tmp_path / "lora" / "README.md").read_text()
    assert "- beta: 0.3\n" in card  # not given: the small-base DPO default (TRL's own is 0.1)
    assert "LoRA: 10 x the learning rate" in card and "- learning_rate: 0.005\n" in card  # given wins
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "lora")
    assert model.config.model_type == "scratch_gpt"  # a plain merged model


def test_decoding_flags_are_saved_and_used_before_and_after(checkpoint, data_file, tmp_path):
    """The shared decoding flags (ResponseArguments): saved in generation_config.json, and the "before" answers
    come from the starting model with those same settings, not with whatever its own generation_config says."""
    from hf_scratch_gpt.evaluation.instruction import generate_responses

    output_dir = tmp_path / "dpo"
    settings = {"no_repeat_ngram_size": 2, "repetition_penalty": 1.3}
    run(checkpoint, data_file, output_dir, "--num_generate", "2",
        *(f"--{name}={value}" for name, value in settings.items()))  # fmt: skip
    saved = AutoModelForCausalLM.from_pretrained(output_dir).generation_config
    assert (saved.no_repeat_ngram_size, saved.repetition_penalty, saved.do_sample) == (2, 1.3, False)
    responses = json.loads((output_dir / "generated_responses.json").read_text())
    # The first 2 test pairs (records 34 and 35, as above).
    test_pairs = to_preference_pairs(Dataset.from_list(preference_records(40)[34:36]))
    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    expected = generate_responses(
        base, AutoTokenizer.from_pretrained(checkpoint), list(test_pairs["prompt"]),
        [r["chosen"] for r in responses], max_new_tokens=6, **settings,
    )  # fmt: skip
    assert [r["before"] for r in responses] == [e.text for e in expected]


def test_invalid_decoding_flags_fail_before_training(checkpoint, data_file, tmp_path):
    with pytest.raises(ValueError, match="--repetition_penalty must be > 0"):
        run(checkpoint, data_file, tmp_path / "o", "--repetition_penalty", "-1")
    assert not (tmp_path / "o").exists()


def test_prompts_longer_than_the_context_are_cut_from_the_left(checkpoint, tmp_path, caplog):
    records = preference_records(20)
    records[1]["input"] = "word " * 100  # the checkpoint's context is 64 tokens
    path = write_jsonl(tmp_path / "long.jsonl", records)
    with caplog.at_level(logging.WARNING):
        metrics = run(checkpoint, path, tmp_path / "o", "--num_generate", "0")
    assert "1 of 17 train pairs do not fit in max_length=64" in caplog.text
    assert math.isfinite(metrics["test_reward_accuracy"])
    with pytest.raises(ValueError, match="--max_length 100 is above the model's context"):
        run(checkpoint, path, tmp_path / "o2", "--max_length", "100")


def test_missing_trl_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # `import trl` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "recipes.finetune_preference", raising=False)  # import it afresh
    with pytest.raises(ImportError, match=r"needs TRL: pip install -e '\.\[trl\]'"):
        load_recipe("finetune_preference")


def test_time_budget_stops_dpo(checkpoint, data_file, tmp_path):
    """--max_train_seconds (the recipes' wall-clock budget) works with TRL's trainer: a tiny budget stops at step 1."""
    output_dir = tmp_path / "budget"
    run(
        checkpoint,
        data_file,
        output_dir,
        "--max_train_seconds",
        "0.001",
        "--max_steps",
        "100",
        "--num_generate",
        "0",
    )
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 1


# ---------------------------------------------------------------- PreferenceTrainer: RecipeTrainer first, public TRL


def preference_trainer(checkpoint, output_dir, pairs, **config):
    """A PreferenceTrainer on the tiny checkpoint (context 64) with a 100 s budget, cosine schedule, no warmup."""
    from trl import DPOConfig

    from hf_scratch_gpt.training.preference_trainer import PreferenceTrainer
    from scratch_tokenizer.hf_tokenizer import load_chat_tokenizer

    settings = dict(max_length=64, lr_scheduler_type="cosine", warmup_steps=0, learning_rate=1e-3)
    settings.update(config)
    args = DPOConfig(output_dir=str(output_dir), use_cpu=True, report_to="none", disable_tqdm=True, bf16=False,
                     activation_checkpointing=False, **settings)  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    ref_model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = load_chat_tokenizer(str(checkpoint))
    return PreferenceTrainer(model=model, ref_model=ref_model, args=args, train_dataset=pairs,
                             processing_class=tokenizer, max_train_seconds=100)  # fmt: skip


def test_recipe_trainer_wins_even_where_trl_overrides_without_super(checkpoint, tmp_path, monkeypatch):
    """RecipeTrainer's time-based schedule and cache-on saves come from the method order, not from TRL's goodwill: a
    TRL release whose DPOTrainer overrides create_scheduler / save_model without calling super() keeps them."""
    from torch.optim.lr_scheduler import LambdaLR
    from trl import DPOTrainer

    def trl_create_scheduler(self, num_training_steps, optimizer=None):  # a constant LR, never calls super()
        self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lambda step: 1.0)
        return self.lr_scheduler

    def trl_save_model(self, output_dir=None, _internal_call=False):  # saves the model as it is, no super()
        self.model.save_pretrained(output_dir)

    monkeypatch.setattr(DPOTrainer, "create_scheduler", trl_create_scheduler, raising=False)
    monkeypatch.setattr(DPOTrainer, "save_model", trl_save_model, raising=False)
    pairs = to_preference_pairs(Dataset.from_list(preference_records(4)))
    trainer = preference_trainer(checkpoint, tmp_path / "o", pairs)

    # Half of the 100 s budget spent: a cosine schedule on time is at (1 + cos(pi / 2)) / 2 = 0.5 of the peak LR.
    trainer.create_optimizer()
    scheduler = trainer.create_scheduler(num_training_steps=1000, optimizer=trainer.optimizer)
    trainer.time_budget.elapsed = 50.0
    scheduler.step()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3)

    # Saved with the KV cache on, though training runs with it off; the training value is restored.
    trainer.model.config.use_cache = False
    trainer.save_model(str(tmp_path / "saved"))
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["use_cache"] is True
    assert trainer.model.config.use_cache is False


def test_preference_trainer_overrides_no_private_trl_attribute():
    """TRL's private methods (`_prepare_dataset`, ...) change between releases without notice; an override of one
    would silently stop being called, or be called with other arguments."""
    from trl import DPOTrainer

    from hf_scratch_gpt.training.preference_trainer import PreferenceTrainer

    ours = [cls for cls in PreferenceTrainer.__mro__ if cls.__module__.startswith("hf_scratch_gpt.")]
    private = {
        name
        for cls in ours
        for name in vars(cls)
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
    }
    assert {name for name in private if hasattr(DPOTrainer, name)} == set()
    assert ours == list(PreferenceTrainer.__mro__[:2])  # PreferenceTrainer, RecipeTrainer, then TRL's classes


def test_long_prompt_keeps_its_end_and_whole_answers_through_the_trainer(checkpoint, tmp_path, caplog):
    """A pair longer than max_length: TRL trains on it (nothing dropped), with the end of its prompt in a well-formed
    user turn and both answers whole; the recipe's test pairs are tokenized the same way."""
    from scratch_tokenizer.hf_tokenizer import load_chat_tokenizer

    records = preference_records(7)[::3]  # three "Add the two numbers." pairs, about 61 tokens each
    records[1]["input"] = " ".join(f"word{i}" for i in range(60))  # ~200 tokens, far over the context of 64
    pairs = to_preference_pairs(Dataset.from_list(records))
    with caplog.at_level(logging.WARNING):
        trainer = preference_trainer(checkpoint, tmp_path / "o", pairs)
    assert "1 of 3 train pairs do not fit in max_length=64" in caplog.text
    trained = trainer.train_dataset
    assert len(trained) == 3

    # Recomputed from the tokenizer alone: the untruncated pair's prompt and answer tokens.
    tokenizer = load_chat_tokenizer(str(checkpoint))
    prompt, content = pairs[1]["prompt"], pairs[1]["prompt"][-1]["content"]
    full_prompt = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True).input_ids
    assert len(full_prompt) > 64
    long = trained[1]
    for column in ("chosen", "rejected"):
        full = tokenizer.apply_chat_template(prompt + pairs[1][column], tokenize=True)["input_ids"]
        assert full[: len(full_prompt)] == full_prompt
        assert long[f"{column}_ids"] == full[len(full_prompt) :]  # the whole answer
    assert len(long["prompt_ids"]) + max(len(long["chosen_ids"]), len(long["rejected_ids"])) <= 64
    text = tokenizer.decode(long["prompt_ids"])
    header, footer = "### User:\n", "\n\n### Assistant:\n"
    assert text.startswith(header) and text.endswith(footer)  # still a user turn the model can read
    kept = text[len(header) : -len(footer)]
    assert content.endswith(kept) and content.endswith("word58 word59") and len(kept) < len(content) / 2
    # The pairs that fit are TRL's own tokenization, untouched.
    short = tokenizer.apply_chat_template(pairs[0]["prompt"], add_generation_prompt=True, tokenize=True)
    assert trained[0]["prompt_ids"] == short["input_ids"]

    tokenized = trainer.tokenize_pairs(pairs, "test")
    for column in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert list(tokenized[column]) == list(trained[column]), column
