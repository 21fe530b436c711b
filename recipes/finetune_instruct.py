"""Instruction-finetune a pretrained GPT (the book's chapter 7): chat template, loss on the responses only.

Reads Alpaca records (`instruction`, `input`, `output`) or chat records (`messages`), renders them with the
tokenizer's chat template, and trains with the prompt tokens labelled -100, so only the responses (each ending
with the EOS token, so generation stops) are learned. Full finetuning, or LoRA with `--use_peft`
(`--merge_adapter` saves a plain merged model). Reports the validation loss on response tokens, writes greedy
responses to the held-out test instructions to generated_responses.json and scores them
(hf_scratch_gpt.evaluation.instruction): exact match, ROUGE-L, EOS rate, response length and the share of the most common
response, in all_results.json (`test_*`) and the model card; `--judge_model NAME_OR_PATH` adds the book's
LLM-as-judge score (0-100).

With no data flags it trains on the built-in instruction task set (hf_scratch_gpt.data.instruct_tasks: computable
answers, 12,000 train / 200 validation / 200 test records, half of them conversations of 2-4 questions whose
last answer is scored apart: test_exact_match_multiturn), the second command of the README's flow:

    python recipes/finetune_instruct.py --model_name_or_path outputs/pretrain

Learning rate, epochs, warmup, schedule and batch size default to values chosen from the base (its size and what
its pretraining recorded; see hf_scratch_gpt.training.defaults and the paragraph at the end of this help): a small
project base gets its own pretraining learning rate (2e-3 for recipes/pretrain.py's) for 10 epochs in batches of
32, a GPT-2-sized one the book's 5e-5 for 2 epochs in batches of 8. Any flag you give wins.

The book's data and split (85% train / 10% test / 5% validation, in file order):

    python recipes/finetune_instruct.py --model_name_or_path outputs/pretrain \\
        --train_file ../shared/data/instruction-data.json --output_dir outputs/instruct-book

    python recipes/finetune_instruct.py --model_name_or_path outputs/pretrain \\
        --train_file ../shared/data/instruction-data.json --use_peft --lora_r 16 --merge_adapter \\
        --output_dir outputs/instruct-lora

Chat data: `--train_file chats.jsonl` where each line is `{"messages": [{"role": "user", ...}, ...]}`.
Every TrainingArguments flag passes through; `accelerate launch` works as for recipes/pretrain.py.
"""

import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from transformers import TrainingArguments

from hf_scratch_gpt.data.arguments import SPLIT_PERCENTAGE, DataArguments, check_range
from hf_scratch_gpt.data.instruct import (
    drop_too_long,
    instruct_collator,
    prompt_and_reference,
    to_messages,
    tokenize_function,
)
from hf_scratch_gpt.data.instruct_tasks import (
    DEFAULT_FAMILIES,
    DEFAULT_MULTITURN_SHARE,
    DEFAULT_TRAIN_EXAMPLES,
    TASK_FAMILIES,
    check_families,
    instruct_task_splits,
)
from hf_scratch_gpt.data.loading import carve_splits, limit_samples, load_raw_datasets
from hf_scratch_gpt.evaluation.instruction import (
    JudgeLoadError,
    generate_responses,
    judge_metrics,
    judge_responses,
    response_metrics,
)
from hf_scratch_gpt.model.gpt2 import load_causal_lm
from hf_scratch_gpt.training.arguments import (
    LoraArguments,
    ModelArguments,
    ResponseArguments,
    RunArguments,
    length_within_context,
    parse_recipe_args,
)
from hf_scratch_gpt.training.defaults import defaults_help
from hf_scratch_gpt.training.lora import apply_lora, describe_lora, finish_lora, log_trainable_parameters
from hf_scratch_gpt.training.reporting import CardInfo
from hf_scratch_gpt.training.run import start_run
from hf_scratch_gpt.training.trainer import RecipeTrainer
from scratch_tokenizer.hf_tokenizer import load_chat_tokenizer

logger = logging.getLogger("finetune_instruct")

