"""The recipes' command-line arguments (recipes/: pretrain, finetune_classifier, finetune_instruct, finetune_preference).

Each recipe parses these dataclasses, its own, and transformers' `TrainingArguments` with `HfArgumentParser`,
so every Trainer flag passes through. `parse_recipe_args` parses the command line once: flags win over a
`--config FILE` (.json / .yaml), which wins over the defaults chosen from the base model (finetuning recipes),
which win over the recipe's defaults. The flag names follow transformers' run_clm.py / run_classification.py and
TRL's sft.py.

Usage (a recipe's `parse_args`):

    model_args, data_args, lora_args, run_args, training_args = parse_recipe_args(
        (ModelArguments, DataArguments, LoraArguments, RunArguments, TrainingArguments),
        defaults={"output_dir": "outputs/finetune"}, defaults_from_base="instruct",
    )
"""

import argparse
import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import GenerationConfig, HfArgumentParser, TrainingArguments

from hf_scratch_gpt.data.arguments import check_range
from hf_scratch_gpt.model.inference import (
    DTYPES,
    QUANTIZATIONS,
    InferenceSetting,
    bf16_is_fast,
    prepare_for_inference,
    resolve_setting,
)
from hf_scratch_gpt.model.presets import MODEL_PRESETS, parse_config_overrides, preset_config_kwargs
from hf_scratch_gpt.training.defaults import BASE_CHOSEN


@dataclass
class ModelArguments:
    """Which model and tokenizer to start from (or which size to build from scratch)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Checkpoint folder or Hub id to start from (ours, or GPT-2 converted). Pretraining "
            "without it builds a new model from --model_size and --config_overrides."
        },
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer folder or Hub id, if not the one saved with --model_name_or_path. "
            "Pretraining without it trains our byte-level BPE on the training text."
        },
    )
    model_size: str = field(
        default="mini",
        metadata={
            "help": "Named size of a model built from scratch (see hf_scratch_gpt.model.presets.MODEL_PRESETS)."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": 'Config fields to override, e.g. "n_embd=256,n_layer=4,resid_pdrop=0.0".'},
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "Attention kernel: 'sdpa' (PyTorch's fused scaled_dot_product_attention, the default) or "
            "'eager' (the written-out path; faster for short blocks with bf16 on CPU)."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Allow checkpoints whose code lives on the Hub (not needed for ours)."},
    )

    def __post_init__(self):
        for flag, name in (
            ("--model_name_or_path", self.model_name_or_path),
            ("--tokenizer_name", self.tokenizer_name),
        ):
            if name:
                check_model_location(name, flag)

    def config_kwargs(self) -> dict:
        """`--config_overrides` and `--attn_implementation` as keyword arguments for `from_pretrained`."""
        kwargs = parse_config_overrides(self.config_overrides)
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        return kwargs


def check_model_location(name: str, flag: str = "--model_name_or_path") -> None:
    """Raise when `name` is neither a local folder nor something the Hub could hold.

    transformers would say "Repo id must be in the form 'repo_name' or 'namespace/repo_name'" for a missing
    folder such as `./outputs/pretrain`, and retry the network for `outputs/pretrain` when `outputs/` exists here.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    path = Path(name)
    if path.is_dir():
        return
    if path.exists():
        raise ValueError(f"{flag} {name} is a file: pass the checkpoint folder (the one holding config.json)")
    try:
        validate_repo_id(name)
        looks_like_a_path = len(path.parts) > 1 and Path(path.parts[0]).is_dir()
    except HFValidationError:
        looks_like_a_path = True
    if looks_like_a_path:
        raise ValueError(
            f"{flag} {name}: no folder exists at that path ({path.resolve()}), and it is not a Hub id. "
            "Check the path (e.g. run recipes/pretrain.py first to make outputs/pretrain), or give a Hub id "
            "such as gpt2 or namespace/name."
        )


