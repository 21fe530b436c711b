"""ScratchGPT config and model: checked against transformers' GPT-2, hand-computed values and round trips."""

import logging
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    DynamicCache,
    GPT2Config,
    GPT2LMHeadModel,
    StaticCache,
)
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as transformers_logging

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)
from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.gpt2 import SHARED_CONFIG_FIELDS, from_gpt2
from hf_scratch_gpt.model.modeling_scratch_gpt import (
    ScratchGPTForCausalLM,
    ScratchGPTForSequenceClassification,
    ScratchGPTModel,
)

VOCAB = 101


def tiny_config(**overrides) -> ScratchGPTConfig:
    settings = dict(
        n_layer=2, n_head=4, n_embd=32, vocab_size=VOCAB, n_positions=48, bos_token_id=0, eos_token_id=0
    )
    settings.update(overrides)
    return ScratchGPTConfig(**settings)


def no_dropout(**overrides) -> ScratchGPTConfig:
    return tiny_config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **overrides)


def tiny_lm(seed: int = 0, **overrides) -> ScratchGPTForCausalLM:
    torch.manual_seed(seed)
    return ScratchGPTForCausalLM(tiny_config(**overrides)).eval()


def random_ids(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- config


def test_config_defaults_are_gpt2_small():
    ours, gpt2 = ScratchGPTConfig(), GPT2Config()
    for field in SHARED_CONFIG_FIELDS:  # every GPT-2 field ScratchGPT has
        assert getattr(ours, field) == getattr(gpt2, field), field
    assert ours.model_type == "scratch_gpt"


def test_config_attribute_map_reads_and_writes_standard_names():
    config = ScratchGPTConfig(
        hidden_size=64, num_attention_heads=8, num_hidden_layers=3, max_position_embeddings=99
    )
    assert (config.n_embd, config.n_head, config.n_layer, config.n_positions) == (64, 8, 3, 99)
    assert (config.hidden_size, config.num_attention_heads, config.num_hidden_layers) == (64, 8, 3)
    assert config.max_position_embeddings == 99


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(n_embd=100, n_head=3), r"n_embd \(100\) must be divisible by n_head \(3\)"),
        (dict(n_layer=0), "n_layer must be a positive integer, got 0"),
        (dict(vocab_size=-5), "vocab_size must be a positive integer"),
        (dict(activation_function="swish"), "activation_function 'swish' is not supported"),
        (dict(attn_pdrop=1.0), r"attn_pdrop is a dropout probability and must be in \[0, 1\)"),
        (dict(n_inner=0), "n_inner must be a positive integer or None"),
        (dict(layer_norm_epsilon=0.0), "layer_norm_epsilon must be positive"),
    ],
)
def test_config_rejects_invalid_values_at_construction(overrides, message):
    with pytest.raises(ValueError, match=message):
        ScratchGPTConfig(**overrides)


def test_config_save_load_round_trip(tmp_path):
    config = tiny_config(n_inner=40, activation_function="gelu", pad_token_id=3)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is ScratchGPTConfig
    assert loaded.to_diff_dict() == config.to_diff_dict()
    assert (loaded.n_inner, loaded.activation_function, loaded.pad_token_id) == (40, "gelu", 3)


def test_auto_classes_build_our_models():
    config = tiny_config()
    assert type(AutoConfig.for_model("scratch_gpt")) is ScratchGPTConfig
    assert type(AutoModel.from_config(config)) is ScratchGPTModel
    assert type(AutoModelForCausalLM.from_config(config)) is ScratchGPTForCausalLM
    assert type(AutoModelForSequenceClassification.from_config(config)) is ScratchGPTForSequenceClassification


# ---------------------------------------------------------------- weights


def test_init_follows_gpt2_scheme_with_scaled_residual_projections():
    torch.manual_seed(0)
    n_layer, std = 4, 0.02
    model = ScratchGPTForCausalLM(ScratchGPTConfig(n_layer=n_layer, n_head=4, n_embd=256, vocab_size=512))
    scaled = std / math.sqrt(2 * n_layer)  # GPT-2 paper: 1/sqrt(N) for the N = 2 * n_layer residual additions
    for block in model.transformer.h:
        for linear, expected in (
            (block.attn.c_attn, std),
            (block.attn.c_proj, scaled),
            (block.mlp.c_fc, std),
            (block.mlp.c_proj, scaled),
        ):
            assert linear.weight.std().item() == pytest.approx(expected, rel=0.05)
            assert linear.weight.mean().abs().item() < expected / 10
            assert torch.count_nonzero(linear.bias) == 0
        assert torch.all(block.ln_1.weight == 1) and torch.count_nonzero(block.ln_1.bias) == 0
    assert model.transformer.wte.weight.std().item() == pytest.approx(std, rel=0.05)
    assert model.transformer.wpe.weight.std().item() == pytest.approx(std, rel=0.05)