# Learning rate, epochs, warmup and schedule are chosen from the base (hf_scratch_gpt.training.defaults).
DEFAULTS = {
    "output_dir": "outputs/instruct",
    "per_device_eval_batch_size": 8,
    "weight_decay": 0.1,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "logging_steps": 10,
    "report_to": "none",
    "validation_split_percentage": 5.0,
    "ddp_find_unused_parameters": False,
    # Batches of records of about the same length: a conversation no longer pads a batch of short single-turn
    # records to its length, so a step costs what its tokens cost.
    "train_sampling_strategy": "group_by_length",
}


@dataclass
class InstructArguments:
    """Flags of this recipe only."""

    task_families: list[str] | None = field(
        default=None,
        metadata={
            "help": "Built-in task set (used when no --train_file / --dataset_name is given): the families to "
            f"draw from: {' '.join(TASK_FAMILIES)}. Default: all but uppercase and subtract "
            f"({' '.join(DEFAULT_FAMILIES)})."
        },
    )
    task_train_examples: int = field(
        default=DEFAULT_TRAIN_EXAMPLES,
        metadata={
            "help": "Built-in task set: training records (never one of the validation or test records)."
        },
    )
    task_eval_examples: int = field(
        default=200, metadata={"help": "Built-in task set: validation records, and as many test records."}
    )
    task_multiturn_share: float = field(
        default=DEFAULT_MULTITURN_SHARE,
        metadata={
            "help": "Built-in task set: the share of each split's records that are conversations of 2-4 user "
            "turns (every answer learned; the test scores the last, as test_exact_match_multiturn). 0: "
            "single-turn records only."
        },
    )
    judge_model: str | None = field(
        default=None,
        metadata={
            "help": "A causal LM (folder or Hub id) that rates each test response 0-100 against the reference "
            "(the book's LLM-as-judge); its mean is test_judge_score. Bigger is better: e.g. an instruct model."
        },
    )
    judge_max_new_tokens: int = field(default=8, metadata={"help": "Tokens the judge may write per rating."})

    test_split_percentage: float = field(
        default=10.0,
        metadata={"help": "Percentage of records held out for generation when no test split exists."},
    )
    max_seq_length: int | None = field(
        default=None,
        metadata={"help": "Longer examples are dropped with a warning. Default: the model's context."},
    )

    def __post_init__(self):
        check_range("--task_train_examples", self.task_train_examples, at_least=1)
        check_range("--task_eval_examples", self.task_eval_examples, at_least=1)
        check_range(
            "--task_multiturn_share", self.task_multiturn_share, at_least=0, at_most=1,
            why="a share of the records; 0: single-turn records only",
        )  # fmt: skip
        check_range("--judge_max_new_tokens", self.judge_max_new_tokens, at_least=1)
        check_range("--test_split_percentage", self.test_split_percentage, **SPLIT_PERCENTAGE)
        check_range(
            "--max_seq_length", self.max_seq_length, at_least=2, optional=True,
            why="room for a prompt token and a response token; unset: the model's context",
        )  # fmt: skip


ARGUMENT_TYPES = (
    ModelArguments,
    DataArguments,
    InstructArguments,
    ResponseArguments,
    LoraArguments,
    RunArguments,
    TrainingArguments,
)
BUILTIN_DATA = "the built-in instruction task set (hf_scratch_gpt.data.instruct_tasks)"


def parse_args(args: list[str] | None = None) -> tuple:
    """The command line (or `--config FILE` plus flags) as this recipe's argument dataclasses."""
    return parse_recipe_args(
        ARGUMENT_TYPES,
        DEFAULTS,
        args,
        description=f"{__doc__}\n{defaults_help('instruct')}",
        defaults_from_base="instruct",
        script="recipes/finetune_instruct.py",
    )


