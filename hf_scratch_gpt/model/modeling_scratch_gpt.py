"""Attention and the GPT itself, written from scratch, as a transformers model.

The file reads top to bottom, the way the model is built:

    eager_attention_forward   attention written out: scores, scaling, causal mask, softmax, dropout, weighted sum
    ScratchGPTAttention       causal multi-head self-attention: q, k, v projections, KV cache, the attention kernel
    ScratchGPTMLP             the position-wise feed-forward network
    ScratchGPTBlock           pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))
    ScratchGPTPreTrainedModel weight init (GPT-2's scheme) and the transformers capabilities
    ScratchGPTModel           token + position embeddings, the blocks, the final LayerNorm
    ScratchGPTForCausalLM             + tied LM head: next-token logits, loss, generate()
    ScratchGPTForSequenceClassification  + `score` head on the last real token of each row

Module names are GPT-2's (`wte`, `wpe`, `h`, `ln_1`, `attn.c_attn`, `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`, `ln_f`,
`lm_head`), with plain `nn.Linear` layers (GPT-2's checkpoints store them transposed; see convert.py), so GPT-2
weights load by name and peft's `target_modules=["c_attn", "c_proj", "c_fc"]` just works.

What transformers provides, the model takes from it rather than re-implementing it: the attention kernels
(`ALL_ATTENTION_FUNCTIONS`: "sdpa", "flex_attention", "flash_attention_2", the paged kernels of continuous batching;
"eager" is the function below), the masks (`create_causal_mask`, built for whichever kernel is in use), the KV
caches (`DynamicCache`, `StaticCache`, the paged cache) and the recording of hidden states and attention weights
(`capture_outputs`).

Shapes in comments: B batch, T new tokens in this call, S keys (cached + new), C = n_embd, nh = n_head,
hs = head size = C // nh, V = vocabulary size.

Usage:

    >>> import torch
    >>> from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
    >>> from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
    >>> config = ScratchGPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64,
    ...                           bos_token_id=0, eos_token_id=0)
    >>> model = ScratchGPTForCausalLM(config).eval()
    >>> ids = torch.tensor([[1, 2, 3]])
    >>> model(ids, labels=ids).logits.shape
    torch.Size([1, 3, 100])
    >>> model.generate(ids, max_new_tokens=5, do_sample=False).shape
    torch.Size([1, 8])
"""

import json
import math
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutputWithPast,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, slice_logits_to_keep
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

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


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out, the way the fused kernels compute it.

    query (B, nh, T, hs), key and value (B, nh, S, hs); attention_mask: (B, 1, T, S) added to the scores, 0 where a
    query may see a key and a large negative number where it may not (`create_causal_mask` builds it: causal, and
    padding keys hidden). Returns the output (B, T, nh, hs) and the attention weights (B, nh, T, S).
    """
    # How well each query matches each key: dot products, scaled by 1/sqrt(hs) so the scores' variance stays near 1
    # whatever the head size (unscaled, softmax would saturate and its gradients vanish).
    scores = torch.matmul(query, key.transpose(-2, -1)) * scaling  # (B, nh, T, S)
    if attention_mask is not None:
        # The causal rule: query i may only see keys 0..i (and no padding), so the model cannot peek at the
        # tokens it must predict. Forbidden scores become very negative, so softmax gives them weight 0.
        scores = scores + attention_mask
    # Each row becomes a probability distribution over the visible keys, computed in at least fp32 for stability
    # (half-precision scores are upcast; float64 ones are not cut down to fp32, where the mask's float64 minimum
    # would become -inf and a fully masked padding row NaN).
    softmax_dtype = torch.promote_types(scores.dtype, torch.float32)
    weights = F.softmax(scores, dim=-1, dtype=softmax_dtype).to(value.dtype)  # (B, nh, T, S)
    weights = F.dropout(weights, p=dropout, training=module.training)
    # Each query's output is the weighted average of the values it attends to.
    output = torch.matmul(weights, value)  # (B, nh, T, S) @ (B, nh, S, hs) -> (B, nh, T, hs)
    return output.transpose(1, 2), weights  # (B, T, nh, hs)


class ScratchGPTAttention(nn.Module):
    """Causal multi-head self-attention.

    Every position asks a question (query), offers a label (key) and carries content (value). A position's output is
    the average of the values of the positions it may see, weighted by how well its query matches their keys.
    `nh` heads do this in parallel on `hs`-dimensional slices; their outputs are concatenated and mixed by c_proj.
    """

    is_causal = True  # read by transformers' attention kernels (sdpa, flash)

    def __init__(self, config: ScratchGPTConfig, layer_idx: int):
        super().__init__()
        self.config = config  # the kernel in use is config._attn_implementation, switchable at run time
        self.n_head = config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.scaling = self.head_dim**-0.5
        self.layer_idx = layer_idx  # which slot of the KV cache belongs to this layer
        # One Linear computes query, key and value for all heads at once: C -> 3C (one matmul instead of three).
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        # Marks a projection back into the residual stream for GPT-2's scaled init (see `_init_weights`).
        self.c_proj.is_residual_projection = True
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states (B, T, C) -> output (B, T, C) and the attention weights (B, nh, T, S), or None from the
        kernels that never materialise them."""
        B, T, C = hidden_states.shape
        # c_attn's output (B, T, 3C) holds q, k, v side by side, each split into nh heads of hs dims.
        qkv = self.c_attn(hidden_states).view(B, T, 3, self.n_head, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, nh, T, hs), views: no copy
        if cache is not None:
            # Store this call's keys/values in the layer's cache and get back all of them: (B, nh, S, hs).
            key, value = cache.update(key, value, self.layer_idx, kwargs=kwargs)

        # The kernel named by config._attn_implementation: "eager" is the function above (the only one that returns
        # attention weights); "sdpa", "flex_attention", "flash_attention_2", "paged|..." come from transformers.
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        output, weights = attention(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.attn_dropout.p if self.training else 0.0,
            **kwargs,
        )
        output = output.reshape(B, T, C)  # the heads side by side again: (B, T, nh, hs) -> (B, T, C)
        return self.resid_dropout(self.c_proj(output)), weights