def test_tied_weights_stay_tied_after_save_and_load(tmp_path):
    model = tiny_lm()
    assert model.lm_head.weight is model.transformer.wte.weight
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = ScratchGPTForCausalLM.from_pretrained(tmp_path).eval()
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()
    ids = random_ids(2, 9)
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)
    with torch.no_grad():  # still one tensor: an update through the embedding shows in the head
        loaded.transformer.wte.weight[5] += 1.0
    assert torch.equal(loaded.lm_head.weight[5], loaded.transformer.wte.weight[5])


def test_resize_token_embeddings_keeps_rows_and_tying():
    model = tiny_lm()
    old = model.transformer.wte.weight.detach().clone()
    model.resize_token_embeddings(VOCAB + 7)
    assert model.transformer.wte.weight.shape == (VOCAB + 7, 32)
    assert model.lm_head.weight.shape == (VOCAB + 7, 32)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    assert model.config.vocab_size == VOCAB + 7
    torch.testing.assert_close(model.transformer.wte.weight[:VOCAB], old)
    logits = model(torch.tensor([[1, VOCAB + 6]])).logits  # a new id is accepted
    assert logits.shape == (1, 2, VOCAB + 7)


def all_contiguous(model) -> bool:
    return all(p.is_contiguous() for p in model.parameters())


def test_parameters_are_plain_and_contiguous_after_init_load_cast_and_resize(tmp_path):
    # transformers' common tests, safetensors' save_file, parameters_to_vector and fused optimizers expect it.
    model = tiny_lm()
    assert all_contiguous(model)
    model.save_pretrained(tmp_path)
    loaded, info = ScratchGPTForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert all_contiguous(loaded)
    assert all_contiguous(loaded.to(torch.bfloat16)) and loaded.lm_head.weight.dtype == torch.bfloat16
    loaded = loaded.float()
    loaded.resize_token_embeddings(VOCAB + 3)
    assert all_contiguous(loaded) and loaded.lm_head.weight is loaded.transformer.wte.weight
    saved = load_file(tmp_path / "model.safetensors")  # the file holds exactly the model's values
    for name, tensor in model.state_dict().items():
        if name in saved:
            assert torch.equal(saved[name], tensor), name


