"""hf_scratch_gpt: a GPT written from scratch that is a first-class Hugging Face citizen.

After `import hf_scratch_gpt`, `AutoConfig`, `AutoModel`, `AutoModelForCausalLM` and
`AutoModelForSequenceClassification` load ScratchGPT checkpoints; and every checkpoint saved from here carries an
`auto_map` plus the code files, so it also loads where this package is not installed:

    >>> from transformers import AutoModelForCausalLM
    >>> model = AutoModelForCausalLM.from_pretrained("path/to/checkpoint", trust_remote_code=True)  # doctest: +SKIP

The package is light to import: `import hf_scratch_gpt.bpe` or the tokenizer CLI never load torch (3 s of the
CLI's 5 s used to go there). The model classes load on first use (`from hf_scratch_gpt import
ScratchGPTForCausalLM`, PEP 562), and the Auto registration happens as soon as transformers' Auto modules or our
config / model modules are imported, whichever comes first (see `_RegisterWhenImported`).
"""

import importlib.abc
import sys

_CONFIG_MODULE = f"{__name__}.configuration_scratch_gpt"
_MODELING_MODULE = f"{__name__}.modeling_scratch_gpt"
_AUTO_CONFIG_MODULE = "transformers.models.auto.configuration_auto"
_AUTO_MODELING_MODULE = "transformers.models.auto.modeling_auto"
# The transformers Auto class each of our model classes registers with.
_AUTO_CLASS_OF = {
    "ScratchGPTModel": "AutoModel",
    "ScratchGPTForCausalLM": "AutoModelForCausalLM",
    "ScratchGPTForSequenceClassification": "AutoModelForSequenceClassification",
}
_MODEL_NAMES = ("ScratchGPTPreTrainedModel", *_AUTO_CLASS_OF)

__all__ = ["ScratchGPTConfig", *_MODEL_NAMES]


def __getattr__(name: str):
    """PEP 562: `from hf_scratch_gpt import ScratchGPTForCausalLM` imports the model (and torch) only then."""
    if name == "ScratchGPTConfig":
        from .configuration_scratch_gpt import ScratchGPTConfig

        return ScratchGPTConfig
    if name in _MODEL_NAMES:
        from . import modeling_scratch_gpt

        return getattr(modeling_scratch_gpt, name)
    # AttributeError (not ImportError) so that `from hf_scratch_gpt import bpe` falls back to the submodule.
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_config() -> None:
    """model_type "scratch_gpt" -> ScratchGPTConfig in AutoConfig; `auto_map` for remote code."""
    from transformers import AutoConfig

    from .configuration_scratch_gpt import ScratchGPTConfig

    # exist_ok: registering again (a second finder trigger, a reloaded package) is fine
    AutoConfig.register(ScratchGPTConfig.model_type, ScratchGPTConfig, exist_ok=True)
    ScratchGPTConfig.register_for_auto_class("AutoConfig")


def _register_models() -> None:
    """ScratchGPTConfig -> our classes in the Auto model classes; remote code: `save_pretrained` copies the code
    files and writes config.json's auto_map."""
    import transformers

    from . import modeling_scratch_gpt
    from .configuration_scratch_gpt import ScratchGPTConfig

    for model_name, auto_name in _AUTO_CLASS_OF.items():
        model_class = getattr(modeling_scratch_gpt, model_name)
        getattr(transformers, auto_name).register(ScratchGPTConfig, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_name)


class _RegisterWhenImported(importlib.abc.MetaPathFinder):
    """Runs the registrations once both sides can be imported, without importing torch ahead of need.

    Why a finder: registering needs our config and model classes, and those import torch; the package cannot
    import them up front (that is what made the tokenizer CLI slow), and a registration triggered from our own
    classes alone would miss `import hf_scratch_gpt; AutoModel.from_pretrained(ckpt)`, where nothing of ours is
    imported. So the registration waits for whichever comes first: transformers' Auto modules (configuration_auto
    for AutoConfig, modeling_auto for the model classes) or our config / model modules.

    Why "no import in progress": transformers imports modeling_auto halfway through its own modules
    (`transformers.modeling_layers` does `from .models.auto import AutoModel` at its top, e.g. while GPT-2 is
    being imported), and our model imports `modeling_layers`; importing our model at that moment fails on the
    half-initialized module. So the finder wraps the loader of every transformers and hf_scratch_gpt module
    imported while a registration is pending, counts how many are executing, and registers when the count is back
    to zero: then every module in `sys.modules` is complete. It leaves `sys.meta_path` once both are done.
    (Imports are assumed to happen on one thread at a time, as at start-up; a registration is idempotent.)
    """

    def __init__(self) -> None:
        self.executing = 0  # how many watched modules are executing right now
        self.config_done = self.models_done = False

    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] not in ("transformers", __name__):
            return None
        for finder in sys.meta_path:  # the finders after us find the module as usual
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _CountingLoader(spec.loader, self)
                return spec
        return None

    def register_if_ready(self) -> None:
        if self.executing:
            return
        modules = sys.modules
        self.executing += 1  # our own imports below must not re-enter
        try:
            if not self.config_done and (_AUTO_CONFIG_MODULE in modules or _CONFIG_MODULE in modules):
                self.config_done = True
                _register_config()
            if not self.models_done and (_AUTO_MODELING_MODULE in modules or _MODELING_MODULE in modules):
                self.models_done = True
                _register_models()
        finally:
            self.executing -= 1
            if self.config_done and self.models_done and self in sys.meta_path:
                sys.meta_path.remove(self)


class _CountingLoader(importlib.abc.Loader):
    """The module's own loader, plus the finder's count of executing modules and a registration check after."""

    def __init__(self, loader, finder: _RegisterWhenImported) -> None:
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.finder.executing += 1
        try:
            self.loader.exec_module(module)
        finally:
            self.finder.executing -= 1
        self.finder.register_if_ready()

    def __getattr__(self, name):  # get_source, get_resource_reader, ...: the original loader's
        return getattr(self.loader, name)


_finder = _RegisterWhenImported()
sys.meta_path.insert(0, _finder)
_finder.register_if_ready()  # transformers' Auto modules may already be imported
