"""A trained causal LM made ready to answer fast: its precision (`--dtype`) and int8 layers (`--quantize`).

Batch-1 decoding on a CPU is bound by reading the weights, not by arithmetic, so fewer bytes per weight decode
faster: bfloat16 halves them, int8 quarters them (hf_scratch_gpt.model.int8). Whether a setting is worth it is
measured on a trained model by benchmarks/quantized_quality.py (held-out perplexity and exact match against
float32), and `auto` follows it:

- `--dtype auto`: bfloat16 where the hardware computes it natively (`bf16_is_fast`), else float32;
- `--quantize none` is the default; `int8` (weights and activations in int8, PyTorch's dynamic quantization, CPU
  only) is the fast CPU setting, `int8_weights` (torchao's weight-only int8, any device, the `quantize` extra)
  the small one. Both are there to ask for (benchmarks/RESULTS.md has their quality and speed).

`prepare_for_inference` never changes the model it is given: a cast or quantized model is a copy, so a recipe
can answer with it and still save (or keep training) the float32 weights.

Usage:

    model, setting = prepare_for_inference(model, dtype="auto", quantize="int8")
    print(setting.describe())   # "float32, int8 weights and activations (PyTorch dynamic)"
"""

import copy
import logging
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16")
QUANTIZATIONS = ("none", "int8", "int8_weights")
INSTALL_QUANTIZE = "pip install 'hf_scratch_gpt[quantize]'"
QUANTIZED_AS = {  # how describe() names each quantization
    "int8": ", int8 weights and activations (PyTorch dynamic)",
    "int8_weights": ", int8 weights (torchao)",
}


def bf16_is_fast() -> bool:
    """True on a GPU with bfloat16 support, or a CPU with native bfloat16 (AVX512-BF16 / AMX), where bf16
    autocast trains about twice as fast; elsewhere bf16 is emulated and slower than float32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class InferenceSetting:
    """What a model answers with: its floating-point dtype and its weight quantization."""

    dtype: str  # "float32" or "bfloat16" (auto resolved)
    quantize: str  # "none", "int8" or "int8_weights"

    def describe(self) -> str:
        """In words, for logs, all_results.json and model cards.

        >>> InferenceSetting("float32", "int8").describe()
        'float32, int8 weights and activations (PyTorch dynamic)'
        >>> InferenceSetting("bfloat16", "int8_weights").describe()
        'bfloat16, int8 weights (torchao)'
        """
        return self.dtype + QUANTIZED_AS.get(self.quantize, "")


def check_choices(dtype: str, quantize: str, dtype_flag: str = "--dtype", quantize_flag: str = "--quantize"):
    """Refuse a dtype or quantization this module does not know, listing the valid ones.

    >>> check_choices("float16", "none")
    Traceback (most recent call last):
    ...
    ValueError: --dtype float16 is not one of auto, float32, bfloat16 (float16 is slower than float32 on CPUs; use bfloat16 for half-size weights)
    """
    if dtype not in DTYPES:
        hint = " (float16 is slower than float32 on CPUs; use bfloat16 for half-size weights)"
        raise ValueError(
            f"{dtype_flag} {dtype} is not one of {', '.join(DTYPES)}" + (hint if dtype == "float16" else "")
        )
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"{quantize_flag} {quantize} is not one of {', '.join(QUANTIZATIONS)} (int8: int8 weights and "
            "activations, CPU; int8_weights: int8 weights through torchao; for 4-bit or GGUF weights export the "
            "model: docs/deploy.md)"
        )


def resolve_setting(
    dtype: str = "auto",
    quantize: str = "none",
    device: str | torch.device = "cpu",
    dtype_flag: str = "--dtype",
    quantize_flag: str = "--quantize",
) -> InferenceSetting:
    """`auto` made concrete for `device`, and a choice the machine cannot run refused with what to use instead.

    bfloat16 on a CPU without native bf16 is allowed (decoding reads half the bytes, which can outweigh the
    emulated arithmetic: measure it with benchmarks/quantized_quality.py) but logged; on a GPU without bf16 it is
    refused. int8 (dynamic) computes around its int8 matmuls in float32 and has CPU kernels only: with it `auto`
    is float32, and bfloat16 or a GPU is refused. int8_weights needs torchao.
    """
    check_choices(dtype, quantize, dtype_flag, quantize_flag)
    on_gpu = torch.device(device).type != "cpu"
    if quantize == "int8" and on_gpu:
        raise ValueError(
            f"{quantize_flag} int8 (PyTorch's dynamic int8) has CPU kernels only, and the model is on {device}; "
            f"use {quantize_flag} int8_weights (torchao's weight-only int8) on a GPU"
        )
    if quantize == "int8" and dtype == "bfloat16":
        raise ValueError(
            f"{quantize_flag} int8 computes in int8 with float32 around it, so it cannot run in bfloat16; use "
            f"{dtype_flag} float32 (or auto) with it, or {quantize_flag} int8_weights for bfloat16 activations"
        )
    if dtype == "auto":
        dtype = "bfloat16" if bf16_is_fast() and quantize != "int8" else "float32"
    elif dtype == "bfloat16" and on_gpu and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"{dtype_flag} bfloat16: the GPU {torch.cuda.get_device_name()} has no bfloat16 support; use "
            f"{dtype_flag} float32 (or {quantize_flag} int8_weights for smaller weights)"
        )
    elif dtype == "bfloat16" and not on_gpu and not bf16_is_fast():
        logger.warning(
            "--dtype bfloat16: this CPU has no native bfloat16 (AVX512-BF16 / AMX), so its bf16 arithmetic is "
            "emulated; batch-1 decoding may still be faster (half the bytes to read), larger batches slower. "
            "--dtype auto picks float32 here; benchmarks/quantized_quality.py measures both."
        )
    if quantize == "int8_weights":
        require_torchao(quantize_flag)
    return InferenceSetting(dtype, quantize)


def require_torchao(flag: str = "--quantize") -> None:
    """Raise ImportError, saying how to install it, when torchao (the `quantize` extra) is missing."""
    import importlib.util

    if importlib.util.find_spec("torchao") is None:
        raise ImportError(
            f"{flag} int8_weights needs torchao, which is not installed: {INSTALL_QUANTIZE} (or run with {flag} "
            "int8, which needs nothing more, or none)"
        )


def prepare_for_inference(
    model, dtype: str = "auto", quantize: str = "none"
) -> tuple[torch.nn.Module, InferenceSetting]:
    """`model` (a causal LM, or a peft model with a LoRA adapter) ready to answer at `dtype` with `quantize`
    weights, in eval mode, and the resolved setting.

    The given model is never changed: when anything differs from it, the result is a copy (a LoRA adapter is
    merged into that copy, since int8 weights cannot carry an adapter). Raises ValueError / ImportError for a
    choice the machine cannot run (`resolve_setting`).
    """
    setting = resolve_setting(dtype, quantize, next(model.parameters()).device)
    target = getattr(torch, setting.dtype)
    if model.dtype == target and setting.quantize == "none":
        return model.eval(), setting
    ready = copy.deepcopy(model)
    if hasattr(ready, "merge_and_unload"):  # a peft model: its adapter folded into the copy's weights
        ready = ready.merge_and_unload()
    ready = ready.to(target).eval()
    if setting.quantize == "int8":
        from hf_scratch_gpt.model.int8 import quantize_dynamic_int8

        ready = quantize_dynamic_int8(ready)
    elif setting.quantize == "int8_weights":
        from hf_scratch_gpt.model.int8 import quantize_int8_weights

        quantize_int8_weights(ready)
    logger.info("answering with %s", setting.describe())
    return ready, setting
