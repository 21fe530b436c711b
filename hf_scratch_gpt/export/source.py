"""The checkpoint an export starts from: a whole causal language model, checked before its weights are loaded.

Two kinds of folder load "successfully" as a causal LM and still export the wrong thing, so they are refused with
what to do instead:

- a LoRA adapter saved without `--merge_adapter` holds only the low-rank updates (adapter_config.json and
  adapter_model.safetensors), not the model: a runtime needs the merged weights;
- a sequence classifier loads as a causal LM with its `score` head silently dropped: the export would be the
  classifier's body with an LM head it never trained.
"""

from pathlib import Path

from transformers import AutoConfig

from hf_scratch_gpt.model.checkpoint_files import check_checkpoint_files
from hf_scratch_gpt.model.gpt2 import load_causal_lm
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM

# A folder holds the full model when one of these is there (transformers' single-file and sharded names).
FULL_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_adapter_folder(source: str | Path) -> None:
    """Refuse a folder that holds a LoRA adapter and no full weights, naming how to merge it first."""
    folder = Path(source)
    if not (folder / "adapter_config.json").is_file() or any((folder / n).is_file() for n in FULL_WEIGHTS):
        return
    raise ValueError(
        f"{folder} holds a LoRA adapter (adapter_config.json, adapter weights only), not a whole model; an export "
        f"needs the adapter merged into its base. Rerun the finetuning recipe with --merge_adapter, or merge it in "
        f"Python: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), '{folder}')"
        f".merge_and_unload().save_pretrained(MERGED) with BASE the base_model_name_or_path of its "
        f"adapter_config.json; then export MERGED."
    )


def check_causal_lm_config(config) -> None:
    """Refuse a classifier checkpoint: its head has no place in a language-model runtime."""
    classifiers = [name for name in config.architectures or [] if name.endswith("ForSequenceClassification")]
    if classifiers:
        raise ValueError(
            f"this checkpoint is a sequence classifier ({classifiers[0]}): its `score` head maps the last token to "
            f"{config.num_labels} labels, while an exported language model (transformers' GPT2LMHeadModel, the "
            f"GPT-2 graph of llama.cpp and Ollama) ends in an LM head over the vocabulary; the export would drop "
            f"the head the classifier was trained with. Export a "
            f"causal language model (recipes/pretrain.py or recipes/finetune_instruct.py output) instead, and "
            f"serve a classifier with transformers (AutoModelForSequenceClassification)."
        )


def load_export_config(source: str | Path):
    """The checkpoint's config after the folder checks, without loading its weights."""
    check_adapter_folder(source)
    check_checkpoint_files(source, tokenizer=False)
    config = AutoConfig.from_pretrained(source)
    check_causal_lm_config(config)
    return config


def load_export_model(source: str | Path) -> ScratchGPTForCausalLM:
    """The checkpoint as a ScratchGPTForCausalLM in eval mode (a GPT-2 folder is converted on the way in)."""
    return load_causal_lm(source).eval()
