"""hf_scratch_gpt: a GPT written from scratch that is a first-class Hugging Face citizen.

The package follows the pipeline, one folder a stage; a folder only imports the ones above it in this list:

    scratch_tokenizer/   (its own package, torch-free) stage 1: byte-level BPE, its HF tokenizer, the CLI
    model/       stages 2-3: attention and the GPT as a transformers model; sizes; GPT-2 weights in and out
    data/        stage 4: datasets in, training pairs out (packed blocks, labels, chat turns, preference pairs)
    training/    stages 5-6: arguments, the Trainer, defaults chosen from the base, LoRA, DPO, the run lifecycle
    evaluation/  stage 7: classification, instruction and preference metrics, lm-evaluation-harness tasks
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

import importlib
import importlib.machinery
import importlib.util
import sys
import types
import warnings

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


# Modules of the flat layout (before the stage folders) and where they live now. `import hf_scratch_gpt.bpe` and
# `from hf_scratch_gpt.bpe import train_bpe` keep working, with a warning that names the new place.
MOVED_MODULES = {
    "bpe": "scratch_tokenizer.bpe",
    "hf_tokenizer": "scratch_tokenizer.hf_tokenizer",
    "default_corpus": "scratch_tokenizer.default_corpus",
    "text_files": "scratch_tokenizer.text_files",
    "train_tokenizer": "scratch_tokenizer.train",
    "configuration_scratch_gpt": "hf_scratch_gpt.model.configuration_scratch_gpt",
    "modeling_scratch_gpt": "hf_scratch_gpt.model.modeling_scratch_gpt",
    "presets": "hf_scratch_gpt.model.presets",
    "lm_data": "hf_scratch_gpt.data.lm",
    "classify_data": "hf_scratch_gpt.data.classify",
    "instruct_data": "hf_scratch_gpt.data.instruct",
    "instruct_tasks": "hf_scratch_gpt.data.instruct_tasks",
    "preference_data": "hf_scratch_gpt.data.preference",
    "recipe_args": "hf_scratch_gpt.training.arguments",
    "finetune_defaults": "hf_scratch_gpt.training.defaults",
    "lm_metrics": "hf_scratch_gpt.training.lm_metrics",
    "lora": "hf_scratch_gpt.training.lora",
    "preference_training": "hf_scratch_gpt.training.preference_trainer",
    "run_folder": "hf_scratch_gpt.training.run",
    "reporting": "hf_scratch_gpt.training.reporting",
    "classify_eval": "hf_scratch_gpt.evaluation.classification",
    "instruct_eval": "hf_scratch_gpt.evaluation.instruction",
    "preference_metrics": "hf_scratch_gpt.evaluation.preference",
    "metrics": "hf_scratch_gpt.evaluation.metrics",
    "lm_eval_tasks": "hf_scratch_gpt.evaluation.lm_eval_tasks",
}


def moved_attribute(old_module: str, new_module: str, name: str):
    """`name` of `old_module`, taken from `new_module` where it lives now, with a FutureWarning naming the place."""
    if name.startswith(
        "__"
    ):  # the import machinery probing (__path__, __file__, ...), not a user's attribute
        raise AttributeError(name)
    value = getattr(importlib.import_module(new_module), name)  # AttributeError names the new module
    warnings.warn(f"{old_module}.{name} moved to {new_module}.{name}", FutureWarning, stacklevel=3)
    return value


class MovedModule(types.ModuleType):
    """An old import path: each attribute comes from the module's new place, with a FutureWarning naming it."""

    def __init__(self, old_name: str, new_name: str) -> None:
        super().__init__(old_name, f"Moved to {new_name}.")
        self._new_name = new_name
        self.__spec__ = importlib.machinery.ModuleSpec(old_name, loader=self)

    def get_code(self, _name: str):
        """`python -m <old path>` (runpy asks the spec's loader for the code) runs the module at its new place."""
        spec = importlib.util.find_spec(self._new_name)
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            spec = importlib.util.find_spec(f"{self._new_name}.__main__")
        return spec.loader.get_code(spec.name)

    def __getattr__(self, name: str):
        return moved_attribute(self.__name__, self._new_name, name)


for _old, _new in MOVED_MODULES.items():
    sys.modules.setdefault(f"{__name__}.{_old}", MovedModule(f"{__name__}.{_old}", _new))
