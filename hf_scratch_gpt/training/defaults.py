"""Learning rate, epochs, warmup, schedule and batch size chosen from the base model.

The book's finetuning settings (learning rate 5e-5, a couple of epochs) suit a 124M GPT-2 pretrained on
billions of tokens. This project's own bases have 1-14M parameters and were pretrained for minutes: with the
book's settings they barely move (every held-out answer of an instruction finetune becomes the same string, and
none is right), while a learning rate near their pretraining one for 10 epochs answers most held-out tasks right
within minutes (benchmarks/RESULTS.md). So the defaults depend on the base:

| base | how it is recognised | instruct | classify |
|---|---|---|---|
| small | under 50M parameters (config shape) | lr = the pretraining peak lr (1e-3 without a record), 10 epochs, cosine, 5% warmup, batch 32 | `CLASSIFY_DEFAULTS["small"]`, lr = pretraining lr / 4 |
| GPT-2-sized | 50M parameters or more | the book's: lr 5e-5, 2 epochs, constant, no warmup, batch 8 | `CLASSIFY_DEFAULTS["large"]` |

Preference tuning (DPO, `PREFERENCE_DEFAULTS`) also sets DPO's `beta`: small bases beta 0.3, lr 1e-4, 2 epochs
(measured by benchmarks/dpo_preference.py), GPT-2-sized ones the book's chapter 7 DPO (beta 0.1, lr 5e-6, 1 epoch);
with LoRA the learning rate is 10 x higher. It ignores the pretraining record.

"What the pretraining run recorded" is the base folder's `all_results.json`, written by recipes/pretrain.py:
its peak `learning_rate` and `train_tokens_seen`. Finetuning a small base at (a fraction of) the learning rate it
was pretrained with keeps the step size in the range the base was trained stably with, whatever that was; a base
converted from GPT-2 (or any folder without that file) has no record, and the table's value applies.

Every value is only a default: the recipes' parser (`parse_recipe_args(..., defaults_from_base=TASK)` in
hf_scratch_gpt.training.arguments) uses it for each of BASE_CHOSEN that neither a flag nor `--config` gives,
before the arguments are built, so TrainingArguments validates the final values.

    defaults = finetune_defaults("instruct", model_config, model_args.model_name_or_path)
    logger.info("finetuning defaults: %s", defaults.reason)
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SMALL_BASE_MAX_PARAMS = 50_000_000  # between the project's bases (<= 14M) and GPT-2 small (124M)
TASKS = ("instruct", "classify", "preference")
FIELDS = (
    "learning_rate",
    "num_train_epochs",
    "warmup_steps",
    "lr_scheduler_type",
    "per_device_train_batch_size",
)
# What the recipes' parser takes from the base when neither a flag nor the config file gives it.
BASE_CHOSEN = (*FIELDS, "beta")

# ---------------------------------------------------------------- instruction finetuning
INSTRUCT_DEFAULTS = {
    # Project-sized bases: a high learning rate for 10 epochs; the book's settings leave them answering nothing
    # right (benchmarks/RESULTS.md).
    "small": {
        "learning_rate": 1e-3,
        "num_train_epochs": 10,
        "warmup_steps": 0.05,
        "lr_scheduler_type": "cosine",
        # Per example, a CPU step of 32 short examples costs a small model ~25% less time than one of 8.
        "per_device_train_batch_size": 32,
    },
    # The book's chapter 7 settings for GPT-2 (AdamW, lr 5e-5, 2 epochs, no schedule).
    "large": {
        "learning_rate": 5e-5,
        "num_train_epochs": 2,
        "warmup_steps": 0.0,
        "lr_scheduler_type": "constant",
        "per_device_train_batch_size": 8,
    },
}

# ---------------------------------------------------------------- classification (tuned by the classifier recipe)
CLASSIFY_DEFAULTS = {
    # Project-sized bases: lr 5e-4 (0.25 x the main job's pretraining lr 2e-3), 10 epochs. On the main-job base
    # these beat the book's lr 5e-5 for 5 epochs on spam, KJV testaments and a review-sentiment set, and come
    # within a point of TF-IDF + logistic regression (benchmarks/classify_vs_tfidf.py; figures in
    # benchmarks/RESULTS.md). KJV test accuracy still rises at epoch 10, spam's is flat after epoch 2-3 (validation
    # peaks there, then falls a little): hence no early stop and no more epochs.
    "small": {
        "learning_rate": 5e-4,
        "num_train_epochs": 10,
        "warmup_steps": 0.1,
        "lr_scheduler_type": "linear",
        "per_device_train_batch_size": 8,
    },
    # The book's chapter 6 settings for GPT-2 (lr 5e-5, 5 epochs).
    "large": {
        "learning_rate": 5e-5,
        "num_train_epochs": 5,
        "warmup_steps": 0.0,
        "lr_scheduler_type": "constant",
        "per_device_train_batch_size": 8,
    },
}

# ---------------------------------------------------------------- preference tuning (DPO)
PREFERENCE_DEFAULTS = {
    # Project-sized bases: the values benchmarks/dpo_preference.py chose on the main job's shape, instruction-
    # finetuned on the book's data (its figures: benchmarks/RESULTS.md); LoRA: see PREFERENCE_LORA_LR_FACTOR.
    "small": {
        "learning_rate": 1e-4,
        "num_train_epochs": 2,
        "warmup_steps": 0.05,
        "lr_scheduler_type": "linear",
        "per_device_train_batch_size": 8,
        "beta": 0.3,
    },
    # The book's chapter 7 DPO for GPT-2 (AdamW lr 5e-6, beta 0.1, 1 epoch, batch 8, no schedule). TRL 1.16's
    # DPOConfig defaults (lr 1e-6, beta 0.1, 3 epochs, linear) are meant for billion-parameter models.
    "large": {
        "learning_rate": 5e-6,
        "num_train_epochs": 1,
        "warmup_steps": 0.0,
        "lr_scheduler_type": "constant",
        "per_device_train_batch_size": 8,
        "beta": 0.1,
    },
}
# With --use_peft only the LoRA matrices train, and they need larger steps: lr x this (measured on small bases,
# 1e-3 vs full DPO's 1e-4; for GPT-2-sized bases the same ratio, not measured: the book has no LoRA DPO).
PREFERENCE_LORA_LR_FACTOR = 10.0

TABLES = {"instruct": INSTRUCT_DEFAULTS, "classify": CLASSIFY_DEFAULTS, "preference": PREFERENCE_DEFAULTS}
# Small bases with a pretraining record: finetuning learning rate = the pretraining peak learning rate x this.
PRETRAIN_LR_FRACTION = {"instruct": 1.0, "classify": 0.25}


@dataclass
class FinetuneDefaults:
    """Default finetuning hyper-parameters for one base, with why (logged and written to the model card).

    `warmup_steps` follows TrainingArguments: >= 1 is a number of steps, below 1 a fraction of training.
    """

    learning_rate: float
    num_train_epochs: float
    warmup_steps: float
    lr_scheduler_type: str
    per_device_train_batch_size: int
    reason: str
    beta: float | None = None  # DPO's beta (DPOConfig), for the preference task only

    def as_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in FIELDS}
        return values if self.beta is None else {**values, "beta": self.beta}


def count_config_parameters(config) -> int:
    """Parameters of a GPT-2-shaped causal LM from its config alone (tied head), without building it.

    Per block: attention 4 n_embd^2 + 4 n_embd, MLP 2 n_embd n_inner + n_inner + n_embd, two LayerNorms 4 n_embd;
    plus token and position embeddings and the final LayerNorm. GPT-2 small: 124,439,808.
    """
    d, layers = config.n_embd, config.n_layer
    inner = getattr(config, "n_inner", None) or 4 * d
    block = 4 * d * d + 4 * d + 2 * d * inner + inner + d + 4 * d
    return layers * block + config.vocab_size * d + config.n_positions * d + 2 * d


def pretraining_record(model_dir: str | Path | None) -> dict:
    """The base folder's all_results.json (written by recipes/pretrain.py), or {} when there is none."""
    if model_dir is None or not (Path(model_dir) / "all_results.json").is_file():
        return {}
    try:
        return json.loads((Path(model_dir) / "all_results.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        logger.warning(
            "could not read %s/all_results.json (%s); choosing defaults from the size", model_dir, err
        )
        return {}


def finetune_defaults(
    task: str, config, model_dir: str | Path | None, use_peft: bool = False
) -> FinetuneDefaults:
    """Defaults for finetuning the base with `config` (saved in `model_dir`, if local) for `task`.

    `use_peft` (LoRA) changes the preference task's learning rate only.

    >>> from hf_scratch_gpt import ScratchGPTConfig
    >>> finetune_defaults("instruct", ScratchGPTConfig(), None).learning_rate  # GPT-2 small's shape
    5e-05
    """
    if task not in TASKS:
        raise ValueError(f"unknown finetuning task {task!r}: choose one of {TASKS}")
    n_params = count_config_parameters(config)
    size = "small" if n_params < SMALL_BASE_MAX_PARAMS else "large"
    values = dict(TABLES[task][size])
    shape = f"{n_params / 1e6:.1f}M parameters ({config.n_layer} layers, n_embd {config.n_embd})"
    if task == "preference":
        return preference_defaults(values, size, shape, use_peft)
    if size == "large":
        reason = f"{shape}: GPT-2-sized base, the book's {task} settings"
    else:
        record = pretraining_record(model_dir)
        pretrain_lr = record.get("learning_rate")
        seen = record.get("train_tokens_seen")
        trained = f", pretrained on {seen / 1e6:.1f}M tokens" if isinstance(seen, int | float) else ""
        if isinstance(pretrain_lr, int | float) and pretrain_lr > 0:
            values["learning_rate"] = pretrain_lr * PRETRAIN_LR_FRACTION[task]
            how = f"{PRETRAIN_LR_FRACTION[task]:g} x its pretraining learning rate {pretrain_lr:g}"
        else:
            how = "no pretraining record, the small-base value"
        reason = (
            f"{shape}{trained}: a small base, so a high learning rate ({how}) and "
            f"{values['num_train_epochs']:g} epochs"
        )
    return FinetuneDefaults(**values, reason=f"{reason} (flags given on the command line win)")


def preference_defaults(values: dict, size: str, shape: str, use_peft: bool) -> FinetuneDefaults:
    """The DPO table's values for a base of `size`; LoRA's learning rate is PREFERENCE_LORA_LR_FACTOR higher.

    No pretraining record is used: DPO starts from an instruction-finetuned folder, and the small-base values are
    the ones measured from such a model.
    """
    if size == "large":
        reason = f"{shape}: GPT-2-sized base, the book's DPO settings (beta {values['beta']:g})"
    else:
        reason = (
            f"{shape}: a small base, so the DPO settings measured on the project's bases (beta {values['beta']:g}, "
            f"learning rate {values['learning_rate']:g}, {values['num_train_epochs']:g} epochs)"
        )
    if use_peft:
        values["learning_rate"] *= PREFERENCE_LORA_LR_FACTOR
        reason += f"; LoRA: {PREFERENCE_LORA_LR_FACTOR:g} x the learning rate, {values['learning_rate']:g}"
    return FinetuneDefaults(**values, reason=f"{reason} (flags given on the command line win)")


def defaults_help(task: str) -> str:
    """One paragraph for a recipe's --help: the table above in words."""
    small, large = TABLES[task]["small"], TABLES[task]["large"]

    def words(values: dict) -> str:
        beta = f"beta {values['beta']:g}, " if "beta" in values else ""
        return (
            f"{beta}learning_rate {values['learning_rate']:g}, {values['num_train_epochs']:g} epochs, "
            f"{values['lr_scheduler_type']} schedule, warmup {values['warmup_steps']:g}, "
            f"batch size {values['per_device_train_batch_size']}"
        )

    if task == "preference":
        return (
            f"DPO defaults chosen from the base (hf_scratch_gpt.training.defaults), used for the flags you do not "
            f"give: a base under {SMALL_BASE_MAX_PARAMS / 1e6:.0f}M parameters gets {words(small)} (the values "
            f"measured by benchmarks/dpo_preference.py); a GPT-2-sized base keeps the book's {words(large)}. With "
            f"--use_peft the learning rate is {PREFERENCE_LORA_LR_FACTOR:g} x higher."
        )

    return (
        f"Finetuning defaults chosen from the base (hf_scratch_gpt.training.defaults), used for the flags you do not "
        f"give: a base under {SMALL_BASE_MAX_PARAMS / 1e6:.0f}M parameters gets {words(small)} (learning rate "
        f"{PRETRAIN_LR_FRACTION[task]:g} x the pretraining learning rate in the base's all_results.json when "
        f"recorded); a GPT-2-sized base keeps the book's {words(large)}."
    )
