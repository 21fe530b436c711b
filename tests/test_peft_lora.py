"""LoRA through peft on GPT-2's module names (c_attn, c_proj, c_fc): trains, keeps the base frozen, merges back."""

import pytest
import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model

from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import (
    ScratchGPTForCausalLM,
    ScratchGPTForSequenceClassification,
)

TARGETS = ["c_attn", "c_proj", "c_fc"]


def tiny_config(**overrides) -> ScratchGPTConfig:
    return ScratchGPTConfig(
        n_layer=2,
        n_head=2,
        n_embd=32,
        vocab_size=64,
        n_positions=32,
        bos_token_id=0,
        eos_token_id=0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **overrides,
    )


def test_lora_trains_adapters_only_and_merges_back(tmp_path):
    torch.manual_seed(0)
    base = ScratchGPTForCausalLM(tiny_config())
    frozen_before = {name: t.clone() for name, t in base.state_dict().items()}
    model = get_peft_model(
        base, LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=TARGETS)
    )

    wrapped = {name.split(".base_layer")[0] for name, _ in model.named_parameters() if ".base_layer." in name}
    assert len(wrapped) == 2 * 4  # per block: attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)

    lora_before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = torch.randint(1, 64, (4, 16), generator=torch.Generator().manual_seed(1))
    model.train()
    losses = []
    for _ in range(15):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1  # it learns
    assert any(
        not torch.equal(p, lora_before[name]) for name, p in model.named_parameters() if p.requires_grad
    )
    for name, p in base.named_parameters():  # base weights untouched (peft keeps them under .base_layer)
        if "lora_" not in name:
            original = name.replace(".base_layer", "")
            assert torch.equal(p, frozen_before[original]), name

    model.eval()
    ids = torch.randint(1, 64, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
    model.save_pretrained(tmp_path / "adapter")
    merged = model.merge_and_unload()
    assert type(merged) is ScratchGPTForCausalLM
    assert all(type(m) is torch.nn.Linear for n, m in merged.named_modules() if n.endswith(tuple(TARGETS)))
    torch.testing.assert_close(merged(ids).logits, adapted, rtol=0, atol=1e-5)
    assert not torch.allclose(merged(ids).logits, ScratchGPTForCausalLM(tiny_config())(ids).logits)

    # The saved adapter re-applies to a fresh copy of the base weights.
    fresh = ScratchGPTForCausalLM(tiny_config())
    fresh.load_state_dict(frozen_before)
    reloaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, adapted, rtol=0, atol=1e-5)


def test_lora_for_classification_trains_the_score_head():
    torch.manual_seed(0)
    base = ScratchGPTForSequenceClassification(tiny_config(num_labels=2, pad_token_id=0))
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=TARGETS))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert any("score" in name for name in trainable)  # peft trains and saves the head named `score`
    ids = torch.randint(1, 64, (3, 8))
    labels = torch.tensor([0, 1, 1])
    model(input_ids=ids, labels=labels).loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_module_name_exists(target):
    model = ScratchGPTForCausalLM(tiny_config())
    assert any(name.endswith(target) for name, _ in model.named_modules())


def test_lora_modules_to_save_trains_the_layernorms_in_full(tmp_path):
    """`--lora_modules_to_save ln_1 ln_2 ln_f`: the LayerNorms train beside the adapters, merge into the plain model
    and travel in the saved adapter; everything else stays frozen."""
    from hf_scratch_gpt.training.arguments import LoraArguments
    from hf_scratch_gpt.training.lora import apply_lora, finish_lora

    torch.manual_seed(0)
    base = ScratchGPTForCausalLM(tiny_config())
    before = {name: t.clone() for name, t in base.state_dict().items()}
    args = LoraArguments(use_peft=True, lora_r=4, lora_modules_to_save=["ln_1", "ln_2", "ln_f"])
    model = apply_lora(base, args, task_type="CAUSAL_LM")
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    layer_norms = 2 * 2 + 1  # ln_1 and ln_2 in each of 2 blocks, ln_f
    assert sum(".ln_" in name for name in trainable) == 2 * layer_norms  # weight and bias of each
    assert all("lora_" in name or ".ln_" in name for name in trainable)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = torch.randint(1, 64, (4, 16), generator=torch.Generator().manual_seed(1))
    model.train()
    for _ in range(5):
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    ids = torch.randint(1, 64, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
    model.save_pretrained(tmp_path / "adapter")

    merged = finish_lora(model, merge=True)
    after = merged.state_dict()
    assert set(after) == set(before)  # a plain model again, GPT-2's names
    for name, tensor in after.items():
        changed = not torch.equal(tensor, before[name])
        adapted_weight = name.endswith(tuple(f"{target}.weight" for target in TARGETS))  # LoRA leaves biases
        assert changed == (".ln_" in name or adapted_weight), name
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted, rtol=0, atol=1e-5)

    fresh = ScratchGPTForCausalLM(tiny_config())
    fresh.load_state_dict(before)
    reloaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():  # the trained LayerNorms came back from the adapter folder
        torch.testing.assert_close(reloaded(input_ids=ids).logits, adapted, rtol=0, atol=1e-5)


def test_lora_modules_to_save_unknown_name_is_a_clear_error():
    from hf_scratch_gpt.training.arguments import LoraArguments
    from hf_scratch_gpt.training.lora import apply_lora

    args = LoraArguments(use_peft=True, lora_modules_to_save=["layernorm"])
    with pytest.raises(
        ValueError, match=r"--lora_modules_to_save \['layernorm'\] match no module.*ln_1, ln_2"
    ):
        apply_lora(ScratchGPTForCausalLM(tiny_config()), args, task_type="CAUSAL_LM")


def test_lora_modules_to_save_keeps_the_classification_head_trainable():
    from hf_scratch_gpt.training.arguments import LoraArguments
    from hf_scratch_gpt.training.lora import apply_lora

    base = ScratchGPTForSequenceClassification(tiny_config(num_labels=2, pad_token_id=0))
    args = LoraArguments(use_peft=True, lora_r=4, lora_modules_to_save=["ln_f"])
    model = apply_lora(base, args, task_type="SEQ_CLS")
    trained_in_full = {
        name.split(".modules_to_save")[0].rsplit(".", 1)[-1]
        for name, p in model.named_parameters()
        if p.requires_grad and "lora_" not in name
    }
    assert trained_in_full == {"ln_f", "score"}  # our module plus the head peft adds for SEQ_CLS
