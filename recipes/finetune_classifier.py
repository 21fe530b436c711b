"""Finetune a pretrained GPT as a text classifier (the book's spam classifier, chapter 6, and any other labels).

Starts from a checkpoint (ours, e.g. outputs/pretrain, or GPT-2: a `gpt2` folder is converted on the fly),
puts a `score` head on the last real token (ScratchGPTForSequenceClassification), and trains all weights, only
the last block + final LayerNorm + head (`--trainable_layers last_block`, as the book does), only the head, or
LoRA adapters (`--use_peft`). Reports accuracy and F1 on the train, validation and test splits, writes their
confusion matrices (confusion_matrix.json, the test split's as confusion_matrix.png) and every test prediction
with its class probabilities (test_predictions.jsonl); the model card shows them.

Learning rate, epochs, warmup and schedule default to values that fit the base (hf_scratch_gpt.training.defaults):
the project's small bases (under 50M parameters, pretrained for minutes) get a high learning rate and more epochs,
GPT-2-sized bases the book's chapter 6 settings. Any of these flags you give wins; the run logs and records
(all_results.json `finetune_defaults`, the model card) what was chosen and why.

The book's balanced spam split (1045 / 149 / 300 rows) from the raw SMS Spam Collection:

    python recipes/finetune_classifier.py --model_name_or_path outputs/pretrain \\
        --train_file ../shared/data/SMSSpamCollection --book_spam_split --output_dir outputs/spam

Your own files with `text` and `label` columns (csv / tsv / json / jsonl / parquet; a headerless
`label<TAB>text` file works too); missing validation / test splits are drawn at random from the training rows:

    python recipes/finetune_classifier.py --model_name_or_path outputs/pretrain --train_file reviews.csv \\
        --text_column_name review --label_column_name sentiment --balance_classes --use_peft --lora_r 8

Every TrainingArguments flag passes through; `accelerate launch` works as for recipes/pretrain.py.
"""

import logging
from dataclasses import dataclass, field

from transformers import AutoConfig, AutoTokenizer, DataCollatorWithPadding, TrainingArguments

from hf_scratch_gpt import ScratchGPTForSequenceClassification
from hf_scratch_gpt.data.arguments import SPLIT_PERCENTAGE, DataArguments, check_range
from hf_scratch_gpt.data.classify import (
    balance_classes,
    book_spam_split,
    encode_labels,
    label_names,
    tokenize_for_classification,
)
from hf_scratch_gpt.data.loading import carve_splits, limit_samples, load_raw_datasets, require_columns
from hf_scratch_gpt.evaluation.classification import (
    PREDICTIONS_FILE,
    classification_metrics,
    confusion_matrix,
    f1_average,
    results_table,
    write_confusion_matrices,
    write_predictions,
)
from hf_scratch_gpt.training.arguments import (
    LoraArguments,
    ModelArguments,
    RunArguments,
    length_within_context,
    parse_recipe_args,
)
from hf_scratch_gpt.training.defaults import FIELDS, defaults_help
from hf_scratch_gpt.training.lora import apply_lora, describe_lora, finish_lora, log_trainable_parameters
from hf_scratch_gpt.training.reporting import CONFUSION_PLOT, CardInfo, save_confusion_plot
from hf_scratch_gpt.training.run import start_run
from hf_scratch_gpt.training.trainer import RecipeTrainer

logger = logging.getLogger("finetune_classifier")

TRAINABLE_LAYERS = ("all", "last_block", "head")
# Learning rate, epochs, warmup, schedule and batch size are chosen from the base (hf_scratch_gpt.training.defaults).
DEFAULTS = {
    "output_dir": "outputs/classifier",
    "per_device_eval_batch_size": 32,
    "weight_decay": 0.1,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "logging_steps": 10,
    "report_to": "none",
    "ddp_find_unused_parameters": False,
}


