"""GPT-2 <-> ScratchGPT conversion: logits parity with transformers' GPT2LMHeadModel, both ways, and the CLI."""

import json
import subprocess
import sys

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from hf_scratch_gpt.convert import main
from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.gpt2 import from_gpt2, to_gpt2
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM

# (n_layer, n_head, n_embd, n_inner, vocab_size, n_positions, batch, length): random small GPT-2 shapes
SHAPES = [
    (1, 1, 8, None, 50, 16, 1, 1),
    (2, 4, 32, None, 97, 64, 3, 17),
    (3, 2, 48, 100, 211, 40, 2, 40),
    (4, 8, 64, None, 128, 32, 4, 9),
]


def gpt2_model(n_layer, n_head, n_embd, n_inner, vocab_size, n_positions, seed=0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        n_inner=n_inner,
        vocab_size=vocab_size,
        n_positions=n_positions,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPT2LMHeadModel(config).eval()
    # GPT-2 initialises biases and LayerNorms to 0 / 1: randomise them so that their conversion is tested too.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return model


def random_ids(vocab_size: int, batch: int, length: int) -> torch.Tensor:
    return torch.randint(0, vocab_size, (batch, length), generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("shape", SHAPES)
def test_from_gpt2_gives_the_same_logits(shape):
    *arch, batch, length = shape
    gpt2 = gpt2_model(*arch)
    ours = from_gpt2(gpt2).eval()
    assert isinstance(ours, ScratchGPTForCausalLM)
    assert ours.lm_head.weight is ours.transformer.wte.weight
    ids = random_ids(arch[4], batch, length)
    torch.testing.assert_close(ours(ids).logits, gpt2(ids).logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_to_gpt2_of_our_random_model_gives_the_same_logits(shape):
    (n_layer, n_head, n_embd, n_inner, vocab_size, n_positions, batch, length) = shape
    torch.manual_seed(1)
    config = ScratchGPTConfig(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        n_inner=n_inner,
        vocab_size=vocab_size,
        n_positions=n_positions,
        bos_token_id=0,
        eos_token_id=0,
    )
    ours = ScratchGPTForCausalLM(config).eval()
    gpt2 = to_gpt2(ours).eval()
    assert isinstance(gpt2, GPT2LMHeadModel)
    ids = random_ids(vocab_size, batch, length)
    torch.testing.assert_close(gpt2(ids).logits, ours(ids).logits, rtol=0, atol=1e-5)
    settings = dict(max_new_tokens=10, min_new_tokens=10, do_sample=False, pad_token_id=0)
    prompt = ids[:1, : max(1, min(length, n_positions - 10))]
    assert torch.equal(gpt2.generate(prompt, **settings), ours.generate(prompt, **settings))


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_float64_with_padding_gives_gpt2s_logits(implementation):
    # float64 is what gradcheck and numerical studies use. A fully masked padding query must not turn into NaN (and
    # spread to the real tokens of its row): the mask's float64 minimum must stay finite through the softmax.
    gpt2 = gpt2_model(2, 4, 32, None, 97, 64).double()
    gpt2.set_attn_implementation(implementation)
    ours = from_gpt2(gpt2).eval().double()
    ours.set_attn_implementation(implementation)
    ids = random_ids(97, 3, 12)
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding
    mask[1, -4:] = 0  # right padding
    real = mask.bool()
    # GPT-2 numbers positions 0..T-1 whatever the padding; ours counts real tokens: give both the same positions.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    inputs = dict(input_ids=ids, attention_mask=mask, position_ids=positions)
    expected, got = gpt2(**inputs).logits, ours(**inputs).logits
    assert not got[real].isnan().any()
    torch.testing.assert_close(got[real], expected[real], rtol=0, atol=1e-10)


def test_round_trip_restores_gpt2_exactly():
    gpt2 = gpt2_model(2, 4, 32, None, 97, 64)
    back = to_gpt2(from_gpt2(gpt2))
    expected = gpt2.state_dict()
    assert back.state_dict().keys() == expected.keys()
    for name, tensor in back.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert back.config.n_embd == 32 and back.config.vocab_size == 97


def test_from_gpt2_loads_a_folder(tmp_path):
    gpt2 = gpt2_model(2, 2, 16, None, 60, 32)
    gpt2.save_pretrained(tmp_path)
    ours = from_gpt2(tmp_path).eval()
    ids = random_ids(60, 2, 10)
    torch.testing.assert_close(ours(ids).logits, gpt2(ids).logits, rtol=0, atol=1e-5)


def test_unsupported_gpt2_variants_are_refused():
    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, scale_attn_by_inverse_layer_idx=True)
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx=True"):
        from_gpt2(GPT2LMHeadModel(config))


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        ["a small corpus for a small tokenizer. "] * 10,
        vocab_size=280,
        min_frequency=1,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")


def test_cli_converts_both_ways_and_keeps_the_tokenizer(tmp_path):
    gpt2 = gpt2_model(2, 2, 16, None, 280, 32)
    gpt2.save_pretrained(tmp_path / "gpt2")
    tiny_tokenizer().save_pretrained(tmp_path / "gpt2")
    ids = random_ids(280, 2, 12)

    main(["--from_gpt2", str(tmp_path / "gpt2"), "--output_dir", str(tmp_path / "ours")])
    ours = AutoModelForCausalLM.from_pretrained(tmp_path / "ours").eval()
    assert isinstance(ours, ScratchGPTForCausalLM)
    torch.testing.assert_close(ours(ids).logits, gpt2(ids).logits, rtol=0, atol=1e-5)
    assert AutoTokenizer.from_pretrained(tmp_path / "ours").eos_token == "<|endoftext|>"

    main(["--to_gpt2", str(tmp_path / "ours"), "--output_dir", str(tmp_path / "back")])
    back = GPT2LMHeadModel.from_pretrained(tmp_path / "back").eval()
    torch.testing.assert_close(back(ids).logits, gpt2(ids).logits, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_cli_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "hf_scratch_gpt.convert", "--help"], capture_output=True, text=True, check=True
    )
    assert "--from_gpt2" in result.stdout and "--to_gpt2" in result.stdout


def test_gpt2_export_is_ready_for_other_runtimes(tmp_path):
    """What llama.cpp's converter and CTranslate2 read from the folder: n_ctx in config.json, a named unk token
    (eos, as in GPT-2; repaired for a tokenizer saved without one) and the chat template without the training
    markers, rendering the same text."""
    from export_helpers import export_gpt2, tiny_checkpoint, trained_tokenizer

    from scratch_tokenizer.hf_tokenizer import CHAT_TEMPLATE

    tokenizer = trained_tokenizer()
    checkpoint = tiny_checkpoint(tmp_path / "ours", tokenizer, without_unk=True)
    assert AutoTokenizer.from_pretrained(checkpoint).unk_token is None
    export = export_gpt2(checkpoint, tmp_path / "gpt2")

    config = json.loads((export / "config.json").read_text(encoding="utf-8"))
    assert config["n_ctx"] == config["n_positions"] == 64
    saved = json.loads((export / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert saved["unk_token"] == saved["eos_token"] == "<|endoftext|>"
    template = (export / "chat_template.jinja").read_text(encoding="utf-8")
    assert "{% generation %}" not in template and "endgeneration" not in template

    exported = AutoTokenizer.from_pretrained(export)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi 🤗"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Again?"},
    ]
    training = AutoTokenizer.from_pretrained(checkpoint)
    assert training.chat_template == CHAT_TEMPLATE  # the source keeps its markers
    for prompt in (False, True):
        expected = training.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        assert (
            exported.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt) == expected
        )
