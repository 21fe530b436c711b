"""hf_scratch_gpt: a GPT written from scratch that is a first-class Hugging Face citizen.

Importing the package registers the model with transformers' Auto classes, so after `import hf_scratch_gpt`
`AutoConfig`, `AutoModel`, `AutoModelForCausalLM` and `AutoModelForSequenceClassification` load ScratchGPT
checkpoints; and every checkpoint saved from here carries an `auto_map` plus the code files, so it also loads where
this package is not installed:

    >>> from transformers import AutoModelForCausalLM
    >>> model = AutoModelForCausalLM.from_pretrained("path/to/checkpoint", trust_remote_code=True)  # doctest: +SKIP

This file stays light on purpose (config and model only): tokenizer, training and app modules are imported from
their own files.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
)

from .configuration_scratch_gpt import ScratchGPTConfig
from .modeling_scratch_gpt import (
    ScratchGPTForCausalLM,
    ScratchGPTForSequenceClassification,
    ScratchGPTModel,
    ScratchGPTPreTrainedModel,
)

# In-process registration: model_type "scratch_gpt" -> our classes (exist_ok: re-importing must not fail).
AutoConfig.register(ScratchGPTConfig.model_type, ScratchGPTConfig, exist_ok=True)
for _auto_class, _model_class in (
    (AutoModel, ScratchGPTModel),
    (AutoModelForCausalLM, ScratchGPTForCausalLM),
    (AutoModelForSequenceClassification, ScratchGPTForSequenceClassification),
):
    _auto_class.register(ScratchGPTConfig, _model_class, exist_ok=True)
    # Remote-code registration: save_pretrained copies the code files and writes config.json's auto_map.
    _model_class.register_for_auto_class(_auto_class.__name__)
ScratchGPTConfig.register_for_auto_class("AutoConfig")

__all__ = [
    "ScratchGPTConfig",
    "ScratchGPTPreTrainedModel",
    "ScratchGPTModel",
    "ScratchGPTForCausalLM",
    "ScratchGPTForSequenceClassification",
]