def test_save_with_a_given_state_dict_and_load_with_loading_info(tmp_path):
    model = tiny_lm()
    model.save_pretrained(tmp_path, state_dict=model.state_dict())  # tied entries share one tensor
    loaded, info = ScratchGPTForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    ids = random_ids(2, 9)
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_forward_hooks_on_linear_layers_run_while_decoding():
    model = tiny_lm()
    seen = []
    model.transformer.h[1].mlp.c_fc.register_forward_hook(lambda module, args, out: seen.append(out.shape[1]))
    model.lm_head.register_forward_hook(lambda module, args, out: seen.append(-out.shape[1]))
    model.generate(random_ids(1, 5), max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert seen == [5, -1, 1, -1, 1, -1, 1, -1]  # prompt, then one token per step; logits for the last only


# ---------------------------------------------------------------- forward


def test_causality_later_tokens_never_change_earlier_logits():
    for implementation in ("sdpa", "eager"):
        model = tiny_lm()
        model.set_attn_implementation(implementation)
        ids = random_ids(2, 12)
        changed = ids.clone()
        changed[:, 7:] = (changed[:, 7:] + 1) % VOCAB
        before, after = model(ids).logits, model(changed).logits
        torch.testing.assert_close(before[:, :7], after[:, :7], rtol=0, atol=1e-6)
        assert not torch.allclose(before[:, 7:], after[:, 7:])


def test_loss_equals_hand_computed_cross_entropy_ignoring_minus_100():
    model = tiny_lm()
    ids = random_ids(3, 10)
    labels = ids.clone()
    labels[0, :4] = -100  # e.g. a prompt that is not trained on
    labels[2, -3:] = -100  # e.g. padding
    out = model(ids, labels=labels)
    # Position t predicts token t + 1: drop the last logits and the first labels, average over kept labels only.
    log_probs = out.logits[:, :-1].log_softmax(-1)
    targets = labels[:, 1:]
    kept = targets != -100
    expected = -log_probs[kept].gather(-1, targets[kept].unsqueeze(-1)).mean()
    torch.testing.assert_close(out.loss, expected)


def test_logits_to_keep_computes_only_the_last_positions():
    model = tiny_lm()
    ids = random_ids(2, 11)
    full = model(ids).logits
    torch.testing.assert_close(model(ids, logits_to_keep=1).logits, full[:, -1:])
    torch.testing.assert_close(model(ids, logits_to_keep=torch.tensor([0, 5])).logits, full[:, [0, 5]])


@pytest.mark.parametrize("implementation", ["sdpa", "flex_attention"])
def test_every_cpu_attention_implementation_equals_eager_with_padding(implementation):
    eager = tiny_lm(attn_implementation="eager")
    other = tiny_lm(attn_implementation=implementation)
    assert other.config._attn_implementation == implementation
    ids = random_ids(3, 13)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding
    mask[1, -5:] = 0  # right padding
    real = mask.bool()
    with torch.no_grad():  # flex_attention has no backward on CPU
        for kwargs in ({}, {"attention_mask": mask}):
            expected, got = eager(ids, **kwargs).logits, other(ids, **kwargs).logits
            keep = real if kwargs else torch.ones_like(real)
            torch.testing.assert_close(got[keep], expected[keep], rtol=0, atol=1e-5)


@pytest.mark.parametrize("head", ["causal_lm", "classifier"])
@pytest.mark.parametrize("padded", [False, True])
def test_training_forward_traces_without_a_graph_break(head, padded):
    # The value checks (ids in the vocabulary, positions under n_positions) read tensors: under torch.compile they
    # must step aside, not split the graph. dynamo.explain traces without compiling, and counts every break.
    torch.manual_seed(0)
    config = tiny_config(pad_token_id=0)
    model = (ScratchGPTForCausalLM if head == "causal_lm" else ScratchGPTForSequenceClassification)(config)
    ids = random_ids(2, 12).clamp(min=1)
    mask = torch.ones_like(ids)
    if padded:
        mask[1, -3:] = 0
    labels = ids if head == "causal_lm" else torch.tensor([0, 1])
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model.train())(input_ids=ids, attention_mask=mask, labels=labels)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_switching_attention_implementation_takes_effect_at_once():
    model = tiny_lm()
    ids = random_ids(1, 7)
    sdpa = model(ids).logits
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"
    torch.testing.assert_close(model(ids).logits, sdpa, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r'attn_implementation="foo"` is not supported.*"eager".*sdpa'):
        model.set_attn_implementation("foo")
    with pytest.raises(ValueError, match=r"not supported.*sdpa"):
        ScratchGPTForCausalLM(tiny_config(attn_implementation="foo"))


