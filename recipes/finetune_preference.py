"""Preference-tune an instruction-following GPT with DPO (TRL's DPOTrainer): the stage after instruction finetuning.

Reads preference records, each a prompt with a chosen and a rejected answer: the book's Alpaca-style records
(`instruction`, `input`, `chosen`, `rejected`; the prompt goes through the chat template as in
recipes/finetune_instruct.py) or TRL's conversational format (`prompt`, `chosen`, `rejected` message lists).
Direct Preference Optimization trains the policy so that its implicit reward
beta * (log pi(answer|prompt) - log ref(answer|prompt)) ranks the chosen answer above the rejected one, against a
frozen reference: a copy of the starting model, or with `--use_peft` the same model with its LoRA adapters
disabled.

Reports on the held-out test pairs, before and after training (hf_scratch_gpt.evaluation.preference):
- after: the share of pairs whose DPO reward ranks chosen above rejected (test_reward_accuracy) and the mean
  reward margin. Before training the policy equals the reference, so every reward is 0: "before" is instead the
  starting model's own likelihood ranking, the share of pairs with log p(chosen) > log p(rejected)
  (before_likelihood_accuracy), reported after training too (test_likelihood_accuracy);
- greedy responses to the test prompts, before and after, scored against the chosen answers
  (hf_scratch_gpt.evaluation.instruction: exact match, ROUGE-L, EOS rate, length, most common response share).
The model card shows both as a before / after table; the answers are in generated_responses.json.

The book's data and split (85% train / 10% test / 5% validation, in file order), from an instruction-finetuned
model:

    python recipes/finetune_preference.py --model_name_or_path outputs/instruct \\
        --train_file ../shared/data/instruction-data-with-preference.json --output_dir outputs/dpo

    python recipes/finetune_preference.py --model_name_or_path outputs/instruct \\
        --train_file ../shared/data/instruction-data-with-preference.json --use_peft --lora_r 16 \\
        --merge_adapter --output_dir outputs/dpo-lora

--beta, learning rate, epochs, warmup, schedule and batch size default to values chosen from the base (see
hf_scratch_gpt.training.defaults and the paragraph at the end of this help): a small project base gets beta 0.3,
learning rate 1e-4 (1e-3 with --use_peft) for 2 epochs in batches of 8, the values benchmarks/dpo_preference.py
chose (its figures: benchmarks/RESULTS.md); a GPT-2-sized base the
book's chapter 7 DPO, beta 0.1 and learning rate 5e-6 (5e-5 with LoRA) for 1 epoch. Any flag you give wins.

Flag names are those of TRL's trl/scripts/dpo.py (DPOConfig: --beta, --loss_type, --max_length,
--precompute_ref_log_probs, ...; ModelConfig: --model_name_or_path, --use_peft, --lora_r, --lora_alpha,
--lora_target_modules ...), plus the other recipes' data flags (--train_file, --dataset_name ...). Every
TrainingArguments flag passes through. --max_length defaults to the model's context; a prompt that leaves no
room for its answers is truncated from the left (with a warning). Needs TRL: pip install -e '.[trl]'.
"""

import copy
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig

try:
    from trl import DPOConfig
except ImportError as error:  # TRL is an optional extra of the package
    raise ImportError(
        "recipes/finetune_preference.py needs TRL: pip install -e '.[trl]' (or pip install 'hf_scratch_gpt[trl]')"
    ) from error

from hf_scratch_gpt.data.arguments import SPLIT_PERCENTAGE, DataArguments, check_range
from hf_scratch_gpt.data.loading import carve_splits, limit_samples, load_raw_datasets
from hf_scratch_gpt.data.preference import answer_text, drop_identical_pairs, to_preference_pairs
from hf_scratch_gpt.evaluation.instruction import generate_responses, response_metrics
from hf_scratch_gpt.evaluation.preference import likelihood_accuracy, pair_logps, preference_metrics
from hf_scratch_gpt.model.gpt2 import load_causal_lm
from hf_scratch_gpt.model.presets import parse_config_overrides
from hf_scratch_gpt.training.arguments import (
    LoraArguments,
    ModelArguments,
    ResponseArguments,
    RunArguments,
    length_within_context,
    parse_recipe_args,
)
from hf_scratch_gpt.training.defaults import defaults_help
from hf_scratch_gpt.training.lora import describe_lora, finish_lora, log_trainable_parameters, lora_config
from hf_scratch_gpt.training.preference_trainer import PreferenceTrainer, check_max_length
from hf_scratch_gpt.training.reporting import CardInfo
from hf_scratch_gpt.training.run import start_run
from scratch_tokenizer.hf_tokenizer import load_chat_tokenizer

logger = logging.getLogger("finetune_preference")

