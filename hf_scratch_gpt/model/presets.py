"""Named model sizes, and `--config_overrides` strings, for models built from scratch.

The GPT-2 presets have the shapes of OpenAI's four checkpoints (and GPT-2's dropout of 0.1). The small ones are
sized for CPU training and have no dropout, because short CPU runs underfit rather than overfit (add
`--config_overrides resid_pdrop=0.1,embd_pdrop=0.1,attn_pdrop=0.1` for long runs on little data): `tiny` for
tests, `mini` for the default pretraining run and the 110-second Shakespeare benchmark (three narrow layers
beat deeper or wider models at that budget on 2 cores), `small` for finetuning benchmarks, `baby` for nanoGPT's
Shakespeare "baby GPT" shape.

Usage:

    >>> from hf_scratch_gpt.model.presets import parse_config_overrides, preset_config_kwargs
    >>> parse_config_overrides("n_embd=256,n_layer=4,resid_pdrop=0.0,n_inner=None")
    {'n_embd': 256, 'n_layer': 4, 'resid_pdrop': 0.0, 'n_inner': None}
    >>> preset_config_kwargs("tiny", "n_layer=3")["n_layer"]
    3
"""

import ast
import dataclasses

from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig

NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
MODEL_PRESETS: dict[str, dict] = {
    "tiny": {"n_layer": 2, "n_head": 2, "n_embd": 64, "n_positions": 128, **NO_DROPOUT},
    "mini": {"n_layer": 3, "n_head": 4, "n_embd": 128, "n_positions": 256, **NO_DROPOUT},
    "small": {"n_layer": 4, "n_head": 4, "n_embd": 256, "n_positions": 512, **NO_DROPOUT},
    "baby": {"n_layer": 6, "n_head": 6, "n_embd": 384, "n_positions": 256, **NO_DROPOUT},
    "gpt2": {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024},
    "gpt2-medium": {"n_layer": 24, "n_head": 16, "n_embd": 1024, "n_positions": 1024},
    "gpt2-large": {"n_layer": 36, "n_head": 20, "n_embd": 1280, "n_positions": 1024},
    "gpt2-xl": {"n_layer": 48, "n_head": 25, "n_embd": 1600, "n_positions": 1024},
}


def config_field_names() -> list[str]:
    """The fields a `--config_overrides` string may set."""
    return sorted(
        field.name for field in dataclasses.fields(ScratchGPTConfig) if not field.name.startswith("_")
    )


def parse_config_overrides(overrides: str | None) -> dict:
    """Parse `"key=value,key=value"` (run_clm's format) into a dict with Python-typed values.

    Values are read as Python literals where they are one (`4`, `0.1`, `True`, `None`, also `true`/`false`/`none`),
    otherwise kept as strings (`activation_function=gelu`). Unknown keys are an error that lists the valid ones.
    """
    if not overrides:
        return {}
    known = config_field_names()
    parsed = {}
    for item in overrides.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise ValueError(
                f"--config_overrides item {item!r} is not of the form key=value (e.g. 'n_layer=4')"
            )
        if key not in known:
            raise ValueError(f"--config_overrides: unknown config field {key!r}; valid fields are {known}")
        parsed[key] = _literal({"true": "True", "false": "False", "none": "None"}.get(raw.lower(), raw))
    return parsed


def _literal(raw: str):
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def preset_config_kwargs(model_size: str, config_overrides: str | None = None) -> dict:
    """Config keyword arguments for the named size with `config_overrides` applied on top."""
    if model_size not in MODEL_PRESETS:
        raise ValueError(f"--model_size {model_size!r} is not a preset; choose one of {list(MODEL_PRESETS)}")
    return {**MODEL_PRESETS[model_size], **parse_config_overrides(config_overrides)}
