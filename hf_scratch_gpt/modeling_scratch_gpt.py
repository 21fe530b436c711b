"""Stage 3b of the pipeline: the GPT itself, written from scratch, as a transformers model.

The file reads bottom-up, like the model is built (after three speed helpers: `Dropout`, `decode_linear` and the
in-place KV cache):

    ScratchGPTAttention   causal multi-head self-attention (the written-out path and the fused SDPA path)
    ScratchGPTMLP         the position-wise feed-forward network
    ScratchGPTBlock       pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))
    ScratchGPTPreTrainedModel   weight init (GPT-2's scheme) and the transformers plumbing
    ScratchGPTModel       token + position embeddings, the blocks, the final LayerNorm
    ScratchGPTForCausalLM             + tied LM head: next-token logits, loss, generate()
    ScratchGPTForSequenceClassification  + `score` head on the last real token of each row

Module names are GPT-2's (`wte`, `wpe`, `h`, `ln_1`, `attn.c_attn`, `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`, `ln_f`,
`lm_head`), with plain `nn.Linear` layers (GPT-2's checkpoints store them transposed; see convert.py), so GPT-2
weights load by name and peft's `target_modules=["c_attn", "c_proj", "c_fc"]` just works.

Shapes in comments: B batch, T new tokens in this call, P tokens already in the KV cache, S = P + T keys,
C = n_embd, nh = n_head, hs = head size = C // nh, V = vocabulary size.

Usage:

    >>> import torch
    >>> from hf_scratch_gpt.configuration_scratch_gpt import ScratchGPTConfig
    >>> from hf_scratch_gpt.modeling_scratch_gpt import ScratchGPTForCausalLM
    >>> config = ScratchGPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64,
    ...                           bos_token_id=0, eos_token_id=0)
    >>> model = ScratchGPTForCausalLM(config).eval()
    >>> ids = torch.tensor([[1, 2, 3]])
    >>> model(ids, labels=ids).logits.shape
    torch.Size([1, 3, 100])
    >>> model.generate(ids, max_new_tokens=5, do_sample=False).shape
    torch.Size([1, 8])
"""

import inspect
import math
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutputWithPast,
)
from transformers.utils.deprecation import deprecate_kwarg

from .configuration_scratch_gpt import ScratchGPTConfig

# GPT-2's "gelu_new" is the tanh approximation of GELU; F.gelu(approximate="tanh") computes the same function in
# one fused kernel (transformers' "gelu_new" spells it out as eight separate tensor operations).
ACTIVATIONS = {
    "gelu_new": partial(F.gelu, approximate="tanh"),
    "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
}

# What a saved checkpoint's config.json maps each Auto class to, in the code files saved beside it.
AUTO_MAP = {
    "AutoConfig": "configuration_scratch_gpt.ScratchGPTConfig",
    "AutoModel": "modeling_scratch_gpt.ScratchGPTModel",
    "AutoModelForCausalLM": "modeling_scratch_gpt.ScratchGPTForCausalLM",
    "AutoModelForSequenceClassification": "modeling_scratch_gpt.ScratchGPTForSequenceClassification",
}


