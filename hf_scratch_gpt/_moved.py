"""The module paths of the flat layout (before the stage folders), kept working: `import hf_scratch_gpt.bpe`,
`from hf_scratch_gpt.bpe import train_bpe` and `python -m hf_scratch_gpt.train_tokenizer` reach the module at its
new place, with a FutureWarning that names it. No import hook: each old path is a small module object put in
`sys.modules` once, when the package is imported.
"""

import importlib
import importlib.machinery
import importlib.util
import sys
import types
import warnings

# Old module (under hf_scratch_gpt) -> where it lives now.
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
# The flat layout's `data` and `training` modules are packages now; their old names are forwarded by the
# packages' own `__getattr__` (see hf_scratch_gpt/data/__init__.py and hf_scratch_gpt/training/__init__.py).


def moved_attribute(old_module: str, new_module: str, name: str):
    """`name` of `old_module`, taken from `new_module` where it lives now, with a FutureWarning naming the place."""
    if name.startswith(
        "__"
    ):  # the import machinery probing (__path__, __file__, ...), not a user's attribute
        raise AttributeError(name)
    value = getattr(importlib.import_module(new_module), name)  # AttributeError names the new module
    warnings.warn(f"{old_module}.{name} moved to {new_module}.{name}", FutureWarning, stacklevel=3)
    return value


class MovedLoader:
    """What `python -m <old path>` runs: the module (or package `__main__`) at its new place."""

    def __init__(self, new_name: str) -> None:
        self.new_name = new_name

    def get_code(self, old_name: str):
        spec = importlib.util.find_spec(self.new_name)
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            spec = importlib.util.find_spec(f"{self.new_name}.__main__")
        warnings.warn(
            f"python -m {old_name} moved: run python -m {self.new_name}", FutureWarning, stacklevel=2
        )
        return spec.loader.get_code(spec.name)


class MovedModule(types.ModuleType):
    """An old import path: each attribute comes from the module's new place."""

    def __init__(self, old_name: str, new_name: str) -> None:
        super().__init__(old_name, f"Moved to {new_name}.")
        self._new_name = new_name
        self.__spec__ = importlib.machinery.ModuleSpec(old_name, MovedLoader(new_name), origin=new_name)

    def __getattr__(self, name: str):
        value = moved_attribute(self.__name__, self._new_name, name)
        setattr(self, name, value)  # warned once; later lookups find it here
        return value

    def __repr__(self) -> str:
        return f"<module {self.__name__!r}, moved to {self._new_name!r}>"


def install(package: types.ModuleType) -> None:
    """Put each old path in `sys.modules` and on the package, so `import` and attribute access both find it."""
    for old, new in MOVED_MODULES.items():
        module = sys.modules.setdefault(
            f"{package.__name__}.{old}", MovedModule(f"{package.__name__}.{old}", new)
        )
        setattr(package, old, module)