def main(model_args, data_args, instruct_args, response_args, lora_args, run_args, training_args) -> dict:
    run = start_run(
        "finetune_instruct",
        training_args,
        run_args,
        inputs=[model_args.model_name_or_path, model_args.tokenizer_name, data_args.train_file,
                data_args.validation_file, data_args.test_file, instruct_args.judge_model],
    )  # fmt: skip

    # 1. Records -> chat messages, split 85/10/5 (train/test/validation) in file order unless files are given;
    #    with no data, the built-in task set (its own disjoint splits, drawn under --seed).
    builtin = not (data_args.dataset_name or data_args.train_file)
    if builtin:
        raw = instruct_task_splits(
            instruct_args.task_families,
            instruct_args.task_train_examples,
            instruct_args.task_eval_examples,
            instruct_args.task_eval_examples,
            seed=training_args.seed,
            multiturn_share=instruct_args.task_multiturn_share,
        )
    else:
        raw = load_raw_datasets(data_args)
        raw = carve_splits(
            raw, data_args.validation_split_percentage, instruct_args.test_split_percentage, False
        )
    raw = limit_samples(raw, data_args)
    chats = {
        split: to_messages(dataset, split, response_args.system_prompt) for split, dataset in raw.items()
    }

    # 2. Tokenizer (our chat template unless it has one; EOS as padding) and model.
    tokenizer = load_chat_tokenizer(
        model_args.tokenizer_name or model_args.model_name_or_path, model_args.trust_remote_code
    )
    model = load_causal_lm(
        model_args.model_name_or_path, model_args.trust_remote_code, **model_args.config_kwargs()
    )
    logger.info("finetuning defaults chosen from the base: %s", run_args.defaults_reason)
    max_length = length_within_context(
        "--max_seq_length", instruct_args.max_seq_length, model.config.n_positions
    )
    collator = instruct_collator(model, tokenizer.pad_token_id)  # logits only where labelled, if it can
    if lora_args.use_peft:
        model = apply_lora(model, lora_args, task_type="CAUSAL_LM")
    parameters = log_trainable_parameters(model)

    # 3. Tokenize with the chat template: labels -100 except on the responses and their EOS.
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = {
            split: drop_too_long(
                chats[split].map(
                    tokenize_function(tokenizer),
                    remove_columns=["messages"],
                    num_proc=data_args.preprocessing_num_workers,
                    desc=f"tokenizing {split}",
                ),
                max_length,
                split,
            )
            for split in ("train", "validation")
        }

    # 4. Train; the validation loss is on response tokens only.
    trainer = RecipeTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=collator,
        max_train_seconds=run_args.max_train_seconds,
        callbacks=[run.callback()],
    )
    train_result = trainer.train(resume_from_checkpoint=run.resume)
    metrics = {
        **train_result.metrics,
        **trainer.evaluate(),
        **parameters,
        "world_size": training_args.world_size,
        "learning_rate": training_args.learning_rate,
        "num_train_epochs": training_args.num_train_epochs,
    }

    # 5. Save (merged model, adapter or full model) as a chat model that answers greedily and stops at EOS.
    model = finish_lora(trainer.model, lora_args.merge_adapter) if lora_args.use_peft else trainer.model
    model.generation_config = response_args.generation_config(tokenizer)
    # In config.json: the Space (and anyone) can tell a chat model from a base model.
    model.config.chat_finetuned = True
    task_families = check_families(instruct_args.task_families) if builtin else None
    record_chat_training(model.config, chats, raw["test"], task_families)
    run.save_model(model, tokenizer, trainer)

    # 6. Greedy answers to the held-out test instructions, scored against their references.
    judge_error = None
    if trainer.is_world_process_zero():
        judge_error = answer_test_records(
            model, tokenizer, chats["test"], raw["test"], builtin, instruct_args, response_args,
            model_args.trust_remote_code, run.output_dir, metrics,
        )  # fmt: skip
    card = model_card(
        run,
        model_args,
        data_args,
        lora_args,
        training_args,
        metrics,
        parameters,
        run_args.defaults_reason,
        builtin,
    )
    run.finish(trainer, metrics, card, plot_title=f"instruction finetuning {run.output_dir.name}")
    if judge_error is not None:
        raise SystemExit(f"error: {judge_error}. The other results are saved in {run.output_dir}")
    return metrics