# --beta, learning rate, epochs, warmup, schedule and batch size are chosen from the base
# (hf_scratch_gpt.training.defaults).
DEFAULTS = {
    "output_dir": "outputs/dpo",
    "max_new_tokens": 128,
    "per_device_eval_batch_size": 8,
    "eval_strategy": "epoch",
    "save_strategy": "no",
    "logging_steps": 10,
    "report_to": "none",
    "max_length": None,  # None here means the model's context (n_positions)
    "activation_checkpointing": False,  # TRL turns it on by default; for small models on CPU it only costs time
    "validation_split_percentage": 5.0,
    "ddp_find_unused_parameters": False,
}

# DPOConfig has its own --trust_remote_code (TRL's flag, also used for the tokenizer and the reference model), so
# the model arguments are parsed without theirs and rebuilt with DPOConfig's value.
DPOModelArguments = dataclasses.make_dataclass(
    "DPOModelArguments",
    [(f.name, f.type, f) for f in dataclasses.fields(ModelArguments) if f.name != "trust_remote_code"],
)


@dataclass
class PreferenceArguments:
    """Flags of this recipe only."""

    test_split_percentage: float = field(
        default=10.0,
        metadata={"help": "Percentage of records held out as test pairs when no test split exists."},
    )

    def __post_init__(self):
        check_range("--test_split_percentage", self.test_split_percentage, **SPLIT_PERCENTAGE)


ARGUMENT_TYPES = (
    DPOModelArguments,
    DataArguments,
    PreferenceArguments,
    ResponseArguments,
    LoraArguments,
    RunArguments,
    DPOConfig,
)


def parse_args(args: list[str] | None = None) -> tuple:
    """The command line (or `--config FILE` plus flags) as this recipe's argument dataclasses, the model
    arguments as `ModelArguments` with DPOConfig's --trust_remote_code."""
    parsed_model_args, *others, training_args = parse_recipe_args(
        ARGUMENT_TYPES,
        DEFAULTS,
        args,
        description=f"{__doc__}\n{defaults_help('preference')}",
        defaults_from_base="preference",
        script="recipes/finetune_preference.py",
    )
    model_args = ModelArguments(
        **dataclasses.asdict(parsed_model_args), trust_remote_code=training_args.trust_remote_code
    )
    # --max_length against the base: room for the shortest pair in its chat template, within its context.
    base, trust = model_args.model_name_or_path, model_args.trust_remote_code
    tokenizer = load_chat_tokenizer(model_args.tokenizer_name or base, trust)
    config = AutoConfig.from_pretrained(
        base, trust_remote_code=trust, **parse_config_overrides(model_args.config_overrides)
    )
    check_max_length(training_args.max_length, tokenizer, config.n_positions)
    return (model_args, *others, training_args)