def test_hidden_states_and_attentions_match_gpt2():
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            n_layer=3,
            n_head=4,
            n_embd=32,
            vocab_size=VOCAB,
            n_positions=48,
            bos_token_id=0,
            eos_token_id=0,
            attn_implementation="eager",
        )
    ).eval()
    ours = from_gpt2(gpt2).eval()
    ours.set_attn_implementation("eager")  # as for GPT-2: only the written-out path has weights to return
    ids = random_ids(2, 9)
    expected = gpt2(ids, output_hidden_states=True, output_attentions=True)
    out = ours(ids, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == 3 + 1 and len(out.attentions) == 3
    for mine, theirs in zip(out.hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-5)
    for mine, theirs in zip(out.attentions, expected.attentions, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6)
    weights = out.attentions[0]  # (B, nh, T, T): rows are distributions over earlier positions only
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 9))
    assert torch.all(weights.triu(diagonal=1) == 0)
    # the same switches work as config flags
    ours.config.output_hidden_states = True
    ours.config.output_attentions = True
    from_config = ours(ids)
    assert len(from_config.hidden_states) == 4 and len(from_config.attentions) == 3
    torch.testing.assert_close(from_config.attentions[2], expected.attentions[2], rtol=0, atol=1e-6)
    ours.config.output_hidden_states = False
    ours.config.output_attentions = False
    plain = ours(ids)
    assert plain.hidden_states is None and plain.attentions is None


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = ScratchGPTForCausalLM(no_dropout()).train()
    ids = random_ids(2, 10)

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad()
        model(ids, labels=ids).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    plain = grads()
    model.activation_checkpointing_enable()
    assert all(block.gradient_checkpointing for block in model.transformer.h)
    checkpointed = grads()
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_gradient_checkpointing_with_a_cache_given_leaves_it_alone_like_gpt2():
    # A training step with checkpointing on and a cache passed in: the backward pass replays every block, so a
    # block that wrote into the cache would write this step's keys/values twice. GPT-2 keeps the cache out of the
    # checkpointed blocks (and warns); ours must too, and compute the same loss and gradients.
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            n_layer=2,
            n_head=4,
            n_embd=32,
            vocab_size=VOCAB,
            n_positions=48,
            bos_token_id=0,
            eos_token_id=0,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    )
    ours = from_gpt2(gpt2)
    ids = random_ids(2, 10)
    logging.Logger.warning_once.cache_clear()  # transformers warns once per message and process

    def training_step(model) -> tuple[DynamicCache, torch.Tensor, dict[str, torch.Tensor], str]:
        model.activation_checkpointing_enable()
        model.train()
        cache = DynamicCache()
        with CaptureLogger(transformers_logging.get_logger("transformers")) as captured:
            loss = model(ids, labels=ids, cache=cache, use_cache=True).loss
            loss.backward()
        grads = {name: p.grad for name, p in model.named_parameters()}
        return cache, loss, grads, captured.out

    gpt2_cache, gpt2_loss, gpt2_grads, gpt2_log = training_step(gpt2)
    cache, loss, grads, log = training_step(ours)

    # GPT-2 leaves the cache it was given empty: nothing stored, in no layer (ours, unfixed: 20 = twice 10 tokens).
    assert gpt2_cache.get_seq_length() == 0 and not any(layer.is_initialized for layer in gpt2_cache.layers)
    assert cache.get_seq_length() == gpt2_cache.get_seq_length()
    assert not any(layer.is_initialized for layer in cache.layers)
    torch.testing.assert_close(loss, gpt2_loss, rtol=0, atol=1e-5)
    for name, grad in to_gpt2_layout(grads).items():
        torch.testing.assert_close(grad, gpt2_grads[name], rtol=0, atol=1e-5, msg=name)
    # Both say that the cache was set aside (GPT-2 at the model, ours at each block).
    assert "incompatible with gradient checkpointing" in gpt2_log
    assert "incompatible with gradient checkpointing" in log


def to_gpt2_layout(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our parameter gradients under GPT-2's names and shapes (its Conv1D weights are transposed Linears)."""
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    return {name: grad.t() if name.endswith(conv1d) else grad for name, grad in grads.items()}


def test_return_dict_false_gives_a_tuple():
    model = tiny_lm()
    ids = random_ids(1, 5)
    logits = model(ids, return_dict=False, use_cache=False)[0]
    torch.testing.assert_close(logits, model(ids).logits)


# ---------------------------------------------------------------- KV cache


def test_cached_forward_in_chunks_matches_one_full_forward():
    model = tiny_lm()
    ids = random_ids(2, 16)
    full = model(ids).logits
    caches = (None, DynamicCache(), StaticCache(config=model.config, max_cache_len=20))
    for cache in caches:  # the model's own (a DynamicCache), one passed in, a preallocated static one
        out = model(ids[:, :6], cache=cache, use_cache=True)
        pieces = [out.logits]
        out = model(ids[:, 6:9], cache=out.cache, use_cache=True)  # several new tokens after a cache
        pieces.append(out.logits)
        for t in range(9, 16):  # then one at a time
            out = model(ids[:, t : t + 1], cache=out.cache, use_cache=True)
            pieces.append(out.logits)
        assert out.cache.get_seq_length() == 16
        torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-5)


def test_deprecated_past_key_values_name_still_works():
    model = tiny_lm()
    ids = random_ids(1, 8)
    first = model(ids[:, :5], use_cache=True)
    with pytest.warns(FutureWarning, match="`past_key_values` is deprecated"):
        via_old_name = model(ids[:, 5:], past_key_values=first.cache, use_cache=True).logits
    torch.testing.assert_close(via_old_name, model(ids).logits[:, 5:], rtol=0, atol=1e-5)


def test_model_creates_and_returns_its_cache_only_when_asked():
    model = tiny_lm()
    ids = random_ids(1, 4)
    assert isinstance(model(ids).cache, DynamicCache)  # eval default: config.use_cache
    assert model(ids, use_cache=False).cache is None
    assert model.train()(ids).cache is None  # training default: no cache


# ---------------------------------------------------------------- bad input


def test_too_long_sequence_names_both_lengths():
    model = tiny_lm()
    with pytest.raises(ValueError, match=r"Sequence length 49 .* exceeds n_positions=48"):
        model(random_ids(1, 49))
    cache = model(random_ids(1, 40)).cache
    with pytest.raises(
        ValueError, match=r"Sequence length 50 \(cached \+ new tokens\) exceeds n_positions=48"
    ):
        model(random_ids(1, 10), cache=cache)