def model_card(
    run, model_args, data_args, lora_args, training_args, metrics, parameters, defaults_reason, builtin
):
    """What the model card says about this instruction finetune."""
    how = describe_lora(lora_args) if lora_args.use_peft else "full finetuning"
    return CardInfo(
        model_name=run.output_dir.name,
        pipeline_tag="text-generation",
        summary=f"An instruction-following GPT finetuned from `{model_args.model_name_or_path}` with "
        f"hf_scratch_gpt ({how}; loss on the responses only). Prompt it with the tokenizer's chat template.",
        metrics={k: v for k, v in metrics.items() if k in CARD_METRICS or is_test_figure(k)},
        evaluation=per_family_table(metrics),
        data=BUILTIN_DATA if builtin else data_args.dataset_name or f"local files: {data_args.train_file}",
        dataset=data_args.dataset_name,
        base_model=model_args.model_name_or_path,
        hyperparameters={
            "training": how,
            "trainable parameters": f"{parameters['trainable_params']:,} of {parameters['total_params']:,}",
            "learning_rate": training_args.learning_rate,
            "epochs": training_args.num_train_epochs,
            "schedule": f"{training_args.lr_scheduler_type.value}, warmup {training_args.warmup_steps:g}",
            "defaults chosen from the base": defaults_reason,
            "batch size per device": training_args.per_device_train_batch_size,
            "test answers generated in": metrics.get(ANSWER_PRECISION),
        },
        usage=USAGE.format(path=run.output_dir.as_posix()),
        command=run.command,
    )


def answer_test_records(
    model, tokenizer, test_chats, test_records, builtin, instruct_args, response_args, trust_remote_code,
    output_dir, metrics,
) -> Exception | None:  # fmt: skip
    """Answer the test prompts greedily into generated_responses.json and add the scores to `metrics`.

    Returns the judge's load error, if any: the other results are still saved, and the run fails at the end.
    """
    if response_args.num_generate is not None:
        test_chats = test_chats.select(range(min(response_args.num_generate, len(test_chats))))
    if test_chats.num_rows == 0:
        logger.warning(
            "no test records to answer (--num_generate 0 or an empty test split): no test responses"
        )
        return None
    prompts, references = zip(*map(prompt_and_reference, test_chats["messages"]), strict=True)
    # A cast or quantized copy when --generation_dtype / --generation_quantize ask for one; the saved model is
    # never it.
    answering, setting = response_args.answer_model(model)
    metrics[ANSWER_PRECISION] = setting.describe()
    responses = generate_responses(
        answering,
        tokenizer,
        list(prompts),
        list(references),
        max_new_tokens=response_args.max_new_tokens,
        batch_size=response_args.generation_batch_size,
    )
    (output_dir / "generated_responses.json").write_text(
        json.dumps([asdict(r) for r in responses], indent=2, ensure_ascii=False)
    )
    metrics.update({f"test_{name}": value for name, value in response_metrics(responses).items()})
    multiturn = [is_multiturn(prompt) for prompt in prompts]
    metrics.update(exact_match_by_turns(multiturn, responses))
    if builtin:
        metrics.update(exact_match_per_family(test_records["family"], multiturn, responses))
    logger.info(
        "validation loss on responses %.4f; %d test responses: exact match %.1f%% (single-turn %.1f%%, last turn "
        "of a conversation %.1f%%), ROUGE-L %.3f, %.1f%% ended with EOS, the most common one answers %.1f%%",
        metrics["eval_loss"],
        metrics["test_num_responses"],
        100 * metrics.get("test_exact_match", float("nan")),
        100 * metrics.get(f"{EXACT_MATCH}_singleturn", float("nan")),
        100 * metrics.get(f"{EXACT_MATCH}_{MULTITURN}", float("nan")),
        metrics.get("test_rouge_l", float("nan")),
        100 * metrics["test_eos_rate"],
        100 * metrics["test_most_common_response_share"],
    )
    if not instruct_args.judge_model:
        return None
    try:
        scores = judge_responses(
            responses,
            instruct_args.judge_model,
            max_new_tokens=instruct_args.judge_max_new_tokens,
            trust_remote_code=trust_remote_code,
        )
    except JudgeLoadError as err:
        logger.error("%s; saving the other results", err)
        metrics["judge_error"] = str(err)
        return err
    metrics.update({f"test_{name}": value for name, value in judge_metrics(scores).items()})
    return None


CARD_METRICS = ("eval_loss", "train_loss")
ANSWER_PRECISION = "answer_precision"  # e.g. "float32, int8 weights (torchao)": what the test answers ran in
EXACT_MATCH = "test_exact_match"
MULTITURN = "multiturn"  # the last turn of a test conversation with more than one user turn


def is_multiturn(conversation: list[dict]) -> bool:
    """A conversation (the prompt to answer) with more than one user turn."""
    return sum(message["role"] == "user" for message in conversation) > 1


def is_right(response) -> bool:
    return response.text.strip() == response.reference.strip()  # as response_metrics' exact match