class ScratchGPTMLP(nn.Module):
    """Position-wise feed-forward network: widen (C -> n_inner), non-linearity, project back (n_inner -> C)."""

    def __init__(self, config: ScratchGPTConfig):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, inner)
        self.c_proj = nn.Linear(inner, config.n_embd)
        self.c_proj.is_residual_projection = True
        self.act = ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.act(self.c_fc(hidden_states))  # (B, T, n_inner)
        return self.dropout(self.c_proj(hidden_states))  # (B, T, C)


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
        *,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """hidden_states (B, T, C) -> (B, T, C).

        hidden_states stays positional: gradient checkpointing replays the block from its positional inputs. cache is
        keyword-only: GradientCheckpointingLayer looks for it under the name `cache` (see ScratchGPTModel.forward).
        """
        attn_output, _ = self.attn(self.ln_1(hidden_states), attention_mask, cache=cache, **kwargs)
        hidden_states = hidden_states + attn_output  # (B, T, C)
        return hidden_states + self.mlp(self.ln_2(hidden_states))  # (B, T, C)


class ScratchGPTPreTrainedModel(PreTrainedModel):
    """Shared plumbing: config class, capabilities and GPT-2's weight initialisation."""

    config_class = ScratchGPTConfig
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = True
    _no_split_modules = ["ScratchGPTBlock"]
    # The attention goes through transformers' kernel interface (ALL_ATTENTION_FUNCTIONS), so every kernel works.
    _supports_attention_backend = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _can_compile_fullgraph = True  # a static-cache decoding step compiles with fullgraph=True (tested)
    # What `output_hidden_states` / `output_attentions` return, recorded by hooks (transformers' capture_outputs):
    # the input of the first block, then every block's output (the last replaced by ln_f's output), and every
    # attention module's weights.
    _can_record_outputs = {
        "hidden_states": ScratchGPTBlock,
        "attentions": OutputRecorder(ScratchGPTAttention, index=1),
    }

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
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' loader, with clearer errors for a damaged weights file and for shapes that do not fit."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except SafetensorError:  # "incomplete metadata, file not fully covered", but not which file
            for file in sorted(Path(str(pretrained_model_name_or_path)).glob("*.safetensors")):
                check_safetensors_file(file)  # raises ValueError naming the damaged file
            raise
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
                raise
            raise RuntimeError(_shape_mismatch_message(cls, pretrained_model_name_or_path, kwargs)) from error

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save weights (safetensors), config and, when registered for remote code, the code files.

        `register_for_auto_class` writes only AutoConfig and this class into `auto_map`; the other entries are added
        here so that `trust_remote_code=True` loads every head (e.g. a classifier from a pretrained LM) from the
        saved folder.
        """
        if self._auto_class is not None:
            self.config.auto_map = {**AUTO_MAP, **(getattr(self.config, "auto_map", None) or {})}
        return super().save_pretrained(save_directory, *args, **kwargs)


class ScratchGPTModel(ScratchGPTPreTrainedModel):
    """The GPT trunk: embeddings -> n_layer blocks -> final LayerNorm. Returns hidden states (B, T, C)."""

    def __init__(self, config: ScratchGPTConfig):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings (V, C)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)  # learned positions (n_positions, C)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([ScratchGPTBlock(config, layer_idx=i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.wte = new_embeddings

    @capture_outputs
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        """input_ids (B, T) or inputs_embeds (B, T, C); attention_mask (B, S) with 1 = real token, 0 = padding (or a
        ready 4D mask); cache: a transformers Cache holding the earlier positions, filled and returned when
        use_cache; position_ids (B, T), by default counted over the real tokens of attention_mask."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids (B, T) or inputs_embeds (B, T, C).")
        if input_ids is not None:
            check_token_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.wte(input_ids)  # (B, T, C)
        B, T = inputs_embeds.shape[:2]
        check_attention_mask(attention_mask, B, T, has_cache=cache is not None)

        # A cache only pays off when decoding; a training step would fill one for nothing.
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        if position_ids is None:
            if attention_mask is not None and attention_mask.ndim == 2:
                # Count real tokens only, so a left-padded row gets the positions it has alone (no padding: 0..S-1).
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]  # (B, T)
            else:
                past = cache.get_seq_length() if cache is not None else 0
                position_ids = (torch.arange(T, device=inputs_embeds.device) + past).unsqueeze(0)  # (1, T)
        check_positions(position_ids, self.config.n_positions)

        hidden_states = self.drop(inputs_embeds + self.wpe(position_ids))  # (B, T, C)
        # The mask each attention kernel wants (or None where the kernel applies the causal rule itself).
        mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=position_ids,
        )
        for block in self.h:
            # The cache goes by keyword. When a training step checkpoints the blocks, the backward pass runs each
            # block's forward a second time, and a cache it received would get this step's keys/values appended
            # twice. GradientCheckpointingLayer prevents that by dropping a `cache=` keyword (with a warning); a
            # cache passed by position would slip past it. (GPT-2 keeps its cache out of checkpointed blocks too.)
            hidden_states = block(hidden_states, mask, cache=cache, position_ids=position_ids, **kwargs)
        hidden_states = self.ln_f(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, cache=cache if use_cache else None)