@dataclass
class LoraArguments:
    """LoRA through peft (TRL's flag names)."""

    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["c_attn", "c_proj", "c_fc"],
        metadata={"help": "Module names that get adapters (GPT-2's names: c_attn, c_proj, c_fc)."},
    )
    lora_modules_to_save: list[str] | None = field(
        default=None,
        metadata={
            "help": "Modules trained in full beside the adapters, e.g. the LayerNorms `ln_1 ln_2 ln_f` (a few "
            "thousand weights that rescale every feature, which low-rank adapters cannot; see benchmarks/RESULTS.md)."
        },
    )
    merge_adapter: bool = field(
        default=False,
        metadata={
            "help": "Merge the trained adapter into the weights and save a plain model (else: the adapter)."
        },
    )

    def __post_init__(self):
        check_range("--lora_r", self.lora_r, at_least=1, why="the rank: 0 gives adapters no weights")
        check_range(
            "--lora_alpha", self.lora_alpha, above=0,
            why="the adapters' output is scaled by alpha / r: 0 would silence them, so they would train nothing",
        )  # fmt: skip
        check_range(
            "--lora_dropout", self.lora_dropout, at_least=0, below=1,
            why="a probability: 1 would drop every input of the adapters",
        )  # fmt: skip


@dataclass
class RunArguments:
    """Run control that TrainingArguments does not (or no longer) offer."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace the run in --output_dir: the folder is emptied first (never when what this run reads "
            "lies inside it, and never a folder that is not one of our runs)."
        },
    )
    max_train_seconds: float | None = field(
        default=None,
        metadata={
            "help": "Stop training after this many seconds of wall-clock time; the learning-rate schedule "
            "then runs on elapsed time instead of steps, so it ends decayed (0 or unset: no time limit)."
        },
    )
    # Set by parse_recipe_args, for the model card: the command (script and argv) that made these arguments, and
    # why the defaults chosen from the base are what they are (finetuning recipes).
    command: list[str] | None = field(default=None, init=False)
    defaults_reason: str | None = field(default=None, init=False)
    # Why --bf16 defaulted to off on a CPU with native bf16 (start_run logs it).
    precision_reason: str | None = field(default=None, init=False)

    def __post_init__(self):
        check_range(
            "--max_train_seconds", self.max_train_seconds, at_least=0, optional=True,
            why="0 or unset: no time limit",
        )  # fmt: skip


@dataclass
class ResponseArguments:
    """The chat recipes' (finetune_instruct, finetune_preference) system text and greedy answers: how the held-out
    prompts are answered, and the decoding settings saved in the model's generation_config.json for later chats."""

    system_prompt: str | None = field(
        default=None, metadata={"help": "System text put before every Alpaca record's prompt."}
    )
    max_new_tokens: int = field(
        default=256, metadata={"help": "Most tokens generated per held-out prompt (DPO: before and after)."}
    )
    num_generate: int | None = field(
        default=None,
        metadata={"help": "Answer the first N test records (DPO: test pairs) only (default: all; 0: none)."},
    )
    generation_batch_size: int = field(
        default=16, metadata={"help": "Prompts generated together (left-padded)."}
    )
    no_repeat_ngram_size: int = field(
        default=0,
        metadata={
            "help": "Greedy decoding never repeats an n-gram of this many tokens (0: off), counting the prompt's. "
            "Small models otherwise fall into loops that never reach EOS. Saved in generation_config.json "
            "(full or merged models; an adapter-only folder keeps its base model's)."
        },
    )
    repetition_penalty: float = field(
        default=1.1,
        metadata={
            "help": "Penalty > 0 on tokens already in the text: positive scores are divided by it, negative ones "
            "multiplied (1.0: off). Saved like --no_repeat_ngram_size. The default 1.1 keeps a small model's greedy "
            "answers out of loops without costing exact matches (benchmarks/RESULTS.md)."
        },
    )

    generation_dtype: str = field(
        default="auto",
        metadata={
            "help": f"Precision the held-out prompts are answered in ({', '.join(DTYPES)}): auto is bfloat16 "
            "where the hardware computes it natively, else float32. The saved model stays float32.",
            "choices": list(DTYPES),
        },
    )
    generation_quantize: str = field(
        default="none",
        metadata={
            "help": f"Weights the held-out prompts are answered with ({', '.join(QUANTIZATIONS)}): int8 "
            "quantizes a copy's Linear layers to int8 weights and activations (PyTorch, CPU only); "
            "int8_weights to int8 weights through torchao (pip install 'hf_scratch_gpt[quantize]'). The saved "
            "model keeps its weights. Quality and speed per setting: benchmarks/RESULTS.md.",
            "choices": list(QUANTIZATIONS),
        },
    )

    def __post_init__(self):
        # A choice this machine cannot answer with is refused before training, not after it.
        self.answer_setting("cuda" if torch.cuda.is_available() else "cpu")
        check_range("--max_new_tokens", self.max_new_tokens, at_least=1)
        check_range("--num_generate", self.num_generate, at_least=0, optional=True, why="0: answer none")
        check_range("--generation_batch_size", self.generation_batch_size, at_least=1)
        check_range("--no_repeat_ngram_size", self.no_repeat_ngram_size, at_least=0, why="0 is off")
        check_range("--repetition_penalty", self.repetition_penalty, above=0, why="1.0 is off")

    def generation_settings(self) -> dict[str, Any]:
        """The decoding settings of the answers, as `generate()` keyword arguments."""
        return {
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "repetition_penalty": self.repetition_penalty,
        }

    def answer_model(self, model):
        """(`model` as the held-out prompts are answered: a cast or quantized copy, or itself; the setting)."""
        return prepare_for_inference(model, self.generation_dtype, self.generation_quantize)

    def answer_setting(self, device: str | torch.device = "cpu") -> InferenceSetting:
        """The precision and weights the held-out prompts are answered with on `device` (auto resolved)."""
        return resolve_setting(
            self.generation_dtype,
            self.generation_quantize,
            device,
            "--generation_dtype",
            "--generation_quantize",
        )

    def generation_config(self, tokenizer) -> GenerationConfig:
        """Greedy answers that stop at EOS, to save with the model. A fresh config: sampling settings inherited from
        the base (pretrain.py saves temperature / top_k for its samples) would make a greedy config invalid, and
        save_pretrained refuses those."""
        return GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            **self.generation_settings(),
        )


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows each flag's default (HfArgumentParser's choice) and the description as written."""


CONFIG_FILE_SUFFIXES = (".json", ".yaml", ".yml")

# The valid range of every numeric TrainingArguments / DPOConfig flag the recipes expose, as check_range's keywords.
# Our own dataclasses check theirs in __post_init__; these classes are not ours, so parse_recipe_args checks their
# final values here, before building them: TrainingArguments' __post_init__ would rewrite some first (an
# --eval_steps of 0 becomes --logging_steps) and refuse others without naming the flag. Not checked:
# pad_to_multiple_of (DPOConfig: "auto", "none" or a number, as text, converted by TRL; padding changes the batch
# shape, never what is trained).
FRACTION = "below 1: that fraction of the training steps"
TRAINER_RANGES: dict[str, dict[str, Any]] = {
    # batches and steps
    "per_device_train_batch_size": {"at_least": 1},
    "per_device_eval_batch_size": {"at_least": 1},
    "gradient_accumulation_steps": {"at_least": 1},
    "eval_accumulation_steps": {"at_least": 1, "optional": True},
    "num_train_epochs": {"above": 0},
    "max_steps": {"at_least": 1, "special": {-1: "train for --num_train_epochs"}},  # Trainer took 0 for -1
    "warmup_steps": {"at_least": 0, "why": FRACTION},
    "logging_steps": {"above": 0, "why": FRACTION},
    "eval_steps": {"above": 0, "optional": True, "why": f"{FRACTION}; unset: --logging_steps"},
    "eval_delay": {"at_least": 0},
    "save_steps": {"above": 0, "why": FRACTION},
    "save_total_limit": {"at_least": 1, "optional": True, "why": "unset: keep every checkpoint"},
    "torch_empty_cache_steps": {"at_least": 1, "optional": True},
    # the optimizer and the loss
    "learning_rate": {"above": 0},
    "weight_decay": {"at_least": 0, "why": "a negative decay grows the weights"},
    "adam_beta1": {"at_least": 0, "below": 1},
    "adam_beta2": {"at_least": 0, "below": 1},
    "adam_epsilon": {"above": 0, "why": "it keeps the update finite where a gradient's second moment is 0"},
    "max_grad_norm": {"at_least": 0, "why": "0: no clipping"},
    "label_smoothing_factor": {"at_least": 0, "below": 1, "why": "1 would make every target uniform"},
    "neftune_noise_alpha": {"above": 0, "optional": True, "why": "unset: no NEFTune noise"},
    # seeds and processes
    "seed": {"at_least": 0, "at_most": 2**32 - 1, "why": "numpy's seed range"},
    "data_seed": {"at_least": 0, "at_most": 2**32 - 1, "optional": True, "why": "unset: --seed"},
    "dataloader_num_workers": {"at_least": 0, "why": "0: load batches in the main process"},
    "dataloader_prefetch_factor": {"at_least": 1, "optional": True},
    "ddp_bucket_cap_mb": {"at_least": 1, "optional": True},
    "ddp_timeout": {"at_least": 1, "why": "seconds"},
    "local_rank": {"at_least": -1, "why": "-1: not distributed; set by the launcher"},
    # DPO (DPOConfig)
    "beta": {
        "above": 0,
        "why": "DPO's reward is beta times the log-probability ratio to the reference: a negative beta trains "
        "towards the rejected answers, 0 makes the loss a constant",
    },
    "label_smoothing": {"at_least": 0, "below": 0.5, "why": "the share of labels taken as flipped"},
    "max_length": {"at_least": 1, "optional": True, "why": "unset: the model's context"},  # + room for a pair
    "dataset_num_proc": {"at_least": 0, "optional": True, "why": "0 or unset: the main process"},
    "precompute_ref_batch_size": {"at_least": 1, "optional": True},
    "loss_weights": {"at_least": 0, "optional": True, "why": "a negative weight trains that loss backwards"},
    "ld_alpha": {"at_least": 0, "at_most": 1, "optional": True},
    "f_alpha_divergence_coef": {},  # any finite alpha: TRL takes 1 as the reverse-KL limit
    "discopop_tau": {"above": 0, "why": "a temperature"},
    "ref_model_mixup_alpha": {"at_least": 0, "at_most": 1, "why": "a mixing weight"},
    "ref_model_sync_steps": {"at_least": 1},
    "router_aux_loss_coef": {"at_least": 0, "optional": True, "why": "0: off; unset: the model config's"},
}


def check_trainer_ranges(values: dict[str, Any], dataclass_types: tuple[type, ...]) -> None:
    """Check the TrainingArguments / DPOConfig values in `values` against TRAINER_RANGES."""
    trainer_names = {
        item.name
        for dataclass_type in dataclass_types
        if issubclass(dataclass_type, TrainingArguments)
        for item in dataclasses.fields(dataclass_type)
    }
    for name, valid in TRAINER_RANGES.items():
        if name in trainer_names:
            check_range(f"--{name}", values.get(name), **valid)


def check_held_out_share(values: dict[str, Any]) -> None:
    """The validation and test percentages (each already in range) must leave rows to train on."""
    validation, test = values.get("validation_split_percentage"), values.get("test_split_percentage")
    if validation is not None and test is not None and validation + test >= 100:
        raise ValueError(
            f"--validation_split_percentage {validation} + --test_split_percentage {test} must be < 100: "
            "they are cut from the training rows and would leave none to train on; lower one of them"
        )


def parse_recipe_args(
    dataclass_types: tuple[type, ...],
    defaults: dict[str, Any],
    args: list[str] | None = None,
    description: str | None = None,
    defaults_from_base: str | None = None,
    script: str | None = None,
):
    """Parse the command line once into `dataclass_types`, with this precedence (highest first):

    1. flags on the command line;
    2. `--config FILE` (.json / .yaml: a mapping of argument names to values; a lone FILE argument also works);
    3. for finetuning recipes (`defaults_from_base` names the task), the learning rate, epochs, warmup, schedule,
       batch size (and DPO's beta) chosen from the base model (hf_scratch_gpt.training.defaults);
    4. the recipe's `defaults`, then `use_cpu` (True without a GPU, which two-process DDP on CPU needs) and `bf16`
       (`bf16_default`: where the hardware computes bfloat16 natively and, on a CPU, the model is wide enough);
    5. the dataclasses' own defaults.

    The dataclasses are built once from the final values, so `TrainingArguments` validates what the run uses. Every
    numeric value is range-checked first (TRAINER_RANGES; our dataclasses in their `__post_init__`), and the
    validation and test percentages together after. `script` (e.g. "recipes/pretrain.py") and the arguments are recorded as `RunArguments.command`.
    """
    argv = sys.argv[1:] if args is None else list(args)
    argv, config_values = take_config_file(argv)
    parser = HfArgumentParser(dataclass_types, description=description, formatter_class=HelpFormatter)
    parser.add_argument(
        "--config", metavar="FILE", help="A .json / .yaml file of argument values; flags given beside it win."
    )
    names = {item.name for dataclass_type in dataclass_types for item in dataclasses.fields(dataclass_type)}
    from_base = {name: None for name in BASE_CHOSEN if name in names} if defaults_from_base else {}
    parser.set_defaults(
        **{
            "use_cpu": not torch.cuda.is_available(),
            "bf16": None,  # not given: bf16_default decides once the model's width is known
            **defaults,
            **from_base,
            **config_values,
        }
    )
    values = vars(parser.parse_args(argv))
    values.pop("config")
    unknown = sorted(set(values) - names)
    if unknown:  # only a config file can bring names the parser does not know
        raise ValueError(f"--config: unknown argument names {unknown}; check them against --help")
    wrap_single_values(values, dataclass_types)
    chosen = fill_from_base(values, defaults_from_base) if defaults_from_base else None
    precision_reason = None
    if "bf16" in values and values["bf16"] is None:
        values["bf16"], precision_reason = bf16_default(values)
    check_trainer_ranges(values, dataclass_types)
    parsed = parser.parse_dict(values)  # builds each dataclass: TrainingArguments validates the final values
    check_held_out_share(values)
    for arguments in parsed:
        if isinstance(arguments, RunArguments):
            arguments.command = [
                script or Path(sys.argv[0]).as_posix(),
                *(sys.argv[1:] if args is None else args),
            ]
            arguments.defaults_reason = chosen.reason if chosen else None
            arguments.precision_reason = precision_reason
    return parsed


def take_config_file(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """`argv` without `--config FILE`, and the file's values (read once). A lone FILE argument counts too."""
    argv = list(argv)
    path = None
    if len(argv) == 1 and not argv[0].startswith("-") and argv[0].endswith(CONFIG_FILE_SUFFIXES):
        path = argv.pop()
    for index, arg in enumerate(argv):
        if arg == "--config" or arg.startswith("--config="):
            if path is not None:
                raise ValueError(
                    "--config is given twice: merge the files into one, or give the rest as flags"
                )
            if arg == "--config" and index + 1 == len(argv):
                raise ValueError("--config needs a FILE (.json or .yaml)")
            path = arg.partition("=")[2] if "=" in arg else argv[index + 1]
    argv = [arg for index, arg in enumerate(argv) if not is_config_flag(argv, index)]
    if path is None:
        return argv, {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path} does not exist")
    if path.suffix not in CONFIG_FILE_SUFFIXES:
        raise ValueError(f"--config {path}: the file must be .json, .yaml or .yml")
    text = path.read_text(encoding="utf-8")
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"--config {path} is not valid {path.suffix[1:].upper()}: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"--config {path} must hold a mapping of argument names to values, got {type(values).__name__}"
        )
    return argv, values