def exact_match_by_turns(multiturn: list[bool], responses) -> dict[str, float]:
    """`test_exact_match_singleturn` and `test_exact_match_multiturn` (the last turns of conversations), when the
    test split holds conversations; {} when it holds none (book-style records: `test_exact_match` says it all)."""
    right: dict[str, list[bool]] = defaultdict(list)
    for conversation, response in zip(multiturn, responses, strict=True):
        right[MULTITURN if conversation else "singleturn"].append(is_right(response))
    if not right[MULTITURN]:
        return {}
    return {f"{EXACT_MATCH}_{kind}": sum(hits) / len(hits) for kind, hits in sorted(right.items()) if hits}


def exact_match_per_family(families: list[str], multiturn: list[bool], responses) -> dict[str, float]:
    """Built-in task set: `test_exact_match_<family>`, the share of each family's single-turn test answers exactly
    right, and `test_exact_match_multiturn_<family>`, of the last turns of conversations ending in that family."""
    right: dict[str, list[bool]] = defaultdict(list)
    for family, conversation, response in zip(families, multiturn, responses, strict=False):
        right[f"{MULTITURN}_{family}" if conversation else family].append(is_right(response))
    return {f"{EXACT_MATCH}_{name}": sum(hits) / len(hits) for name, hits in sorted(right.items())}


def family_of(name: str) -> str | None:
    """The task family a per-family figure is about (`test_exact_match_[multiturn_]<family>`), else None."""
    rest = name.removeprefix(f"{EXACT_MATCH}_")
    family = rest.removeprefix(f"{MULTITURN}_")
    return family if rest != name and family in TASK_FAMILIES else None


def is_test_figure(name: str) -> bool:
    """A test metric of the whole split, or of all its single- or multi-turn records (the per-family ones go in
    their own table)."""
    return name.startswith("test_") and family_of(name) is None


def per_family_table(metrics: dict) -> str:
    """Markdown: exact match per task family of the built-in task set, single-turn and last turn of a
    conversation ("" for other data)."""
    figures: dict[str, dict[bool, float]] = defaultdict(dict)
    for name, value in metrics.items():
        if (family := family_of(name)) is not None:
            figures[family][name.startswith(f"{EXACT_MATCH}_{MULTITURN}_")] = value

    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:.1%}"

    rows = [f"| {family} | {cell(v.get(False))} | {cell(v.get(True))} |" for family, v in figures.items()]
    return (
        "Exact match per task family (test split):\n\n| family | single-turn | last turn of a conversation |\n"
        "|---|---|---|\n" + "\n".join(rows)
        if rows
        else ""
    )


CHAT_EXAMPLES = 4  # held-out prompts recorded for the Space when the data names no task families


def record_chat_training(config, chats: dict, test_records, task_families: list[str] | None = None) -> None:
    """Write into the model's config (config.json) what the Space tells a person about this chat model.

    - `chat_examples`: held-out user prompts to click in Chat: the last user turn of the first test records, one per
      task family for the built-in task set (`task_families` given), else the first CHAT_EXAMPLES distinct ones;
    - `chat_multiturn`: whether any training record had more than one user turn;
    - `chat_task_families`: the built-in task families trained on (built-in task set only).
    """
    families = test_records["family"] if task_families is not None else None
    examples: dict[str, str] = {}  # kind (a family, or the prompt itself) -> prompt
    for index, messages in enumerate(chats["test"]["messages"]):
        prompt = prompt_and_reference(messages)[0][-1]["content"]
        examples.setdefault(families[index] if families is not None else prompt, prompt)
        if families is None and len(examples) == CHAT_EXAMPLES:
            break
    config.chat_examples = list(examples.values())
    config.chat_multiturn = any(is_multiturn(messages[:-1]) for messages in chats["train"]["messages"])
    if task_families is not None:
        config.chat_task_families = task_families


USAGE = """from transformers import pipeline

chat = pipeline("text-generation", model="{path}", trust_remote_code=True)
messages = [{{"role": "user", "content": "Rewrite the sentence in passive voice: The cat chased the mouse."}}]
print(chat(messages, max_new_tokens=64)[0]["generated_text"][-1]["content"])"""


if __name__ == "__main__":
    main(*parse_args())
