"""int8 Linear layers, two ways: `int8` (weights and activations, fast on a CPU) and `int8_weights` (torchao).

- `int8`, PyTorch's dynamic quantization (`quantize_dynamic`, in PyTorch itself): each Linear's weights are stored
  as int8 with one scale per output row, and at every call its input is quantized to int8 too (one scale for the
  tensor, computed from that input: "dynamic"), so the matmul runs in int8 arithmetic (fbgemm / oneDNN kernels)
  and reads a quarter of float32's bytes. CPU only.
- `int8_weights`, torchao's weight-only int8 (`Int8WeightOnlyConfig`, the optional `quantize` extra): the same
  int8 weights with one scale per row, dequantized on the fly, activations in the model's dtype. Any device.

Why both: torchao is the maintained library and PyTorch's own dynamic quantization is deprecated in its favour,
but torchao has no fast eager kernels for a CPU: on the CPUs measured both its weight-only int8 and its dynamic
variant (`Int8DynamicActivationInt8WeightConfig`) decoded slower than float32, where PyTorch's dynamic int8 decoded
faster (benchmarks/RESULTS.md, "Quantized inference"). So the fast CPU path is PyTorch's, and `int8_weights` is for smaller weights in memory, or a GPU. PyTorch announces that its quantized
tensors will go in a future release (pytorch/pytorch#184982); tests/test_inference.py checks the layers it makes,
so a PyTorch without them fails there.

The LM head counts as a Linear, so a tied head gets its own int8 copy while the token embedding stays in float:
a lookup reads one row per token, the head's matmul reads them all.

Imported only by hf_scratch_gpt.model.inference, which checks the device and, for `int8_weights`, torchao first.
"""

import warnings

import torch


def quantize_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with every Linear layer replaced by a dynamically quantized int8 one (per-row weight scales), in
    place; return it. The model must be float32 on the CPU."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # "torch.ao.quantization is deprecated": its replacement (torchao) is the slow path above; a test checks
        # that this one still quantizes, so a PyTorch that drops it fails there, not here silently.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao\.quantization")
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        return quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )


def quantize_int8_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Replace the weights of `model`'s Linear layers by torchao int8 ones in place; return `model`."""
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantize_(model, Int8WeightOnlyConfig())
    return model