def is_config_flag(argv: list[str], index: int) -> bool:
    """True for `--config`, its FILE, or `--config=FILE` at `argv[index]`."""
    arg = argv[index]
    return arg == "--config" or arg.startswith("--config=") or (index > 0 and argv[index - 1] == "--config")


def wrap_single_values(values: dict[str, Any], dataclass_types: tuple[type, ...]) -> None:
    """A config file's single value for a list flag (`lora_target_modules: c_attn`) as a one-item list, as the
    flag `--lora_target_modules c_attn` gives it."""
    for dataclass_type in dataclass_types:
        for item in dataclasses.fields(dataclass_type):
            kinds = typing.get_args(item.type) if isinstance(item.type, types.UnionType) else (item.type,)
            takes_list = all(typing.get_origin(kind) is list or kind is type(None) for kind in kinds)
            value = values.get(item.name)
            if takes_list and value is not None and not isinstance(value, list):
                values[item.name] = [value]


def fill_from_base(values: dict[str, Any], task: str):
    """Set the arguments in BASE_CHOSEN that neither a flag nor the config file gave, from the base model; return
    the FinetuneDefaults (with why they were chosen)."""
    from transformers import AutoConfig

    from hf_scratch_gpt.training.defaults import finetune_defaults

    base = values.get("model_name_or_path")
    if not base:
        raise ValueError(
            "--model_name_or_path is required: the pretrained checkpoint to finetune (e.g. outputs/pretrain)"
        )
    # A missing folder says so, instead of transformers' "cannot connect to the Hub".
    check_model_location(base)
    config = AutoConfig.from_pretrained(
        base,
        trust_remote_code=values.get("trust_remote_code", False),
        **parse_config_overrides(values.get("config_overrides")),
    )
    defaults = finetune_defaults(task, config, base, use_peft=bool(values.get("use_peft")))
    chosen = defaults.as_dict()
    for name in BASE_CHOSEN:
        if values.get(name) is None and name in chosen:
            values[name] = chosen[name]
    return defaults