def main(model_args, data_args, pref_args, response_args, lora_args, run_args, training_args) -> dict:
    run = start_run(
        "finetune_preference",
        training_args,
        run_args,
        inputs=[model_args.model_name_or_path, model_args.tokenizer_name, data_args.train_file,
                data_args.validation_file, data_args.test_file],
    )  # fmt: skip

    # 1. Records -> prompt / chosen / rejected messages, split 85/10/5 (train/test/validation) in file order unless
    #    split files are given; pairs with identical answers are skipped.
    raw = load_raw_datasets(data_args)
    raw = carve_splits(raw, data_args.validation_split_percentage, pref_args.test_split_percentage, False)
    raw = limit_samples(raw, data_args)
    pairs = {
        split: drop_identical_pairs(to_preference_pairs(dataset, split, response_args.system_prompt), split)
        for split, dataset in raw.items()
    }

    # 2. Tokenizer (our chat template unless it has one; EOS as padding), policy model and frozen reference.
    tokenizer = load_chat_tokenizer(
        model_args.tokenizer_name or model_args.model_name_or_path, model_args.trust_remote_code
    )
    model = load_causal_lm(
        model_args.model_name_or_path, model_args.trust_remote_code, **model_args.config_kwargs()
    )
    start_warning = not_chat_finetuned_warning(model.config, model_args.model_name_or_path)
    if start_warning:
        logger.warning(start_warning)
    logger.info("DPO defaults chosen from the base: %s", run_args.defaults_reason)
    context = model.config.n_positions
    # The default, the model's context, is known only once the model is loaded.
    training_args.max_length = length_within_context("--max_length", training_args.max_length, context)
    # The reference: with LoRA the policy with its adapters disabled (TRL does that), else a frozen copy.
    ref_model = None if lora_args.use_peft else copy.deepcopy(model).eval().requires_grad_(False)

    # 3. The DPO trainer tokenizes the pairs with the chat template (prompts cut from the left to fit).
    trainer = PreferenceTrainer(
        model=model,
        ref_model=ref_model,
        args=training_args,
        train_dataset=pairs["train"],
        eval_dataset=pairs["validation"],
        processing_class=tokenizer,
        peft_config=lora_config(lora_args, task_type="CAUSAL_LM") if lora_args.use_peft else None,
        max_train_seconds=run_args.max_train_seconds,
        callbacks=[run.callback()],
    )
    parameters = log_trainable_parameters(trainer.model)
    test_pairs = trainer.tokenize_pairs(pairs["test"], "test")
    test_prompts = first_rows(pairs["test"], response_args.num_generate)

    # 4. Before training: the starting model (= the reference) on the test pairs and prompts.
    score = dict(pad_token_id=tokenizer.pad_token_id, batch_size=training_args.per_device_eval_batch_size)
    reference_logps = pair_logps(trainer.model, test_pairs, max_length=training_args.max_length, **score)
    metrics = {
        "before_likelihood_accuracy": likelihood_accuracy(reference_logps),
        "answer_precision": response_args.answer_setting(trainer.model.device).describe(),
    }
    if start_warning:
        metrics["start_model_warning"] = start_warning  # in all_results.json, beside the figures it qualifies
    before = (
        respond(trainer.model, tokenizer, test_prompts, response_args)
        if trainer.is_world_process_zero()
        else []
    )

    # 5. Train; the validation metrics are TRL's (eval_rewards/accuracies, eval_rewards/margins, eval_loss).
    train_result = trainer.train(resume_from_checkpoint=run.resume)
    metrics.update({**train_result.metrics, **trainer.evaluate()})

    # 6. After training: the policy against the reference on the same test pairs.
    policy_logps = pair_logps(trainer.model, test_pairs, max_length=training_args.max_length, **score)
    after_pairs = preference_metrics(policy_logps, reference_logps, training_args.beta)
    metrics.update({f"test_{name}": value for name, value in after_pairs.items()})
    metrics.update({**parameters, "test_pairs": len(test_pairs), "world_size": training_args.world_size})

    # 7. Save (merged model, adapter or full model) as a chat model that answers greedily and stops at EOS, then
    #    answer the test prompts again.
    model = finish_lora(trainer.model, lora_args.merge_adapter) if lora_args.use_peft else trainer.model
    model.generation_config = response_args.generation_config(tokenizer)
    run.save_model(model, tokenizer, trainer)
    evaluation = ""
    if trainer.is_world_process_zero():
        evaluation = compare_responses(
            model, tokenizer, test_prompts, before, response_args, run.output_dir, metrics
        )
    how = describe_lora(lora_args) if lora_args.use_peft else "full DPO against a frozen copy"
    card = CardInfo(
        model_name=run.output_dir.name,
        pipeline_tag="text-generation",
        summary=f"A GPT preference-tuned with DPO (TRL's DPOTrainer, beta {training_args.beta}) from "
        f"`{model_args.model_name_or_path}` with hf_scratch_gpt ({how}). Prompt it with the tokenizer's "
        "chat template." + (f"\n\n**Warning:** {start_warning}" if start_warning else ""),
        metrics={k: v for k, v in metrics.items() if k in HEADLINE_METRICS},
        data=data_args.dataset_name or f"local files: {data_args.train_file}",
        dataset=data_args.dataset_name,
        base_model=model_args.model_name_or_path,
        hyperparameters=hyperparameters(
            training_args, how, parameters, run_args.defaults_reason, metrics["answer_precision"]
        ),
        usage=USAGE.format(path=run.output_dir.as_posix()),
        evaluation=evaluation,
        command=run.command,
    )
    run.finish(trainer, metrics, card, plot_title=f"DPO {run.output_dir.name}")
    return metrics


def not_chat_finetuned_warning(config, name: str) -> str | None:
    """What to say when the start model is not one recipes/finetune_instruct.py made, or None when it is."""
    if getattr(config, "chat_finetuned", False) is True:
        return None
    return (
        f'the start model {name} is not chat-finetuned (its config.json lacks "chat_finetuned": true, which '
        "recipes/finetune_instruct.py records). DPO is the stage after instruction finetuning: it moves a model "
        "that already answers in the chat template towards the chosen answers, and a base model does not answer "
        f"in it yet. Finetune it first (python recipes/finetune_instruct.py --model_name_or_path {name}), then "
        "run DPO from that folder."
    )


def first_rows(dataset, count: int | None):
    """The first `count` rows of `dataset` (all of them when `count` is None)."""
    return dataset if count is None else dataset.select(range(min(count, len(dataset))))


