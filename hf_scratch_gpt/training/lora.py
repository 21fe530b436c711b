"""LoRA adapters through peft, from the recipes' common flags.

LoRA freezes the pretrained weights W and learns a low-rank update B @ A (rank `--lora_r`, scaled by
`--lora_alpha / --lora_r`) beside each targeted Linear. Our model uses GPT-2's module names, so the targets are
`c_attn` (query/key/value), `c_proj` (attention and MLP output projections) and `c_fc` (MLP input). For
classification, peft also trains and saves the new `score` head (task type SEQ_CLS). `--lora_modules_to_save`
names modules trained in full next to the adapters. The LayerNorms (`ln_1 ln_2 ln_f`) are the cheap ones worth it:
a new LayerNorm gain rescales every feature the next Linear reads, W @ diag(g), a full-rank change that no rank-r
update can express, for 2 * n_embd weights per LayerNorm.

Usage:

    model = apply_lora(model, lora_args, task_type="CAUSAL_LM")   # peft.PeftModel, base weights frozen
    ...train...
    model = finish_lora(model, merge=True)                      # plain model with the update merged in
"""

import logging

from peft import LoraConfig, PeftModel, get_peft_model

from hf_scratch_gpt.training.arguments import LoraArguments


def lora_config(lora_args: LoraArguments, task_type: str) -> LoraConfig:
    """The peft `LoraConfig` for `--lora_r`, `--lora_alpha`, `--lora_dropout`, `--lora_target_modules` and
    `--lora_modules_to_save`."""
    if lora_args.lora_r <= 0:
        raise ValueError(f"--lora_r must be a positive rank, got {lora_args.lora_r}")
    return LoraConfig(
        task_type=task_type,
        r=lora_args.lora_r,
        lora_alpha=lora_args.lora_alpha,
        lora_dropout=lora_args.lora_dropout,
        target_modules=list(lora_args.lora_target_modules),
        modules_to_save=list(lora_args.lora_modules_to_save) if lora_args.lora_modules_to_save else None,
    )


def apply_lora(model, lora_args: LoraArguments, task_type: str) -> PeftModel:
    """Wrap `model` with LoRA adapters; raises when a target module name matches nothing in the model."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [target for target in lora_args.lora_target_modules if target not in names]
    if missing:
        raise ValueError(
            f"--lora_target_modules {missing} match no module of the model; its Linear layers are named "
            f"c_attn, c_proj and c_fc (GPT-2's names)"
        )
    missing = [name for name in lora_args.lora_modules_to_save or [] if name not in names]
    if missing:
        raise ValueError(
            f"--lora_modules_to_save {missing} match no module of the model; its LayerNorms are named ln_1, ln_2 "
            f"and ln_f (GPT-2's names)"
        )
    return get_peft_model(model, lora_config(lora_args, task_type))


def finish_lora(model: PeftModel, merge: bool):
    """After training: the merged plain model (`merge`), or the PeftModel itself (saves only the adapter)."""
    return model.merge_and_unload() if merge else model


def describe_lora(lora_args: LoraArguments) -> str:
    """One line for model cards and logs, e.g. "LoRA r=16 alpha=32 on ['c_attn', 'c_proj'] + ['ln_f'], merged"."""
    saved = f" + {lora_args.lora_modules_to_save}" if lora_args.lora_modules_to_save else ""
    merged = ", merged" if lora_args.merge_adapter else ""
    return f"LoRA r={lora_args.lora_r} alpha={lora_args.lora_alpha} on {lora_args.lora_target_modules}{saved}{merged}"


def count_parameters(model) -> dict[str, int]:
    """Trainable and total parameter counts (`parameters()` yields tied weights once)."""
    parameters = list(model.parameters())
    return {
        "trainable_params": sum(p.numel() for p in parameters if p.requires_grad),
        "total_params": sum(p.numel() for p in parameters),
    }


def log_trainable_parameters(model) -> dict[str, int]:
    """`count_parameters`, also logged as "trainable parameters: N of M" (what every finetuning run reports)."""
    parameters = count_parameters(model)
    logging.getLogger(__name__).info(
        "trainable parameters: %s of %s",
        f"{parameters['trainable_params']:,}",
        f"{parameters['total_params']:,}",
    )
    return parameters
