"""Command-line arguments shared by the recipes in recipes/ (pretrain, finetune_classifier, finetune_instruct,
finetune_preference).

Each recipe parses these dataclasses, its own, and transformers' `TrainingArguments` with `HfArgumentParser`,
so every Trainer flag passes through, and a single `.json` / `.yaml` file may replace the flags. The flag
names follow transformers' run_clm.py / run_classification.py and TRL's sft.py.

Usage (inside a recipe):

    model_args, data_args, lora_args, run_args, training_args = parse_recipe_args(
        (ModelArguments, DataArguments, LoraArguments, RunArguments, TrainingArguments),
        defaults={"output_dir": "outputs/finetune", "learning_rate": 5e-4},
    )
"""

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import GenerationConfig, HfArgumentParser

from hf_scratch_gpt.model.presets import parse_config_overrides


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
            "thousand weights; they lowered the instruction benchmark's LoRA validation loss by 0.5)."
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
            "answers out of loops (measured with finetune_instruct on the book's data: 110 of 110 end with EOS, "
            "109 without; the built-in tasks 95.5%% exact, 95.0%% without; 2026-12-01)."
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


def parse_recipe_args(
    dataclass_types: tuple[type, ...],
    defaults: dict[str, Any],
    args: list[str] | None = None,
    description: str | None = None,
):
    """Parse flags (or one .json/.yaml file) into `dataclass_types`; `defaults` replace the dataclass defaults.

    The recipe's defaults (e.g. `output_dir`, a learning rate that suits small models) apply both to flags and
    to a config file; anything the user gives wins. `use_cpu` defaults to True when no GPU is present, which
    two-process DDP on CPU needs; `bf16` (autocast) defaults to True where the hardware computes in bfloat16
    natively (`--bf16 false` turns it off). `description` is printed at the top of `--help`, as written.
    """
    argv = sys.argv[1:] if args is None else list(args)
    defaults = {"use_cpu": not torch.cuda.is_available(), "bf16": bf16_is_fast(), **defaults}
    parser = HfArgumentParser(dataclass_types, description=description, formatter_class=HelpFormatter)
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        path = Path(argv[0])
        if not path.is_file():
            raise FileNotFoundError(f"argument file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(values, dict):
            raise ValueError(
                f"{path} must hold a mapping of argument names to values, got {type(values).__name__}"
            )
        return parser.parse_dict({**defaults, **values})
    parser.set_defaults(**defaults)
    return parser.parse_args_into_dataclasses(args=argv)


def bf16_is_fast() -> bool:
    """True on a GPU with bfloat16 support, or a CPU with native bfloat16 (AVX512-BF16 / AMX), where bf16
    autocast trains about twice as fast; elsewhere bf16 is emulated and slower than float32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def setup_logging(training_args) -> None:
    """INFO logs on the main process (WARNING on the others); transformers' level from --log_level."""
    import logging

    import transformers

    level = logging.INFO if training_args.should_log else logging.WARNING
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=level
    )
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
