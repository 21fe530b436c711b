"""The hyper-parameters of the GPT, as a transformers config.

The field names are GPT-2's (`n_embd`, `n_layer`, `n_head`, `n_positions`, ...), so a GPT-2 config maps onto this
one field by field, and an `attribute_map` lets generic transformers code read the standard names
(`hidden_size`, `num_attention_heads`, `num_hidden_layers`, `max_position_embeddings`). The defaults give GPT-2
small (124M parameters).

Usage:

    >>> from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
    >>> config = ScratchGPTConfig(n_layer=6, n_head=6, n_embd=384, vocab_size=8192, n_positions=256)
    >>> config.hidden_size, config.num_hidden_layers
    (384, 6)
    >>> ScratchGPTConfig(n_embd=100, n_head=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: n_embd (100) must be divisible by n_head (3): ...
"""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# The MLP activations the model implements (see `ScratchGPTMLP`). GPT-2 uses "gelu_new", the tanh approximation
# of GELU; "gelu_pytorch_tanh" is the same function under its other transformers name.
SUPPORTED_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu", "relu")


@strict
class ScratchGPTConfig(PreTrainedConfig):
    """Configuration of a ScratchGPT model (GPT-2's architecture and field names).

    Args:
        vocab_size: number of token ids (rows of `wte`).
        n_positions: longest sequence the model accepts (rows of the learned position table `wpe`).
        n_embd: width of the residual stream.
        n_layer: number of transformer blocks.
        n_head: attention heads per block; must divide `n_embd`.
        n_inner: hidden width of the MLP; `None` means 4 * n_embd.
        activation_function: MLP activation, one of `SUPPORTED_ACTIVATIONS`.
        resid_pdrop, embd_pdrop, attn_pdrop: dropout on the residual branches, the embeddings and the
            attention weights.
        layer_norm_epsilon: epsilon of every LayerNorm.
        initializer_range: std of the normal init (residual projections get std / sqrt(2 * n_layer)).
        tie_word_embeddings: share `lm_head.weight` with `wte.weight` (GPT-2 does).
        use_cache: return a KV cache from forward by default (used by `generate()`).
        bos_token_id, eos_token_id, pad_token_id: special token ids (GPT-2: 50256, 50256, None).
    """

    model_type = "scratch_gpt"
    attribute_map = {
        "hidden_size": "n_embd",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
        "max_position_embeddings": "n_positions",
    }

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float | int = 0.1
    embd_pdrop: float | int = 0.1
    attn_pdrop: float | int = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        # Checked here (not in a `validate_*` hook) so that a bad value raises a plain ValueError at construction.
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): each head gets "
                f"n_embd / n_head dimensions. Pick e.g. n_head={_nearest_divisor(self.n_embd, self.n_head)}."
            )
        if self.n_inner is not None and self.n_inner <= 0:
            raise ValueError(f"n_inner must be a positive integer or None (= 4 * n_embd), got {self.n_inner}")
        if self.activation_function not in SUPPORTED_ACTIVATIONS:
            raise ValueError(
                f"activation_function {self.activation_function!r} is not supported; use one of {SUPPORTED_ACTIVATIONS}"
            )
        for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"{name} is a dropout probability and must be in [0, 1), got {getattr(self, name)}"
                )
        if self.layer_norm_epsilon <= 0:
            raise ValueError(f"layer_norm_epsilon must be positive, got {self.layer_norm_epsilon}")
        if self.initializer_range < 0:
            raise ValueError(f"initializer_range must be >= 0, got {self.initializer_range}")
        super().__post_init__(**kwargs)


def _nearest_divisor(n: int, near: int) -> int:
    """The divisor of `n` closest to `near`, to suggest a valid head count in the error message."""
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - near), d))


__all__ = ["ScratchGPTConfig"]