@dataclass
class ClassifierArguments:
    """Flags of this recipe only."""

    label_column_name: str = field(default="label", metadata={"help": "Column holding the class labels."})
    test_split_percentage: float = field(
        default=20.0,
        metadata={"help": "Percentage of training rows held out as test set when none is given."},
    )
    book_spam_split: bool = field(
        default=False,
        metadata={
            "help": "--train_file is the SMS Spam Collection: build the book's balanced 1045/149/300 split."
        },
    )
    balance_classes: bool = field(
        default=False,
        metadata={"help": "Downsample the training split to the same number of rows per class."},
    )
    trainable_layers: str = field(
        default="all",
        metadata={"help": "Weights to train without LoRA: all, last_block (last block + ln_f + head), head."},
    )
    max_seq_length: int | None = field(
        default=None,
        metadata={
            "help": "Longer texts keep their first max_seq_length tokens (with a warning). Default: the "
            "model's context."
        },
    )
    report_train_accuracy: bool = field(
        default=True,
        metadata={
            "help": "Also evaluate the training split after training (train_eval_*; its confusion matrix)."
        },
    )

    def __post_init__(self):
        check_range("--test_split_percentage", self.test_split_percentage, **SPLIT_PERCENTAGE)
        check_range(
            "--max_seq_length", self.max_seq_length, at_least=1, optional=True, why="unset: the model's context",
        )  # fmt: skip


ARGUMENT_TYPES = (
    ModelArguments,
    DataArguments,
    ClassifierArguments,
    LoraArguments,
    RunArguments,
    TrainingArguments,
)


def parse_args(args: list[str] | None = None) -> tuple:
    """The command line (or `--config FILE` plus flags) as this recipe's argument dataclasses."""
    return parse_recipe_args(
        ARGUMENT_TYPES,
        DEFAULTS,
        args,
        description=f"{__doc__}\n{defaults_help('classify')}",
        defaults_from_base="classify",
        script="recipes/finetune_classifier.py",
    )


def main(model_args, data_args, cls_args, lora_args, run_args, training_args) -> dict:
    check_arguments(data_args, cls_args)  # before start_run, so a mistyped flag leaves no run folder behind
    run = start_run(
        "finetune_classifier",
        training_args,
        run_args,
        inputs=[model_args.model_name_or_path, model_args.tokenizer_name, data_args.train_file,
                data_args.validation_file, data_args.test_file],
    )  # fmt: skip

    # 1. Data: text + label columns in train / validation / test splits, labels encoded as class ids.
    raw, text_column, label_list = load_splits(data_args, cls_args, training_args.seed)

    # 2. Tokenizer and model: the checkpoint's body, a new `score` head for these labels.
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path,
        trust_remote_code=model_args.trust_remote_code,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_classifier(model_args, label_list, tokenizer.pad_token_id)
    logger.info("finetuning defaults chosen from the base: %s", run_args.defaults_reason)
    max_length = length_within_context("--max_seq_length", cls_args.max_seq_length, model.config.n_positions)
    if lora_args.use_peft:
        model = apply_lora(model, lora_args, task_type="SEQ_CLS")
    else:
        freeze_for(model, cls_args.trainable_layers)
    parameters = log_trainable_parameters(model)

    # 3. Tokenize (longer texts are truncated with a warning).
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = tokenize_for_classification(
            raw, tokenizer, text_column, max_length, num_proc=data_args.preprocessing_num_workers
        )
    tokenized = tokenized.select_columns(["input_ids", "attention_mask", "labels"])

    # 4. Train, with accuracy and F1 on the validation split after each epoch.
    trainer = RecipeTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=classification_metrics(len(label_list)),
        max_train_seconds=run_args.max_train_seconds,
        callbacks=[run.callback()],
    )
    train_result = trainer.train(resume_from_checkpoint=run.resume)

    # 5. Evaluate every split (accuracy, F1, confusion matrix) and record what the run trained with.
    metrics = dict(train_result.metrics)
    outputs, split_metrics, matrices = evaluate_splits(
        trainer, tokenized, len(label_list), cls_args.report_train_accuracy, metrics
    )
    metrics.update({**parameters, "world_size": training_args.world_size, "labels": label_list})
    metrics.update({name: getattr(training_args, name) for name in FIELDS})
    metrics["lr_scheduler_type"] = training_args.lr_scheduler_type.value  # "linear", not the enum
    metrics["finetune_defaults"] = run_args.defaults_reason

    # 6. Save (merged model, adapter or full model), the test predictions and the confusion matrices.
    model = finish_lora(trainer.model, lora_args.merge_adapter) if lora_args.use_peft else trainer.model
    run.save_model(model, tokenizer, trainer)
    if trainer.is_world_process_zero():
        save_evaluation(
            run.output_dir, raw["test"][text_column], outputs["test"], split_metrics, matrices, label_list
        )
    training = describe_training(cls_args, lora_args)
    card = CardInfo(
        model_name=run.output_dir.name,
        pipeline_tag="text-classification",
        summary=f"A GPT text classifier ({len(label_list)} classes: {', '.join(label_list)}) finetuned from "
        f"`{model_args.model_name_or_path}` with hf_scratch_gpt ({training}).",
        metrics={k: v for k, v in metrics.items() if k.endswith(("accuracy", "_f1", "_loss"))},
        evaluation=evaluation_section(split_metrics, len(label_list)),
        data=data_args.dataset_name
        or f"local files: {data_args.train_file}"
        + (" (the book's balanced spam split)" if cls_args.book_spam_split else ""),
        dataset=data_args.dataset_name,
        base_model=model_args.model_name_or_path,
        hyperparameters={
            "training": training,
            "trainable parameters": f"{parameters['trainable_params']:,} of {parameters['total_params']:,}",
            "learning_rate": training_args.learning_rate,
            "epochs": training_args.num_train_epochs,
            "warmup": training_args.warmup_steps,
            "schedule": training_args.lr_scheduler_type.value,
            "defaults from the base": metrics["finetune_defaults"],
            "batch size per device": training_args.per_device_train_batch_size,
            "max_seq_length": max_length,
        },
        usage=USAGE.format(path=run.output_dir.as_posix()),
        command=run.command,
    )
    run.finish(trainer, metrics, card, plot_title=f"finetuning {run.output_dir.name}")
    return metrics