class Dropout(nn.Dropout):
    """nn.Dropout with a cheaper random source on CPU.

    torch's CPU dropout draws every keep/drop decision from its own Bernoulli sample (about 15 ns per element), a
    fifth of a bf16 training step here. This draws 64-bit random integers and cuts each into two 31-bit uniform
    numbers, kept when >= p * 2**31: the same dropout (keep with probability 1 - p, exact to 2**-31, kept values
    scaled so the expectation is unchanged) for about 1.4x less time. On other devices it is plain nn.Dropout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        bits = torch.empty((n + 1) // 2, dtype=torch.int64).random_()  # uniform in [0, 2**63)
        uniform = bits.view(torch.int32)[:n].view(x.shape) & 0x7FFFFFFF  # two uniform 31-bit numbers per draw
        threshold = round(self.p * 2**31)
        noise = (
            (uniform >= threshold).to(x.dtype).mul_(2**31 / (2**31 - threshold))
        )  # 0 or 1 / keep probability
        return x * noise


def plain_linear_weight(layer: nn.Module) -> torch.Tensor | None:
    """The weight of a plain `nn.Linear` holding an ordinary dense float tensor, else None.

    Excludes what the speed tricks below must not touch: wrappers and subclasses (peft's LoRA layers, bitsandbytes'
    quantized Linear), tensor-subclass weights (torchao) and integer or sparse weights.
    """
    if type(layer) is not nn.Linear:
        return None
    weight = layer.weight
    if (
        type(weight) not in (nn.Parameter, torch.Tensor)
        or type(weight.data) is not torch.Tensor
        or weight.layout != torch.strided
        or not weight.is_floating_point()
    ):
        return None
    return weight


def decode_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`layer(x)`; when decoding one token on CPU, the same product computed as two halves on two threads.

    Decoding multiplies a single vector by every weight matrix, which is bound by how fast the weights stream from
    memory, and the CPU BLAS (MKL in PyTorch's CPU build) computes such a matrix-vector product on one thread
    (measured here: no faster with two). Handing the two halves of the output features to `torch.bmm` as a batch
    of two runs them on two threads: on this project's 2-core CPU the weights stream 1.2-2x faster (measured per
    layer: c_fc 17 -> 21 GB/s, mlp.c_proj 14 -> 23, attn.c_proj 8 -> 12, lm_head 21 -> 30+), about 1.2x more
    tokens/s in generate(). The halves are views of the weight (in either memory order), so nothing is copied, and
    the result equals `layer(x)` up to float rounding. Everything else takes plain `layer(x)`: several rows, autograd
    recording, one thread, an odd number of outputs, a weight off the CPU or not a plain fp32 tensor, and a wrapped
    or hooked layer (peft's LoRA layers, accelerate's offload hooks, global module hooks), whose hooks must run.
    """
    weight = plain_linear_weight(layer)
    if (
        weight is None
        or x.shape[:-1].numel() != 1
        or torch.is_grad_enabled()
        or weight.device.type != "cpu"
        or weight.dtype != torch.float32  # the dtype measured
        or torch.get_num_threads() < 2
        or weight.shape[0] % 2
        or layer._forward_hooks
        or layer._forward_pre_hooks
        or "forward" in vars(layer)  # accelerate's hooks replace the instance's forward
        or nn.modules.module._global_forward_hooks
        or nn.modules.module._global_forward_pre_hooks
    ):
        return layer(x)
    out_features, in_features = weight.shape
    halves = weight.unflatten(0, (2, out_features // 2)).transpose(1, 2)  # (2, in, out/2), views
    rows = x.reshape(1, 1, in_features).expand(2, 1, in_features)  # the same input row for both halves
    if layer.bias is None:
        y = torch.bmm(rows, halves)  # (2, 1, out/2)
    else:
        y = torch.baddbmm(layer.bias.view(2, 1, out_features // 2), rows, halves)
    return y.view(*x.shape[:-1], out_features)


class InPlaceKVLayer(DynamicLayer):
    """One layer's KV cache that appends in place into spare capacity instead of re-concatenating.

    transformers' DynamicLayer grows by `torch.cat`, which copies the whole cache (and touches freshly allocated
    memory) at every decoding step; at GPT-2 sizes on CPU that was a fifth of the time per token. This layer keeps a
    buffer with room to grow (doubling, capped at `max_length`), writes the new keys/values into it, and exposes
    `keys`/`values` as views of the filled part, so everything else in transformers (get_seq_length, crop, beam
    reordering) works unchanged: an operation that replaces `keys` with a new tensor simply makes the next update
    start a new buffer. While autograd records (training with a cache), it falls back to DynamicLayer's copy, since
    writing in place into a tensor saved for backward is not allowed.
    """

    def __init__(self, max_length: int | None = None):
        super().__init__()
        self.max_length = max_length
        self.key_buffer: torch.Tensor | None = None  # (B, nh, capacity, hs)
        self.value_buffer: torch.Tensor | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if torch.is_grad_enabled() and (key_states.requires_grad or value_states.requires_grad):
            return super().update(key_states, value_states, *args, **kwargs)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        past, new = self.get_seq_length(), key_states.shape[-2]
        if not self._buffer_holds_keys() or past + new > self.key_buffer.shape[-2]:
            capacity = max(2 * (past + new), 256)
            if self.max_length is not None:
                capacity = max(min(capacity, self.max_length), past + new)
            self.key_buffer = self._new_buffer(self.keys, key_states, capacity)
            self.value_buffer = self._new_buffer(self.values, value_states, capacity)
        self.key_buffer.narrow(2, past, new).copy_(key_states)
        self.value_buffer.narrow(2, past, new).copy_(value_states)
        self.keys = self.key_buffer.narrow(2, 0, past + new)  # (B, nh, S, hs) views of the buffers, no copy
        self.values = self.value_buffer.narrow(2, 0, past + new)
        return self.keys, self.values

    def _buffer_holds_keys(self) -> bool:
        """True while `keys` is still the filled prefix of our buffer (not replaced by reorder/select/reset)."""
        buffer = self.key_buffer
        return (
            buffer is not None
            and self.keys is not None
            and self.keys.data_ptr() == buffer.data_ptr()
            and self.keys.shape[:2] == buffer.shape[:2]
            and self.keys.stride() == buffer.stride()
            and self.values.data_ptr() == self.value_buffer.data_ptr()
            # a buffer made under torch.inference_mode cannot be written outside it
            and (torch.is_inference_mode_enabled() or not buffer.is_inference())
        )

    @staticmethod
    def _new_buffer(old: torch.Tensor, new: torch.Tensor, capacity: int) -> torch.Tensor:
        B, nh, _, hs = new.shape
        buffer = torch.empty(B, nh, capacity, hs, dtype=new.dtype, device=new.device)
        if old.numel():
            buffer[..., : old.shape[-2], :] = old
        return buffer


class ScratchGPTCache(DynamicCache):
    """The KV cache ScratchGPT creates for itself: a transformers DynamicCache whose layers append in place.

    Any other transformers Cache passed in (e.g. a plain `DynamicCache()`) works too, just with DynamicLayer's
    per-step copies.
    """

    def __init__(self, max_length: int | None = None):
        super().__init__()
        # DynamicCache without a config adds one layer per model layer on first use, of this class:
        self.layer_class_to_replicate = partial(InPlaceKVLayer, max_length)


class ScratchGPTAttention(nn.Module):
    """Causal multi-head self-attention.

    Every position asks a question (query), offers a label (key) and carries content (value). A position's output is
    the average of the values of the positions it may see, weighted by how well its query matches their keys; the
    causal mask lets position i see positions 0..i only, so the model cannot peek at the tokens it must predict.
    `nh` heads do this in parallel on `hs`-dimensional slices and their outputs are concatenated and mixed by c_proj.
    """

    def __init__(self, config: ScratchGPTConfig, layer_idx: int):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.head_dim = config.n_embd // config.n_head
        self.layer_idx = layer_idx  # which slot of the KV cache belongs to this layer
        # One Linear computes query, key and value for all heads at once: C -> 3C.
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        # Marks a projection back into the residual stream for GPT-2's scaled init (see `_init_weights`).
        self.c_proj.is_residual_projection = True
        self.attn_dropout = Dropout(config.attn_pdrop)
        self.resid_dropout = Dropout(config.resid_pdrop)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_eager: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend over the cached keys plus the new ones.

        attention_mask: boolean, True where a query may attend to a key, shaped (T, S) or (B, 1, T, S); None means
        plain causal attention with no padding (the model only passes None when P == 0 or T == 1).
        Returns the output (B, T, C) and, on the eager path, the attention weights (B, nh, T, S).
        """
        B, T, C = hidden_states.shape
        # c_attn's output (B, T, 3C) holds q, k, v side by side, each split into nh heads of hs dims.
        qkv = decode_linear(self.c_attn, hidden_states).view(B, T, 3, self.n_head, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, nh, T, hs), views: no copy
        if cache is not None:
            # Append this call's keys/values to the layer's cache and get back all of them: (B, nh, S, hs).
            k, v = cache.update(k, v, self.layer_idx)

        # On CPU, SDPA's fused kernels cannot apply attention dropout and fall back to an unfused version that is
        # slower than the written-out path below (measured at T=256: 1.5x slower under bf16 autocast, equal in fp32).
        dropout_on_cpu = self.training and self.attn_dropout.p > 0 and q.device.type == "cpu"
        if use_eager or dropout_on_cpu:
            y, weights = self._eager_attention(q, k, v, attention_mask)
        else:
            # Fused kernel, same maths. With no mask it applies the causal rule itself (is_causal), which is only
            # right when queries and keys start at the same position (P == 0); for one new token (T == 1)
            # every cached key is visible, so no mask at all is needed.
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=attention_mask,
                dropout_p=self.attn_dropout.p if self.training else 0.0,
                is_causal=attention_mask is None and T > 1,
            )
            weights = None
        y = y.transpose(1, 2).reshape(B, T, C)  # re-assemble the heads side by side: (B, T, C)
        y = decode_linear(self.c_proj, y)
        # Dropout modules are skipped outside training: there they do nothing but cost a call per token.
        return (self.resid_dropout(y) if self.training else y), weights

    def _eager_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention written out: scores, causal mask, softmax, weighted sum of values."""
        T, S = q.size(-2), k.size(-2)
        # Scaled dot products q.k / sqrt(hs): the scaling keeps the scores' variance near 1 so softmax is not
        # saturated. Scaling q (T x hs numbers) is cheaper than scaling the scores (T x S) and gives the same.
        scores = (q * (1.0 / math.sqrt(self.head_dim))) @ k.transpose(-2, -1)  # (B, nh, T, S)
        if attention_mask is None:
            # Query i sits at position P + i, so it may see keys 0..P + i: a lower triangle shifted right by P.
            attention_mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
        scores = scores.masked_fill(~attention_mask, float("-inf"))  # forbidden keys get zero weight
        # Each row becomes a distribution over the visible keys (softmax accumulates in fp32 internally).
        weights = F.softmax(scores, dim=-1)  # (B, nh, T, S)
        y = self.attn_dropout(weights) @ v  # (B, nh, T, S) @ (B, nh, S, hs) -> (B, nh, T, hs)
        return y, weights


class ScratchGPTMLP(nn.Module):
    """Position-wise feed-forward network: widen (C -> n_inner), non-linearity, project back (n_inner -> C)."""

    def __init__(self, config: ScratchGPTConfig):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, inner)
        self.c_proj = nn.Linear(inner, config.n_embd)
        self.c_proj.is_residual_projection = True
        self.act = ACTIVATIONS[config.activation_function]
        self.dropout = Dropout(config.resid_pdrop)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.act(decode_linear(self.c_fc, hidden_states))  # (B, T, n_inner)
        hidden_states = decode_linear(self.c_proj, hidden_states)  # (B, T, C)
        return self.dropout(hidden_states) if self.training else hidden_states


class ScratchGPTBlock(GradientCheckpointingLayer):
    """Pre-norm transformer block (GPT-2): LayerNorm before each sub-layer, whose output is added to the residual.

    Keeping the residual stream un-normalised gives gradients a clean path through all the blocks, which is why
    GPT-2 moved the LayerNorms in front of attention and MLP (and added `ln_f` at the end).
    """

    def __init__(self, config: ScratchGPTConfig, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = ScratchGPTAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = ScratchGPTMLP(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_eager: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # hidden_states must stay positional: gradient checkpointing replays the block from its positional inputs.
        attn_output, attn_weights = self.attn(self.ln_1(hidden_states), attention_mask, cache, use_eager)
        hidden_states = hidden_states + attn_output  # (B, T, C)
        hidden_states = hidden_states + self.mlp(self.ln_2(hidden_states))  # (B, T, C)
        return hidden_states, attn_weights


class ScratchGPTPreTrainedModel(PreTrainedModel):
    """Shared plumbing: config class, capabilities and GPT-2's weight initialisation."""

    config_class = ScratchGPTConfig
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = True
    _no_split_modules = ["ScratchGPTBlock"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        # transformers calls this only on modules that own parameters (Linear, Embedding, LayerNorm), so the
        # residual-projection rule is applied here, at the Linear, not at its parent attention/MLP module.
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            if getattr(module, "is_residual_projection", False):
                # GPT-2 paper: scale the init of layers that write into the residual stream by 1/sqrt(N), N = the
                # number of residual additions (2 per block), so the stream's variance does not grow with depth.
                std = std / math.sqrt(2 * self.config.n_layer)
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        # transformers guesses this from the source; ScratchGPTModel reads config._attn_implementation at every
        # forward, so `model.set_attn_implementation("eager" | "sdpa")` takes effect immediately.
        return True

    def post_init(self) -> None:
        super().post_init()
        self._lay_out_widening_weights()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' loader, with a clearer error when the checkpoint's shapes do not fit the config."""
        try:
            loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
                raise
            raise RuntimeError(_shape_mismatch_message(cls, pretrained_model_name_or_path, kwargs)) from error
        # The loader replaces every parameter with a freshly loaded (row-major) tensor. With output_loading_info=True
        # it returns (model, info).
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model._lay_out_widening_weights()
        return loaded

    def resize_token_embeddings(self, *args, **kwargs) -> nn.Embedding:
        embeddings = super().resize_token_embeddings(*args, **kwargs)
        self._lay_out_widening_weights()
        return embeddings

    def _apply(self, fn, recurse: bool = True):
        # .to(device/dtype), .cuda(), .half(), ...: keep the decoding layout on the CPU only (see below).
        result = super()._apply(fn, recurse)
        self._lay_out_widening_weights()
        return result

    def _widening_weights(self) -> list[torch.Tensor]:
        return [
            weight
            for module in self.modules()
            if (weight := plain_linear_weight(module)) is not None
            and module.out_features > module.in_features
        ]

    @torch.no_grad()
    def _lay_out_widening_weights(self, column_major: bool = True) -> None:
        """On the CPU, store each widening Linear's weight (out > in: c_attn, c_fc, the tied lm_head) column-major.

        Decoding multiplies one vector per step by every weight matrix, so its speed is how fast the weights stream
        from memory (about 56 MB a token for the benchmark model, more than the CPU caches hold). CPU matrix-vector
        kernels stream a matrix faster when its longer side is the contiguous one (measured on this project's 2-core
        CPU, plain / split in two by `decode_linear`: c_fc 17 / 21 GB/s column-major vs 8 / 16 row-major, the
        (V, C) lm_head 21 / 30+ vs 8 / 17). nn.Linear keeps `in` contiguous, which suits the narrowing layers
        (mlp.c_proj) but not the widening ones, so those get the same (out, in) tensor with `out` contiguous:
        `weight.t().contiguous().t()`. Shapes, values and saved checkpoints are unchanged and tied weights stay one
        Parameter; CPU training speed changes within ~2% (measured). What does change is the memory order of these
        parameters (and of their state_dict entries, which are views of them): code that needs contiguous tensors,
        such as `safetensors.torch.save_file(model.state_dict())` or `parameters_to_vector`, needs `.contiguous()`
        first (`save_pretrained` handles it). Off the CPU (after `.to("cuda")`), or with column_major=False, the
        weights go back to row-major.
        """
        for weight in self._widening_weights():
            wanted = column_major and weight.device.type == "cpu"
            if wanted and weight.is_contiguous():
                weight.data = weight.data.t().contiguous().t()
            elif not wanted and not weight.is_contiguous():
                weight.data = weight.data.contiguous()

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save weights (safetensors), config and, when registered for remote code, the code files.

        `register_for_auto_class` writes only AutoConfig and this class into `auto_map`; the other entries are added
        here so that `trust_remote_code=True` loads every head (e.g. a classifier from a pretrained LM) from the
        saved folder.
        """
        if self._auto_class is not None:
            self.config.auto_map = {**AUTO_MAP, **(getattr(self.config, "auto_map", None) or {})}
        if kwargs.get("state_dict") is not None:
            kwargs["state_dict"] = _contiguous_state_dict(kwargs["state_dict"])
        self._lay_out_widening_weights(column_major=False)  # transformers' tied-weight check needs row-major
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self._lay_out_widening_weights()


def _contiguous_state_dict(state_dict: dict) -> dict:
    """A state_dict whose column-major entries are contiguous copies; tied entries (one tensor) share one copy."""
    copies = {}
    result = {}
    for name, tensor in state_dict.items():
        if isinstance(tensor, torch.Tensor) and not tensor.is_contiguous():
            key = (tensor.data_ptr(), tuple(tensor.shape), tensor.stride())
            if key not in copies:
                copies[key] = tensor.contiguous()
            tensor = copies[key]
        result[name] = tensor
    return result


def _shape_mismatch_message(cls: type, path, kwargs: dict) -> str:
    """Name the weights whose checkpoint shape differs from what the config builds (local safetensors folders)."""
    message = (
        f"The checkpoint at {path} does not fit {cls.__name__} built from this config: some weights have other "
        "shapes (typically vocab_size, n_embd, n_inner or n_positions differ). Load it with its own config (do not "
        "override those fields), or pass ignore_mismatched_sizes=True to re-initialise the mismatched weights "
        "(e.g. a classification head with another num_labels)."
    )
    folder = Path(str(path))
    if not folder.is_dir():
        return message
    try:
        config = kwargs.get("config")
        if not isinstance(config, PreTrainedConfig):
            # As from_pretrained does: kwargs naming config attributes override the saved config.
            config, _ = cls.config_class.from_pretrained(folder, return_unused_kwargs=True, **kwargs)
        with torch.device("meta"):
            expected = {name: tuple(t.shape) for name, t in cls(config).state_dict().items()}
        found = {}
        for file in sorted(folder.glob("*.safetensors")):
            with safe_open(file, framework="pt") as weights:
                names = weights.keys()  # a safe_open handle is not iterable itself
                found.update({name: tuple(weights.get_slice(name).get_shape()) for name in names})
    except (OSError, ValueError):
        return message
    details = [
        f"{name}: checkpoint {found[name]} vs config {shape}"
        for name, shape in expected.items()
        if name in found and found[name] != shape
    ]
    return message + (" Mismatched: " + "; ".join(details) if details else "")


class ScratchGPTModel(ScratchGPTPreTrainedModel):
    """The GPT trunk: embeddings -> n_layer blocks -> final LayerNorm. Returns hidden states (B, T, C)."""

    def __init__(self, config: ScratchGPTConfig):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings (V, C)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)  # learned positions (n_positions, C)
        self.drop = Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([ScratchGPTBlock(config, layer_idx=i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.wte = new_embeddings

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast | tuple:
        """input_ids (B, T) or inputs_embeds (B, T, C); attention_mask (B, P + T) with 1 = real token, 0 = padding;
        cache: a transformers Cache holding P earlier positions (filled in place and returned when use_cache)."""
        output_attentions = (
            output_attentions if output_attentions is not None else self.config.output_attentions
        )
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        # A cache only pays off when decoding; a training step would fill one for nothing.
        use_cache = use_cache if use_cache is not None else (self.config.use_cache and not self.training)

        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids (B, T) or inputs_embeds (B, T, C).")
        if input_ids is not None:
            self._check_token_ids(input_ids)
            inputs_embeds = self.wte(input_ids)  # (B, T, C)
        B, T = inputs_embeds.shape[:2]

        if use_cache and cache is None:
            cache = ScratchGPTCache(max_length=self.config.n_positions)
        past = cache.get_seq_length() if cache is not None else 0  # P
        total = past + T  # S
        if total > self.config.n_positions:
            raise ValueError(
                f"Sequence length {total} (cached {past} + new {T}) exceeds n_positions={self.config.n_positions}, "
                f"the longest sequence this model has position embeddings for. Truncate the input "
                f"(e.g. tokenizer(..., truncation=True, max_length={self.config.n_positions})) or lower max_new_tokens."
            )

        padding_mask = None  # (B, S) bool, only when some position really is padding
        if attention_mask is not None:
            if attention_mask.shape != (B, total):
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)} but must be (batch, cached + new "
                    f"tokens) = ({B}, {total})."
                )
            if not bool(attention_mask.all()):
                padding_mask = attention_mask.bool()

        if position_ids is None:
            if padding_mask is not None:
                # Count real tokens only, so a left-padded row gets the same positions as the row alone.
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]  # (B, T)
            else:
                position_ids = torch.arange(past, total, device=inputs_embeds.device).unsqueeze(0)  # (1, T)

        hidden_states = inputs_embeds + self.wpe(position_ids)  # (B, T, C)
        if self.training:
            hidden_states = self.drop(hidden_states)
        mask = self._attention_mask(padding_mask, past, T, hidden_states.device)
        use_eager = bool(output_attentions) or self.config._attn_implementation == "eager"

        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for block in self.h:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            hidden_states, attn_weights = block(
                hidden_states, attention_mask=mask, cache=cache, use_eager=use_eager
            )
            if output_attentions:
                all_attentions += (attn_weights,)
        hidden_states = self.ln_f(hidden_states)
        if output_hidden_states:
            # As in transformers' GPT-2: the input of every block (the first is the embeddings), then the final
            # normalised output, n_layer + 1 tensors in all.
            all_hidden_states += (hidden_states,)

        output = BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            cache=cache if use_cache else None,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )
        return output if return_dict else output.to_tuple()

    def _check_token_ids(self, input_ids: torch.Tensor) -> None:
        vocab_size = self.wte.num_embeddings
        if input_ids.numel() == 0:
            return
        low, high = torch.aminmax(input_ids)
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"Token ids must be in [0, {vocab_size - 1}] (vocab_size={vocab_size}), got ids from {int(low)} to "
                f"{int(high)}. Is the tokenizer the one this model was trained with? If you added tokens, call "
                f"model.resize_token_embeddings(len(tokenizer))."
            )

    @staticmethod
    def _attention_mask(
        padding_mask: torch.Tensor | None, past: int, T: int, device: torch.device
    ) -> torch.Tensor | None:
        """Boolean mask of allowed (query, key) pairs, or None when plain causal attention needs no tensor.

        None is returned for the two common cases, so they cost nothing: a whole sequence without padding (SDPA's
        is_causal) and one new token per step while decoding without padding (it may see every cached key).
        """
        S = past + T
        if padding_mask is None and (past == 0 or T == 1):
            return None
        # Query i sits at position P + i and may see keys 0..P + i.
        causal = torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=past)  # (T, S)
        if padding_mask is None:
            return causal
        mask = causal & padding_mask[:, None, None, :]  # (B, 1, T, S): causal and the key is a real token
        # A padding query may see no real key at all; an all-masked row makes softmax divide 0 by 0 (NaN), and the
        # NaN would reach real tokens through 0 * NaN. Letting every query see itself avoids the empty row and
        # changes nothing for real tokens, which already see themselves.
        diagonal = torch.arange(T, device=device)[:, None] + past == torch.arange(S, device=device)  # (T, S)
        return mask | diagonal


class ScratchGPTForCausalLM(ScratchGPTPreTrainedModel, GenerationMixin):
    """GPT with a language-modelling head whose weights are the token embeddings (tied, as in GPT-2).

    Works with `generate()` for every decoding strategy (the KV cache is a transformers Cache). Labels equal to
    -100 are ignored by the loss; labels are shifted inside, so pass `labels=input_ids`.
    """

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: ScratchGPTConfig):
        super().__init__(config)
        self.transformer = ScratchGPTModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # False tells generate() not to create a plain DynamicCache: forward then creates a ScratchGPTCache, whose
        # in-place appends make decoding faster, and generate() passes it back at every step.
        return False

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        """logits_to_keep: compute logits only for the last N positions (0 = all), or for the given indices;
        generate() passes 1, so decoding never pays for the (T, V) logits of the prompt."""
        outputs = self.transformer(
            input_ids,
            cache=cache,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state  # (B, T, C)
        if isinstance(logits_to_keep, int):
            hidden_states = hidden_states[:, -logits_to_keep:]  # -0: keeps everything
        else:
            hidden_states = hidden_states[:, logits_to_keep]
        logits = decode_linear(self.lm_head, hidden_states)  # (B, T_kept, V)

        loss = None
        if labels is not None:
            # Shifts labels by one (position t predicts token t + 1) and ignores -100.
            loss = self.loss_function(logits, labels, vocab_size=logits.shape[-1], **kwargs)

        output = CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


# generate() inspects forward's signature at every step for models registered as remote code; a precomputed
# signature turns that into a lookup (about 0.15 ms a token, measured).
ScratchGPTForCausalLM.forward.__signature__ = inspect.signature(ScratchGPTForCausalLM.forward)


class ScratchGPTForSequenceClassification(ScratchGPTPreTrainedModel):
    """GPT with a classification head (`score`) on the hidden state of each row's last real token.

    A causal model has summarised the whole text only at its last token, so that is the one classified. It is found
    from the attention mask (the rightmost 1), which works with right and left padding alike; without a mask, from
    `config.pad_token_id`. `config.problem_type` / `num_labels` / `id2label` choose the loss as in transformers.
    """

    def __init__(self, config: ScratchGPTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = ScratchGPTModel(config)
        self.score = nn.Linear(config.n_embd, config.num_labels, bias=False)
        self.post_init()

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast | tuple:
        outputs = self.transformer(
            input_ids,
            cache=cache,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state  # (B, T, C)
        B, T = hidden_states.shape[:2]
        last = self._last_token_index(input_ids, attention_mask, B, T)  # (B,)
        pooled = hidden_states[torch.arange(B, device=hidden_states.device), last]  # (B, C)
        pooled_logits = self.score(pooled)  # (B, num_labels)

        loss = None
        if labels is not None:
            loss = self.loss_function(
                labels=labels, pooled_logits=pooled_logits, config=self.config, **kwargs
            )

        output = SequenceClassifierOutputWithPast(
            loss=loss,
            logits=pooled_logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def _last_token_index(
        self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, B: int, T: int
    ) -> torch.Tensor:
        """Index (B,) of each row's last real token."""
        pad_token_id = self.config.pad_token_id
        padded = attention_mask is None or not bool(attention_mask.all())
        if B > 1 and pad_token_id is None and padded:
            raise ValueError(
                f"Got a batch of {B} sequences that may be padded, but config.pad_token_id is None, so the model "
                "cannot tell padding from text. Set model.config.pad_token_id = tokenizer.pad_token_id (for a GPT-2 "
                "style tokenizer, the <|endoftext|> id) and pass the attention_mask."
            )
        positions = torch.arange(T, device=self.score.weight.device)  # (T,)
        if attention_mask is not None:
            real = attention_mask[:, -T:].to(positions.device).bool()  # (B, T)
        elif input_ids is not None and pad_token_id is not None:
            real = input_ids.to(positions.device) != pad_token_id
        else:
            return torch.full((B,), T - 1, device=positions.device)
        # Rightmost real token: right padding -> length - 1, left padding -> T - 1.
        return torch.where(real, positions, -1).amax(dim=-1).clamp(min=0)


__all__ = [
    "ScratchGPTPreTrainedModel",
    "ScratchGPTModel",
    "ScratchGPTForCausalLM",
    "ScratchGPTForSequenceClassification",
]