@pytest.mark.parametrize("bad_id", [VOCAB, VOCAB + 1000, -1])
def test_token_ids_outside_the_vocabulary_are_a_clear_error(bad_id):
    ids = random_ids(1, 6)
    ids[0, 3] = bad_id
    with pytest.raises(ValueError, match=rf"Token ids must be in \[0, {VOCAB - 1}\]"):
        tiny_lm()(ids)


def test_bad_argument_combinations_are_clear_errors():
    model = tiny_lm()
    ids = random_ids(2, 6)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids, attention_mask=torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one of input_ids"):
        model(ids, inputs_embeds=torch.zeros(2, 6, 32))
    with pytest.raises(ValueError, match="exactly one of input_ids"):
        model()


def test_loading_a_checkpoint_with_other_shapes_names_the_weights(tmp_path):
    tiny_lm().save_pretrained(tmp_path)
    with pytest.raises(
        RuntimeError, match=rf"transformer.wte.weight: checkpoint \({VOCAB}, 32\) vs config \(120, 32\)"
    ):
        ScratchGPTForCausalLM.from_pretrained(tmp_path, vocab_size=120)
    with pytest.raises(
        RuntimeError, match=r"transformer.wpe.weight: checkpoint \(48, 32\) vs config \(64, 32\)"
    ):
        AutoModelForCausalLM.from_pretrained(tmp_path, n_positions=64)


# ---------------------------------------------------------------- sequence classification


def tiny_classifier(num_labels: int = 3, pad_token_id: int | None = 0) -> ScratchGPTForSequenceClassification:
    torch.manual_seed(0)
    config = tiny_config(num_labels=num_labels, pad_token_id=pad_token_id)
    return ScratchGPTForSequenceClassification(config).eval()


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_classification_uses_the_last_real_token(padding_side):
    model = tiny_classifier()
    rows = [random_ids(1, n, seed=n)[0].clamp(min=1) for n in (7, 4, 10)]
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        where = slice(0, len(row)) if padding_side == "right" else slice(width - len(row), width)
        ids[i, where], mask[i, where] = row, 1
    batched = model(ids, attention_mask=mask).logits
    alone = torch.cat([model(row[None]).logits for row in rows])
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-5)
    if padding_side == "right":  # without a mask the pad id finds the same tokens
        torch.testing.assert_close(model(ids).logits, alone, rtol=0, atol=1e-5)


def test_classification_batch_with_padding_needs_a_pad_token_id():
    model = tiny_classifier(pad_token_id=None)
    ids = random_ids(2, 6)
    mask = torch.ones_like(ids)
    mask[1, -2:] = 0
    with pytest.raises(ValueError, match="config.pad_token_id is None"):
        model(ids)  # no mask: padding cannot be ruled out
    # with the mask the last real token is known: each row is classified as it is alone
    batched = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(batched[1], model(ids[1:, :-2]).logits[0], rtol=0, atol=1e-5)
    assert model(ids[:1]).logits.shape == (1, 3)  # a single sequence has no padding


def test_classification_losses_follow_problem_type():
    model = tiny_classifier()
    ids = random_ids(4, 6).clamp(min=1)
    logits = model(ids).logits
    labels = torch.tensor([0, 2, 1, 2])
    torch.testing.assert_close(model(ids, labels=labels).loss, F.cross_entropy(logits, labels))
    assert model.config.problem_type == "single_label_classification"

    model.config.problem_type = "multi_label_classification"
    targets = torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]])
    torch.testing.assert_close(
        model(ids, labels=targets).loss, F.binary_cross_entropy_with_logits(logits, targets)
    )

    regression = tiny_classifier(num_labels=1)
    values = torch.tensor([0.5, -1.0, 2.0, 0.0])
    predicted = regression(ids).logits.squeeze(-1)
    torch.testing.assert_close(regression(ids, labels=values).loss, F.mse_loss(predicted, values))


def test_classifier_labels_and_head_round_trip(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(id2label={0: "ham", 1: "spam"}, label2id={"ham": 0, "spam": 1}, pad_token_id=0)
    model = ScratchGPTForSequenceClassification(config).eval()
    assert model.score.weight.shape == (2, 32) and model.score.bias is None
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.id2label == {0: "ham", 1: "spam"}
    ids = random_ids(2, 5).clamp(min=1)
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)