class ScratchGPTForCausalLM(ScratchGPTPreTrainedModel, GenerationMixin):
    """GPT with a language-modelling head whose weights are the token embeddings (tied, as in GPT-2).

    Works with `generate()` for every decoding strategy and cache (dynamic, static, paged for continuous batching).
    Labels equal to -100 are ignored by the loss; labels are shifted inside, so pass `labels=input_ids`.
    """

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: ScratchGPTConfig):
        super().__init__(config)
        self.transformer = ScratchGPTModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    @can_return_tuple
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
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """logits_to_keep: compute logits only for the last N positions (0 = all), or for the given indices;
        generate() passes 1, so decoding never pays for the (T, V) logits of the prompt."""
        outputs = self.transformer(
            input_ids,
            cache=cache,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)  # (B, T_kept, C)
        logits = self.lm_head(hidden_states)  # (B, T_kept, V)

        loss = None
        if labels is not None:
            # Shifts labels by one (position t predicts token t + 1) and ignores -100.
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


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

    @can_return_tuple
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
        **kwargs,
    ) -> SequenceClassifierOutputWithPast:
        outputs = self.transformer(
            input_ids,
            cache=cache,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
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
        return SequenceClassifierOutputWithPast(
            loss=loss,
            logits=pooled_logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _last_token_index(
        self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, B: int, T: int
    ) -> torch.Tensor:
        """Index (B,) of each row's last real token."""
        pad_token_id = self.config.pad_token_id
        device = self.score.weight.device
        positions = torch.arange(T, device=device)  # (T,)
        if attention_mask is not None and attention_mask.ndim == 2:
            real = attention_mask[:, -T:].to(device).bool()  # (B, T)
        elif input_ids is not None and pad_token_id is not None:
            real = input_ids.to(device) != pad_token_id
        elif B > 1:
            raise ValueError(
                f"Got a batch of {B} sequences without an attention_mask, and config.pad_token_id is None, so the "
                "model cannot tell padding from text. Pass the attention_mask, or set model.config.pad_token_id = "
                "tokenizer.pad_token_id (for a GPT-2 style tokenizer, the <|endoftext|> id)."
            )
        else:
            return torch.full((B,), T - 1, device=device)
        # Rightmost real token: right padding -> length - 1, left padding -> T - 1.
        return torch.where(real, positions, -1).amax(dim=-1).clamp(min=0)


# ---------------------------------------------------------------- input checks and error messages
#
# The checks that read tensor values run in eager mode only: under torch.compile they would break the graph (the
# compiled model still fails on such input, in the embedding lookup, with PyTorch's own message).


def check_token_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    if torch.compiler.is_compiling() or input_ids.numel() == 0:
        return
    low, high = torch.aminmax(input_ids)
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"Token ids must be in [0, {vocab_size - 1}] (vocab_size={vocab_size}), got ids from {int(low)} to "
            f"{int(high)}. Is the tokenizer the one this model was trained with? If you added tokens, call "
            f"model.resize_token_embeddings(len(tokenizer))."
        )


def check_positions(position_ids: torch.Tensor, n_positions: int) -> None:
    if torch.compiler.is_compiling() or position_ids.numel() == 0:
        return
    last = int(position_ids.max())
    if last >= n_positions:
        raise ValueError(
            f"Sequence length {last + 1} (cached + new tokens) exceeds n_positions={n_positions}, the longest "
            f"sequence this model has position embeddings for. Truncate the input (e.g. tokenizer(..., "
            f"truncation=True, max_length={n_positions})) or lower max_new_tokens."
        )


def check_attention_mask(attention_mask: torch.Tensor | None, B: int, T: int, has_cache: bool) -> None:
    """Shape checks only (Python ints, free under torch.compile)."""
    if attention_mask is None or attention_mask.ndim != 2:
        return  # no mask, or a ready 4D mask that create_causal_mask passes through
    rows, keys = attention_mask.shape
    if rows != B or keys < T or (not has_cache and keys != T):
        expected = f"({B}, cached + {T} new tokens)" if has_cache else f"({B}, {T})"
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but must be (batch, cached + new tokens) = "
            f"{expected}: one 1/0 entry per token, 0 for padding."
        )


