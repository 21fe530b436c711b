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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import GenerationConfig, HfArgumentParser

from hf_scratch_gpt.model.presets import parse_config_overrides
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


@dataclass
class RunArguments:
    """Run control that TrainingArguments does not (or no longer) offer."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace a previous run in --output_dir (its checkpoints are deleted)."},
    )
    max_train_seconds: float | None = field(
        default=None,
        metadata={
            "help": "Stop training after this many seconds of wall-clock time; the learning-rate schedule "
            "then runs on elapsed time instead of steps, so it ends decayed (0 or unset: no time limit)."
        },
    )
    # The command that made these arguments (script and argv), for the model card; set by parse_recipe_args.
    command: list[str] | None = field(default=None, init=False)


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

    def __post_init__(self):
        if not self.repetition_penalty > 0:  # also refuses NaN
            raise ValueError(f"--repetition_penalty must be > 0 (1.0 is off), got {self.repetition_penalty}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(
                f"--no_repeat_ngram_size must be >= 0 (0 is off), got {self.no_repeat_ngram_size}"
            )

    def generation_settings(self) -> dict[str, Any]:
        """The decoding settings of the answers, as `generate()` keyword arguments."""
        return {
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "repetition_penalty": self.repetition_penalty,
        }

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
       (True where the hardware computes bfloat16 natively);
    5. the dataclasses' own defaults.

    The dataclasses are built once from the final values, so `TrainingArguments` validates what the run uses.
    `script` (e.g. "recipes/pretrain.py") and the arguments are recorded as `RunArguments.command`.
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
            "bf16": bf16_is_fast(),
            **defaults,
            **from_base,
            **config_values,
        }
    )
    values = vars(parser.parse_args(argv))
    values.pop("config")
    if defaults_from_base:
        fill_from_base(values, defaults_from_base)
    unknown = sorted(set(values) - names)
    if unknown:  # only a config file can bring names the parser does not know
        raise ValueError(f"--config: unknown argument names {unknown}; check them against --help")
    parsed = parser.parse_dict(values)  # builds each dataclass: TrainingArguments validates the final values
    for arguments in parsed:
        if isinstance(arguments, RunArguments):
            arguments.command = [
                script or Path(sys.argv[0]).as_posix(),
                *(sys.argv[1:] if args is None else args),
            ]
    return parsed


def take_config_file(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """`argv` without `--config FILE`, and the file's values (read once). A lone FILE argument counts too."""
    argv = list(argv)
    path = None
    if len(argv) == 1 and argv[0].endswith(CONFIG_FILE_SUFFIXES):
        path = argv.pop()
    for index, arg in enumerate(argv):
        if arg == "--config":
            if index + 1 == len(argv):
                raise ValueError("--config needs a FILE (.json or .yaml)")
            path = argv[index + 1]
            del argv[index : index + 2]
            break
        if arg.startswith("--config="):
            path = arg.partition("=")[2]
            del argv[index]
            break
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


def fill_from_base(values: dict[str, Any], task: str) -> None:
    """Set the arguments in BASE_CHOSEN that neither a flag nor the config file gave, from the base model."""
    from transformers import AutoConfig

    from hf_scratch_gpt.training.defaults import finetune_defaults

    base = values.get("model_name_or_path")
    if not base:
        raise ValueError(
            "--model_name_or_path is required: the pretrained checkpoint to finetune (e.g. outputs/pretrain)"
        )
    check_model_location(
        base
    )  # a missing folder says so, instead of transformers' "cannot connect to the Hub"
    config = AutoConfig.from_pretrained(base, trust_remote_code=values.get("trust_remote_code", False))
    chosen = finetune_defaults(task, config, base, use_peft=bool(values.get("use_peft"))).as_dict()
    for name in BASE_CHOSEN:
        if values.get(name) is None and name in chosen:
            values[name] = chosen[name]


def bf16_is_fast() -> bool:
    """True on a GPU with bfloat16 support, or a CPU with native bfloat16 (AVX512-BF16 / AMX), where bf16
    autocast trains about twice as fast; elsewhere bf16 is emulated and slower than float32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