# bf16 autocast on a CPU pays only for wide enough layers. On a 2-core Intel Xeon with AMX (2026-12-02), the main
# job's base (n_embd 128) finetuned 1.8x slower with it than in float32 (PyTorch's CPU scaled_dot_product_attention
# is 3-6x slower in bf16 at head size 32) and pretrained no faster; a 256-wide base finetuned at the same speed; a
# 384-wide model trained 2.3x faster (benchmarks/RESULTS.md). GPUs with bf16 gain at every width.
BF16_CPU_MIN_WIDTH = 384


def bf16_default(values: dict[str, Any]) -> tuple[bool, str | None]:
    """`--bf16` when neither a flag nor the config gave it: True where the hardware computes bfloat16 natively
    (`bf16_is_fast`) and, on a CPU, the model is at least BF16_CPU_MIN_WIDTH wide (or its width is unknown); with
    why it is off on a CPU that has native bf16 (None otherwise)."""
    if not bf16_is_fast():
        return False, None
    if torch.cuda.is_available() and not values.get("use_cpu"):
        return True, None
    width = model_width(values)
    if width is not None and width < BF16_CPU_MIN_WIDTH:
        return False, (
            f"bf16 autocast is off although this CPU computes bfloat16 natively: the model is {width} wide, and "
            f"on a CPU bf16 trains faster only from n_embd {BF16_CPU_MIN_WIDTH} up (--bf16 true turns it on)"
        )
    return True, None


def model_width(values: dict[str, Any]) -> int | None:
    """n_embd of the model a recipe's arguments name: a local folder's config.json, else `--model_size` with
    `--config_overrides`; None when it cannot be told without loading (a Hub name, a folder without config)."""
    overrides = parse_config_overrides(values.get("config_overrides"))
    name = values.get("model_name_or_path")
    if name:
        config_file = Path(name) / "config.json"
        if not config_file.is_file():
            return overrides.get("n_embd")
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # the loader reports a damaged config later, with the file named
        width = overrides.get("n_embd", config.get("n_embd", config.get("hidden_size")))
        return width if isinstance(width, int) else None
    size = values.get("model_size")
    if size not in MODEL_PRESETS:
        return None
    return preset_config_kwargs(size, values.get("config_overrides")).get("n_embd")


def length_within_context(flag: str, value: int | None, context: int, fix: str = "") -> int:
    """A length flag's value (`--block_size`, `--max_seq_length`, `--max_length`), the model's context when not
    given; a length above the context is refused (the position embeddings stop there)."""
    if value is None:
        return context
    if value > context:
        raise ValueError(
            f"{flag} {value} is above the model's context (n_positions {context}); lower {flag}{fix}"
        )
    return value
