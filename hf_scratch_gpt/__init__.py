"""hf_scratch_gpt: a GPT written from scratch that is a first-class Hugging Face citizen.

The package follows the pipeline, one folder a stage; a folder only imports the ones above it in this list:

    scratch_tokenizer/   (its own package, torch-free) stage 1: byte-level BPE, its HF tokenizer, the CLI
    model/       stages 2-3: attention and the GPT as a transformers model; sizes; GPT-2 weights in and out
    data/        stage 4: datasets in, training pairs out (packed blocks, labels, chat turns, preference pairs)
    training/    stages 5-6: arguments, the Trainer, defaults chosen from the base, LoRA, DPO, the run lifecycle
    evaluation/  stage 7: classification, instruction and preference metrics, lm-evaluation-harness tasks
    export/      stage 8: files other runtimes run (GGUF for llama.cpp and Ollama, with a Modelfile)
    convert      the `python -m hf_scratch_gpt.convert` command

`import hf_scratch_gpt` registers ScratchGPT with transformers' Auto classes (config and model classes), and every
checkpoint saved from here carries an `auto_map` plus the code files, so it also loads where this package is not
installed:

    >>> import hf_scratch_gpt
    >>> from transformers import AutoConfig
    >>> type(AutoConfig.for_model("scratch_gpt", n_layer=2)).__name__
    'ScratchGPTConfig'
    >>> from transformers import AutoModelForCausalLM
    >>> model = AutoModelForCausalLM.from_pretrained("path/to/checkpoint", trust_remote_code=True)  # doctest: +SKIP
"""

import sys

import transformers

from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import (
    ScratchGPTForCausalLM,
    ScratchGPTForSequenceClassification,
    ScratchGPTModel,
    ScratchGPTPreTrainedModel,
)

__all__ = [
    "ScratchGPTConfig",
    "ScratchGPTForCausalLM",
    "ScratchGPTForSequenceClassification",
    "ScratchGPTModel",
    "ScratchGPTPreTrainedModel",
]

# Each model class and the transformers Auto class that loads it.
AUTO_CLASSES = {
    ScratchGPTModel: "AutoModel",
    ScratchGPTForCausalLM: "AutoModelForCausalLM",
    ScratchGPTForSequenceClassification: "AutoModelForSequenceClassification",
}

# exist_ok: importing the package again (a reloaded module, a second interpreter state) registers again.
transformers.AutoConfig.register(ScratchGPTConfig.model_type, ScratchGPTConfig, exist_ok=True)
# register_for_auto_class makes save_pretrained copy the code files and write config.json's `auto_map`.
ScratchGPTConfig.register_for_auto_class("AutoConfig")
for _model_class, _auto_name in AUTO_CLASSES.items():
    getattr(transformers, _auto_name).register(ScratchGPTConfig, _model_class, exist_ok=True)
    _model_class.register_for_auto_class(_auto_name)

# The flat layout's module paths (`hf_scratch_gpt.bpe`, ...) keep working, with a FutureWarning naming the new place.
from hf_scratch_gpt import _moved  # noqa: E402

_moved.install(sys.modules[__name__])
