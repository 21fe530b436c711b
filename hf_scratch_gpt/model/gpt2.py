"""GPT-2 interop, both ways: load OpenAI/HF GPT-2 weights into ScratchGPT, and export ScratchGPT as a GPT-2.

The two models share every module name and shape; the one difference is that transformers' GPT-2 stores its
projections (`c_attn`, `c_proj`, `c_fc`) as `Conv1D` layers whose weight is (in_features, out_features), the
transpose of an `nn.Linear` weight (out_features, in_features). So the conversion is a rename-free copy that
transposes those four matrices per block.

Usage (Python):

    >>> from hf_scratch_gpt.model.gpt2 import from_gpt2, to_gpt2
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100))
    >>> model = from_gpt2(gpt2)  # also a folder or a hub id: from_gpt2("openai-community/gpt2")
    >>> type(model).__name__, type(to_gpt2(model)).__name__  # to_gpt2: runs anywhere GPT-2 runs
    ('ScratchGPTForCausalLM', 'GPT2LMHeadModel')

The command line (`python -m hf_scratch_gpt.convert`) wraps these in a run folder with the tokenizer.
"""

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from hf_scratch_gpt.model.checkpoint_files import check_checkpoint_files
from hf_scratch_gpt.model.configuration_scratch_gpt import SUPPORTED_ACTIVATIONS, ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM

# Fields with the same name and meaning in GPT2Config and ScratchGPTConfig.
SHARED_CONFIG_FIELDS = (
    "vocab_size",
    "n_positions",
    "n_embd",
    "n_layer",
    "n_head",
    "n_inner",
    "activation_function",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "layer_norm_epsilon",
    "initializer_range",
    "tie_word_embeddings",
    "use_cache",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

# The parameters GPT-2 keeps as Conv1D, i.e. transposed relative to nn.Linear.
CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def _transpose_conv1d(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Conv1D (in, out) <-> nn.Linear (out, in): the same transpose serves both directions."""
    return {
        name: tensor.t().contiguous() if name.endswith(CONV1D_SUFFIXES) else tensor
        for name, tensor in state_dict.items()
    }


def _check_gpt2_config(config: GPT2Config) -> None:
    """Refuse GPT-2 variants whose maths ScratchGPT does not implement, instead of converting them wrongly."""
    problems = []
    if not config.scale_attn_weights:
        problems.append("scale_attn_weights=False (ScratchGPT always divides scores by sqrt(head_dim))")
    if config.scale_attn_by_inverse_layer_idx:
        problems.append("scale_attn_by_inverse_layer_idx=True")
    if config.add_cross_attention:
        problems.append("add_cross_attention=True (ScratchGPT is decoder-only)")
    if config.activation_function not in SUPPORTED_ACTIVATIONS:
        problems.append(
            f"activation_function={config.activation_function!r} (supported: {SUPPORTED_ACTIVATIONS})"
        )
    if problems:
        raise ValueError("Cannot convert this GPT-2 to ScratchGPT: " + "; ".join(problems))


def from_gpt2(model_or_path: GPT2LMHeadModel | str | Path, **from_pretrained_kwargs) -> ScratchGPTForCausalLM:
    """A ScratchGPTForCausalLM holding GPT-2's weights.

    model_or_path: a transformers `GPT2LMHeadModel`, or a folder / hub id it loads from (extra keyword arguments
    go to `GPT2LMHeadModel.from_pretrained`). The result computes the same logits (to float rounding).
    """
    if not isinstance(model_or_path, GPT2LMHeadModel):
        check_checkpoint_files(model_or_path, tokenizer=False)  # GPT-2's loader names no damaged file
    gpt2 = (
        model_or_path
        if isinstance(model_or_path, GPT2LMHeadModel)
        else GPT2LMHeadModel.from_pretrained(model_or_path, **from_pretrained_kwargs)
    )
    _check_gpt2_config(gpt2.config)
    config = ScratchGPTConfig(**{field: getattr(gpt2.config, field) for field in SHARED_CONFIG_FIELDS})
    model = ScratchGPTForCausalLM(config)
    state_dict = _transpose_conv1d(gpt2.state_dict())
    # strict: every one of our parameters must come from GPT-2 (old checkpoints' attn.bias mask buffers are ignored).
    ours = model.state_dict()
    model.load_state_dict({name: state_dict[name] for name in ours if name in state_dict}, strict=True)
    model.generation_config = gpt2.generation_config
    return model.to(gpt2.dtype).train(gpt2.training)


def load_causal_lm(name_or_path: str | Path, trust_remote_code: bool = False, **from_pretrained_kwargs):
    """Our checkpoint as it was saved, or a GPT-2 checkpoint converted to ScratchGPT: what finetuning starts from.

    Extra keyword arguments (config overrides, `attn_implementation`) go to `from_pretrained`. A damaged weights
    file is an error naming it, whatever the model type.
    """
    check_checkpoint_files(name_or_path, tokenizer=False)
    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    if config.model_type == "gpt2":
        return from_gpt2(name_or_path, **from_pretrained_kwargs)
    return AutoModelForCausalLM.from_pretrained(
        name_or_path, trust_remote_code=trust_remote_code, **from_pretrained_kwargs
    )


def to_gpt2(model: ScratchGPTForCausalLM | str | Path) -> GPT2LMHeadModel:
    """A transformers `GPT2LMHeadModel` with this model's weights (a model, or a folder it loads from)."""
    if not isinstance(model, ScratchGPTForCausalLM):
        model = ScratchGPTForCausalLM.from_pretrained(model)
    fields = {field: getattr(model.config, field) for field in SHARED_CONFIG_FIELDS}
    # transformers 5 no longer writes `n_ctx`, but tools that read GPT-2 folders without transformers (llama.cpp's
    # GGUF converter) require it; GPT-2 has always kept it equal to n_positions.
    config = GPT2Config(**fields, n_ctx=model.config.n_positions)
    gpt2 = GPT2LMHeadModel(config)
    state_dict = _transpose_conv1d(model.state_dict())
    gpt2.load_state_dict({name: state_dict[name] for name in gpt2.state_dict()}, strict=True)
    gpt2.generation_config = model.generation_config
    return gpt2.to(model.dtype).train(model.training)
