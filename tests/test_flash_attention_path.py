"""The "flash_attention_2" path on CPU: our model through transformers' flash glue, with the CUDA kernel replaced.

flash-attn's kernels run on NVIDIA GPUs only (`benchmarks/gpu_check.py` checks the real ones there). What this file
checks on any machine is everything around the kernel that the model is responsible for: the (B, T, nh, hs) layout
the glue transposes to, `is_causal`, the 2-D padding mask that `create_causal_mask` hands to flash kernels, the
un-padding of left/right-padded rows into variable-length sequences, and the cache during decoding. The kernel is
replaced by a plain reference written here from flash-attn's documented semantics (causal mask aligned to the
bottom-right corner, variable-length rows given by cumulative lengths). transformers' GPT-2 runs the same test as a
control: if the reference or the glue were wrong, GPT-2 would fail too.
"""

import pytest
import torch
import transformers.modeling_flash_attention_utils as flash_utils
from transformers import GPT2Config, GPT2LMHeadModel

from hf_scratch_gpt.model.gpt2 import from_gpt2

VOCAB = 97


def reference_attention(q, k, v, softmax_scale, causal):
    """One sequence, flash-attn layout: q (T, nh, hs), k and v (S, nh, hs) -> (T, nh, hs)."""
    T, S = q.shape[0], k.shape[0]
    scores = torch.einsum("thd,shd->hts", q, k) * softmax_scale  # (nh, T, S)
    if causal:  # flash-attn >= 2.1: query i sees keys up to i + (S - T), the bottom-right-aligned causal mask
        allowed = torch.arange(S)[None, :] <= torch.arange(T)[:, None] + (S - T)
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("hts,shd->thd", scores.softmax(-1), v)


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False):
    """Batched flash-attn API: (B, T, nh, hs)."""
    assert dropout_p == 0.0
    scale = softmax_scale if softmax_scale is not None else q.shape[-1] ** -0.5
    return torch.stack([reference_attention(*row, scale, causal) for row in zip(q, k, v, strict=True)])


def flash_attn_varlen_func(
    q,
    k,
    v,
    cu_seqlens_q,
    cu_seqlens_k,
    max_seqlen_q=None,
    max_seqlen_k=None,
    dropout_p=0.0,
    softmax_scale=None,
    causal=False,
):
    """Variable-length API: rows packed along dim 0, row i is cu_seqlens[i]:cu_seqlens[i + 1]."""
    assert dropout_p == 0.0
    scale = softmax_scale if softmax_scale is not None else q.shape[-1] ** -0.5
    rows = []
    for i in range(len(cu_seqlens_q) - 1):
        qs, qe, ks, ke = cu_seqlens_q[i], cu_seqlens_q[i + 1], cu_seqlens_k[i], cu_seqlens_k[i + 1]
        rows.append(reference_attention(q[qs:qe], k[ks:ke], v[ks:ke], scale, causal))
    return torch.cat(rows)


@pytest.fixture
def reference_flash_kernel(monkeypatch):
    """Make transformers' flash glue call the reference kernels above instead of importing flash-attn."""
    functions = (
        flash_attn_func,
        flash_attn_varlen_func,
        None,
        flash_utils._pad_input,
        flash_utils._unpad_input,
    )
    processing = (flash_utils._lazy_define_process_function(flash_attn_varlen_func), dict)
    monkeypatch.setattr(
        flash_utils, "lazy_import_flash_attention", lambda *args, **kwargs: (functions, processing)
    )


def models(dtype: torch.dtype = torch.float64) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2,
        n_head=4,
        n_embd=32,
        vocab_size=VOCAB,
        n_positions=64,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    gpt2 = GPT2LMHeadModel(config).eval()
    return {"gpt2": gpt2.to(dtype), "ours": from_gpt2(gpt2).eval().to(dtype)}


def use(model: torch.nn.Module, implementation: str) -> torch.nn.Module:
    # Set on the config directly: set_attn_implementation("flash_attention_2") would (rightly) refuse on a machine
    # without flash-attn and a GPU. Both models read the kernel name from the config at every call.
    model.config._attn_implementation = implementation
    return model


# float64 for the GPT-2 control: with fp32 inputs the glue looks for an nn.Linear inside the attention module to
# pick a half dtype, and GPT-2's attention has Conv1D layers only (StopIteration). Ours also runs in fp32.
CASES = [("gpt2", torch.float64), ("ours", torch.float64), ("ours", torch.float32)]


@pytest.mark.parametrize("name, dtype", CASES)
def test_flash_path_equals_eager_with_left_and_right_padding(reference_flash_kernel, name, dtype):
    model = models(dtype)[name]
    ids = torch.randint(1, VOCAB, (3, 11), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding
    mask[1, -3:] = 0  # right padding
    real = mask.bool()
    with torch.no_grad():
        for kwargs in ({}, {"attention_mask": mask}):
            expected = use(model, "eager")(ids, **kwargs).logits
            got = use(model, "flash_attention_2")(ids, **kwargs).logits
            keep = real if kwargs else torch.ones_like(real)
            torch.testing.assert_close(got[keep], expected[keep], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name, dtype", CASES)
def test_flash_path_generates_the_eager_tokens_with_the_cache(reference_flash_kernel, name, dtype):
    model = models(dtype)[name]
    ids = torch.randint(1, VOCAB, (2, 7), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # a left-padded row: decoding goes through the variable-length kernel
    settings = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False, pad_token_id=0)
    for kwargs in ({"attention_mask": torch.ones_like(ids)}, {"attention_mask": mask}):
        expected = use(model, "eager").generate(ids, **kwargs, **settings)
        got = use(model, "flash_attention_2").generate(ids, **kwargs, **settings)
        assert torch.equal(got, expected)


def test_flash_glue_really_ran(reference_flash_kernel, monkeypatch):
    """Guards the test above against passing vacuously: the reference kernels are what ran."""
    calls = []
    functions, processing = flash_utils.lazy_import_flash_attention("flash_attention_2")
    counted = tuple(
        (lambda *a, f=f, **k: calls.append(f.__name__) or f(*a, **k)) if callable(f) and i < 2 else f
        for i, f in enumerate(functions)
    )
    monkeypatch.setattr(
        flash_utils, "lazy_import_flash_attention", lambda *args, **kwargs: (counted, processing)
    )
    model = use(models()["ours"], "flash_attention_2")
    ids = torch.randint(1, VOCAB, (2, 5), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    mask[0, :2] = 0
    with torch.no_grad():
        model(ids)
        model(ids, attention_mask=mask)
    # 2 layers each: padding-free batch -> flash_attn_func; padded batch -> flash_attn_varlen_func
    assert calls == ["flash_attn_func"] * 2 + ["flash_attn_varlen_func"] * 2