def check_arguments(data_args: DataArguments, cls_args: ClassifierArguments) -> None:
    """Refuse flag combinations this recipe cannot run."""
    if cls_args.trainable_layers not in TRAINABLE_LAYERS:
        raise ValueError(
            f"--trainable_layers must be one of {TRAINABLE_LAYERS}, got {cls_args.trainable_layers!r}"
        )
    if cls_args.book_spam_split and not data_args.train_file:
        raise ValueError("--book_spam_split needs --train_file pointing at the SMSSpamCollection file")


def load_splits(data_args: DataArguments, cls_args: ClassifierArguments, seed: int):
    """The train / validation / test splits with their labels as class ids; the text column; the label names.

    Missing validation / test splits are drawn at random (under `seed`) from the training rows.
    """
    text_column, label_column = data_args.text_column_name, cls_args.label_column_name
    if cls_args.book_spam_split:
        raw = book_spam_split(data_args.train_file)
        text_column, label_column = "text", "label"
    else:
        raw = load_raw_datasets(data_args, expected_columns=(label_column, text_column))
        raw = carve_splits(
            raw, data_args.validation_split_percentage, cls_args.test_split_percentage, True, seed
        )
    flags = {text_column: "--text_column_name", label_column: "--label_column_name"}
    for split, dataset in raw.items():
        require_columns(dataset, [text_column, label_column], split, flags)
    if cls_args.balance_classes:
        raw["train"] = balance_classes(raw["train"], label_column, seed)
    raw = limit_samples(raw, data_args)  # --max_train_samples / --max_eval_samples
    label_list = label_names(raw["train"], label_column)
    if len(label_list) < 2:
        raise ValueError(
            f"the training split has a single label {label_list}: a classifier needs at least two"
        )
    raw = encode_labels(raw, label_column, label_list)
    logger.info("labels %s; rows %s", label_list, {split: len(dataset) for split, dataset in raw.items()})
    return raw, text_column, label_list


