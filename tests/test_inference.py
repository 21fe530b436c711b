"""hf_scratch_gpt.model.inference: each precision and int8 setting against the float32 model it came from (the
reference), the given model never changed, and every choice the machine cannot run refused with what to use."""

import importlib.util
import logging

import pytest
import torch

from hf_scratch_gpt.model import inference
from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.inference import InferenceSetting, prepare_for_inference, resolve_setting
from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTForCausalLM
from hf_scratch_gpt.training.arguments import ResponseArguments

IDS = torch.tensor([[3, 17, 42, 9, 77, 5, 61, 30]])


@pytest.fixture
def model():
    torch.manual_seed(0)
    config = ScratchGPTConfig(n_layer=2, n_head=2, n_embd=64, n_positions=32, vocab_size=96, bos_token_id=0,
                              eos_token_id=0)  # fmt: skip
    return ScratchGPTForCausalLM(config).eval()


def logits(model) -> torch.Tensor:
    with torch.inference_mode():
        return model(IDS).logits.float()


def test_float32_on_a_float32_model_is_the_model_itself(model):
    ready, setting = prepare_for_inference(model, "float32", "none")
    assert ready is model and setting == InferenceSetting("float32", "none")


@pytest.mark.parametrize(
    ("dtype", "quantize", "tolerance"),
    # bf16 keeps 8 bits of mantissa: ~0.4% per rounding; int8 rows keep 1/127 of each row's largest weight, and
    # dynamic int8 also rounds each Linear's input to 1/127 of its largest value.
    [
        ("bfloat16", "none", 0.03),
        ("float32", "int8", 0.05),
        ("float32", "int8_weights", 0.03),
        ("bfloat16", "int8_weights", 0.05),
    ],
)
def test_a_setting_is_a_copy_whose_logits_stay_near_float32(model, dtype, quantize, tolerance):
    reference = logits(model)
    before = {name: p.detach().clone() for name, p in model.state_dict().items()}
    ready, setting = prepare_for_inference(model, dtype, quantize)
    assert ready is not model and setting == InferenceSetting(dtype, quantize)
    got = logits(ready)
    assert (got - reference).abs().max() <= tolerance * reference.abs().max()
    # The given model is untouched: same dtype, same weights, still plain tensors.
    for name, param in model.state_dict().items():
        assert type(param) is torch.Tensor and torch.equal(param, before[name]), name
    with torch.inference_mode():  # and the copy still generates
        out = ready.generate(IDS, max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=0)
    assert out.shape == (1, IDS.shape[1] + 4)


def test_int8_weights_really_stores_int8_weights(model):
    ready, _ = prepare_for_inference(model, "float32", "int8_weights")
    weight = ready.transformer.h[0].attn.c_attn.weight
    assert type(weight).__name__ == "Int8Tensor" and weight.qdata.dtype == torch.int8
    assert ready.transformer.wte.weight.dtype == torch.float32  # the embedding lookup stays float


def test_int8_runs_every_linear_in_int8_with_one_scale_per_row(model):
    """Each Linear becomes a dynamically quantized one whose weights are int8 per output row and dequantize to
    the float32 weights within half a step; the embedding stays float32 (a lookup, not a matmul)."""
    ready, _ = prepare_for_inference(model, "float32", "int8")
    linears = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    quantized = dict(ready.named_modules())
    for name in linears:
        layer = quantized[name]
        assert isinstance(layer, torch.ao.nn.quantized.dynamic.Linear), name
        weight = layer.weight()
        assert weight.dtype == torch.qint8 and weight.qscheme() == torch.per_channel_affine, name
        original = dict(model.named_modules())[name].weight
        step = weight.q_per_channel_scales().float().unsqueeze(1)  # (out, 1)
        assert ((weight.dequantize() - original).abs() <= step / 2 + 1e-7).all(), name
    assert ready.transformer.wte.weight.dtype == torch.float32


def test_int8_refuses_bfloat16_and_a_gpu_and_auto_picks_float32(monkeypatch):
    monkeypatch.setattr(inference, "bf16_is_fast", lambda: True)
    assert resolve_setting("auto", "int8").dtype == "float32"  # int8 computes around float32
    with pytest.raises(ValueError, match="cannot run in bfloat16; use --dtype float32.*int8_weights"):
        resolve_setting("bfloat16", "int8")
    with pytest.raises(ValueError, match="CPU kernels only.*use --quantize int8_weights"):
        resolve_setting("float32", "int8", device="cuda")


def test_a_lora_model_is_merged_into_the_copy(model):
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["c_attn"], init_lora_weights=False))
    reference = logits(peft_model)
    ready, _ = prepare_for_inference(peft_model, "bfloat16", "none")
    assert not hasattr(ready, "peft_config")
    assert (logits(ready) - reference).abs().max() <= 0.03 * reference.abs().max()
    assert hasattr(peft_model, "peft_config")  # the adapter model itself keeps its adapter


def test_auto_follows_native_bf16(monkeypatch):
    for native, dtype in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(inference, "bf16_is_fast", lambda native=native: native)
        assert resolve_setting("auto", "none").dtype == dtype


def test_bf16_on_a_cpu_without_native_bf16_is_allowed_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(inference, "bf16_is_fast", lambda: False)
    with caplog.at_level(logging.WARNING, logger=inference.__name__):
        assert resolve_setting("bfloat16", "none").dtype == "bfloat16"
    assert "no native bfloat16" in caplog.text and "auto picks float32" in caplog.text


@pytest.mark.parametrize(
    ("dtype", "quantize", "message"),
    [
        ("float16", "none", "--dtype float16 is not one of auto, float32, bfloat16.*use bfloat16"),
        ("float32", "int4", "--quantize int4 is not one of none, int8, int8_weights"),
    ],
)
def test_unknown_choices_list_the_valid_ones(dtype, quantize, message):
    with pytest.raises(ValueError, match=message):
        resolve_setting(dtype, quantize)


def test_int8_weights_without_torchao_says_how_to_install_it(monkeypatch, model):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"pip install 'hf_scratch_gpt\[quantize\]'"):
        prepare_for_inference(model, "float32", "int8_weights")
    with pytest.raises(
        ImportError, match="--generation_quantize int8_weights needs torchao"
    ):  # the recipes: at parse time
        ResponseArguments(generation_quantize="int8_weights")
    assert prepare_for_inference(model, "float32", "int8")[1].quantize == "int8"  # int8 needs no torchao


def test_response_arguments_answer_with_a_copy(model):
    arguments = ResponseArguments(generation_dtype="bfloat16", generation_quantize="int8_weights")
    answering, setting = arguments.answer_model(model)
    assert answering is not model and model.dtype == torch.float32
    assert setting.describe() == "bfloat16, int8 weights (torchao)"
    with pytest.raises(ValueError, match="--generation_dtype float64 is not one of"):
        ResponseArguments(generation_dtype="float64")
    # a combination that cannot run is refused when the flags are parsed (before training), in the recipe's flags
    with pytest.raises(
        ValueError, match="--generation_quantize int8 computes in int8.*--generation_dtype float32"
    ):
        ResponseArguments(generation_dtype="bfloat16", generation_quantize="int8")