MAX_SAFETENSORS_HEADER = 100_000_000  # bytes: the safetensors library refuses longer headers


def check_safetensors_file(path: Path) -> None:
    """Raise ValueError naming `path` when it is not a whole safetensors file (cut short, or not safetensors).

    The layout: 8 bytes giving the header's length N, N bytes of JSON mapping each tensor to its [start, end)
    byte range in the data, then the data, which ends exactly where the last range does.
    """
    size = path.stat().st_size
    fix = "copy it again from where it was saved, or save the model again; with no whole copy, train it again"
    with path.open("rb") as file:
        header_length = int.from_bytes(file.read(8), "little")
        header = file.read(header_length) if 8 + header_length <= size else None
    if header is None and size >= 8 and header_length <= MAX_SAFETENSORS_HEADER:
        raise ValueError(
            f"{path} is damaged (truncated): its header alone needs {8 + header_length:,} bytes, found {size:,}; "
            f"{fix}"
        )
    try:
        tensors = [entry for name, entry in json.loads(header).items() if name != "__metadata__"]
        expected = 8 + header_length + max((entry["data_offsets"][1] for entry in tensors), default=0)
    except (ValueError, AttributeError, TypeError, KeyError, IndexError):  # not JSON, or not this layout
        raise ValueError(f"{path} is damaged: it does not start with a safetensors header; {fix}") from None
    if size != expected:
        how = "truncated" if size < expected else "extra bytes at the end"
        raise ValueError(f"{path} is damaged ({how}): expected {expected:,} bytes, found {size:,}; {fix}")


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


__all__ = [
    "ScratchGPTPreTrainedModel",
    "ScratchGPTModel",
    "ScratchGPTForCausalLM",
    "ScratchGPTForSequenceClassification",
]