def hyperparameters(
    training_args, how: str, parameters: dict, defaults_reason: str, answer_precision: str
) -> dict:
    """The model card's hyperparameter table."""
    return {
        "training": how,
        "beta": training_args.beta,
        "loss type": ", ".join(training_args.loss_type),
        "trainable parameters": f"{parameters['trainable_params']:,} of {parameters['total_params']:,}",
        "learning_rate": training_args.learning_rate,
        "epochs": training_args.num_train_epochs,
        "schedule": f"{training_args.lr_scheduler_type.value}, warmup {training_args.warmup_steps:g}",
        "defaults chosen from the base": defaults_reason,
        "batch size per device": training_args.per_device_train_batch_size,
        "max_length": training_args.max_length,
        "test answers generated in": answer_precision,
    }


def compare_responses(model, tokenizer, test_prompts, before, response_args, output_dir, metrics) -> str:
    """Answer the test prompts with the trained model, score both sets of answers (`before_*`, `test_*` in
    `metrics`), write them side by side to generated_responses.json, log the test figures; return the model card's
    before / after table."""
    after = respond(model, tokenizer, test_prompts, response_args)
    if test_prompts.num_rows:
        metrics.update({f"before_{name}": value for name, value in response_metrics(before).items()})
        metrics.update({f"test_{name}": value for name, value in response_metrics(after).items()})
        write_responses(output_dir / "generated_responses.json", test_prompts, before, after)
    logger.info(
        "test pairs: likelihood accuracy %.3f before; after DPO reward accuracy %.3f, mean margin %.4f",
        metrics["before_likelihood_accuracy"],
        metrics["test_reward_accuracy"],
        metrics["test_reward_margin"],
    )
    return before_after_table(metrics)


HEADLINE_METRICS = (
    "test_reward_accuracy",
    "test_reward_margin",
    "test_likelihood_accuracy",
    "eval_loss",
    "train_loss",
)
# Rows of the model card's before / after table: (label, metric without its before_ / test_ prefix).
TABLE_ROWS = (
    ("preference accuracy: log p(chosen) > log p(rejected)", "likelihood_accuracy"),
    ("preference accuracy: DPO reward ranks chosen first", "reward_accuracy"),
    ("mean DPO reward margin", "reward_margin"),
    ("responses: exact match with the chosen answer", "exact_match"),
    ("responses: ROUGE-L F1 against the chosen answer", "rouge_l"),
    ("responses ending with EOS", "eos_rate"),
    ("mean response length (tokens)", "mean_response_tokens"),
    ("share of the most common response", "most_common_response_share"),
)
USAGE = """from transformers import pipeline

chat = pipeline("text-generation", model="{path}", trust_remote_code=True)
answer = chat([{{"role": "user", "content": "Suggest a polite way to decline an invitation."}}], max_new_tokens=64)
print(answer[0]["generated_text"][-1]["content"])"""


def before_after_table(metrics: dict) -> str:
    """Markdown table of the test-set figures before and after DPO (the reward is 0 for every pair before)."""
    lines = ["## Before and after DPO (held-out test pairs)", "", "| | before | after |", "|---|---|---|"]
    for label, name in TABLE_ROWS:
        after = metrics.get(f"test_{name}")
        before = 0.0 if name in ("reward_accuracy", "reward_margin") else metrics.get(f"before_{name}")
        if after is not None:
            lines.append(f"| {label} | {before:.4g} | {after:.4g} |")
    lines.append(
        "\nBefore training the policy is the reference model, so every DPO reward is 0 (accuracy 0, margin 0); "
        "the first row is the starting model's own ranking of the two answers."
    )
    return "\n".join(lines)


def respond(model, tokenizer, test_prompts, response_args: ResponseArguments) -> list:
    """Greedy responses to the test pairs' prompts, the chosen answers as references. The decoding settings are
    given explicitly, so the model before training (whose saved generation config may differ) and after answer
    alike."""
    if test_prompts.num_rows == 0:
        return []
    answering, _ = response_args.answer_model(model)  # a cast or quantized copy: `model` stays as it is
    return generate_responses(
        answering,
        tokenizer,
        list(test_prompts["prompt"]),
        [answer_text(chosen) for chosen in test_prompts["chosen"]],
        max_new_tokens=response_args.max_new_tokens,
        batch_size=response_args.generation_batch_size,
        **response_args.generation_settings(),
    )


def write_responses(path: Path, test_prompts, before: list, after: list) -> None:
    rows = [
        {
            "prompt": first.prompt,
            "chosen": first.reference,
            "rejected": answer_text(rejected),
            "before": first.text,
            "after": second.text,
            "before_ended_with_eos": first.ended_with_eos,
            "after_ended_with_eos": second.ended_with_eos,
        }
        for first, second, rejected in zip(before, after, test_prompts["rejected"], strict=True)
    ]
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main(*parse_args())
