"""int8 weights for every Linear layer of a model, through torchao (the optional `quantize` extra).

torchao's weight-only int8 (`Int8WeightOnlyConfig`: one scale per output row, activations stay in the model's
dtype) rather than its dynamic int8 activations (`Int8DynamicActivationInt8WeightConfig`): on this project's
2-core AMD EPYC the dynamic variant decoded several times slower than float32 in eager mode, weight-only about
as fast (benchmarks/RESULTS.md). The LM head counts as a Linear, so a tied head gets its own int8 copy while the
token embedding stays in float: lookups read one row per token, a matmul reads them all.

Imported only by hf_scratch_gpt.model.inference, after it checked that torchao is installed.
"""

import torch
from torchao.quantization import Int8WeightOnlyConfig, quantize_


def quantize_int8_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Replace the weights of `model`'s Linear layers by int8 ones in place; return `model`."""
    quantize_(model, Int8WeightOnlyConfig())
    return model