def evaluate_splits(trainer, tokenized, num_labels: int, with_train: bool, metrics: dict):
    """Predict every split (`train_eval_*`, `eval_*`, `test_*` metrics, added to `metrics`).

    Returns the predictions, each split's accuracy / F1 / rows, and each split's confusion matrix.
    """
    splits = {"train": "train_eval", "validation": "eval", "test": "test"}
    if not with_train:
        del splits["train"]
    outputs, split_metrics, matrices = {}, {}, {}
    for split, prefix in splits.items():
        output = outputs[split] = trainer.predict(tokenized[split], metric_key_prefix=prefix)
        metrics.update(output.metrics)
        matrices[split] = confusion_matrix(output.label_ids, output.predictions.argmax(-1), num_labels)
        split_metrics[split] = {
            "accuracy": output.metrics[f"{prefix}_accuracy"],
            "f1": output.metrics[f"{prefix}_f1"],
            "rows": len(output.label_ids),
        }
    return outputs, split_metrics, matrices


def save_evaluation(output_dir, test_texts, test_output, split_metrics, matrices, label_list) -> None:
    """Every test prediction with its class probabilities, each split's confusion matrix (the test split's also
    as a plot), and the accuracy / F1 per split in the log."""
    write_predictions(
        output_dir / PREDICTIONS_FILE, test_texts, test_output.label_ids, test_output.predictions, label_list
    )
    write_confusion_matrices(output_dir / "confusion_matrix.json", label_list, matrices)
    save_confusion_plot(
        matrices["test"], label_list, output_dir / CONFUSION_PLOT, title=f"{output_dir.name}: test split"
    )
    logger.info(
        "accuracy / F1: %s",
        "; ".join(f"{split} {m['accuracy']:.4f} / {m['f1']:.4f}" for split, m in split_metrics.items()),
    )


def evaluation_section(split_metrics: dict, num_labels: int) -> str:
    """The model card's results: accuracy and F1 per split, and the test split's confusion matrix."""
    return (
        f"### Accuracy and F1 ({f1_average(num_labels)}) per split\n\n"
        f"{results_table(split_metrics)}\n\nTest split, rows: true label, columns: predicted "
        f"(all splits in `confusion_matrix.json`; every test prediction with its class probabilities in "
        f"`{PREDICTIONS_FILE}`):\n\n![confusion matrix of the test split]({CONFUSION_PLOT})"
    )


USAGE = """from transformers import pipeline

classifier = pipeline("text-classification", model="{path}", trust_remote_code=True)
print(classifier("You are a winner! Claim your free prize now"))"""


def load_classifier(model_args: ModelArguments, label_list: list[str], pad_token_id: int):
    """ScratchGPTForSequenceClassification from our checkpoint, or from a GPT-2 checkpoint (converted)."""
    label_config = {
        "num_labels": len(label_list),
        "id2label": dict(enumerate(label_list)),
        "label2id": {name: index for index, name in enumerate(label_list)},
        "pad_token_id": pad_token_id,
        **model_args.config_kwargs(),
    }
    path = model_args.model_name_or_path
    config = AutoConfig.from_pretrained(path, trust_remote_code=model_args.trust_remote_code)
    if config.model_type == "gpt2":
        from hf_scratch_gpt.model.gpt2 import from_gpt2

        causal = from_gpt2(path)
        for key, value in label_config.items():
            setattr(causal.config, "_attn_implementation" if key == "attn_implementation" else key, value)
        model = ScratchGPTForSequenceClassification(causal.config)
        model.transformer.load_state_dict(causal.transformer.state_dict())
        return model
    if config.model_type != "scratch_gpt":
        raise ValueError(
            f"{path} is a {config.model_type!r} model; this recipe finetunes ScratchGPT or GPT-2 checkpoints"
        )
    return ScratchGPTForSequenceClassification.from_pretrained(path, **label_config)


def freeze_for(model: ScratchGPTForSequenceClassification, trainable_layers: str) -> None:
    """Freeze all but the chosen part: everything, the last block + ln_f + score (the book), or score alone."""
    if trainable_layers == "all":
        return
    model.requires_grad_(False)
    trained = [model.score]
    if trainable_layers == "last_block":
        trained += [model.transformer.h[-1], model.transformer.ln_f]
    for module in trained:
        module.requires_grad_(True)


def describe_training(cls_args: ClassifierArguments, lora_args: LoraArguments) -> str:
    if lora_args.use_peft:
        return describe_lora(lora_args)
    return {"all": "all weights", "last_block": "last block + final LayerNorm + head", "head": "head only"}[
        cls_args.trainable_layers
    ]


if __name__ == "__main__":
    main(*parse_args())
