"""Lazy registration: the tokenizer side of the package never imports torch, yet `import hf_scratch_gpt` alone makes
transformers' Auto classes load our checkpoints (each check in a fresh interpreter, where imports start from zero)."""

import json
import subprocess
import sys

import pytest
import torch

from hf_scratch_gpt.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.modeling_scratch_gpt import ScratchGPTForCausalLM

TINY = {
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 16,
    "n_positions": 16,
    "vocab_size": 40,
    "bos_token_id": 0,
    "eos_token_id": 0,
}


def run_python(code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


HEAVY = "print(json.dumps({name: name in sys.modules for name in ('torch', 'transformers')}))"


@pytest.mark.parametrize(
    "module, transformers_expected",
    [
        ("hf_scratch_gpt", False),
        ("hf_scratch_gpt.bpe", False),
        ("hf_scratch_gpt.default_corpus", False),
        # the CLI's module: it builds a PreTrainedTokenizerFast, which is transformers without torch
        ("hf_scratch_gpt.train_tokenizer", True),
    ],
)
def test_tokenizer_side_does_not_import_torch(module, transformers_expected):
    loaded = json.loads(run_python(f"import json, sys, {module}\n{HEAVY}"))
    assert loaded == {"torch": False, "transformers": transformers_expected}


def test_tokenizer_cli_runs_without_importing_torch(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("low lower lowest newer newest wider\n" * 50, encoding="utf-8")
    # runpy runs the CLI exactly as `python -m` does, then the same interpreter reports what got imported
    code = (
        "import json, runpy, sys\n"
        "sys.argv = ['train_tokenizer', sys.argv[1], '--vocab_size', '270', '--output_dir', sys.argv[2]]\n"
        "try:\n"
        "    runpy.run_module('hf_scratch_gpt.train_tokenizer', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (None, 0), exit.code\n"
        f"{HEAVY}"
    )
    out = run_python(code, str(corpus), str(tmp_path / "tok"))
    assert json.loads(out.strip().splitlines()[-1]) == {"torch": False, "transformers": True}
    assert (tmp_path / "tok" / "tokenizer.json").is_file()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = ScratchGPTForCausalLM(ScratchGPTConfig(**TINY)).eval()
    path = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(path)
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.no_grad():
        return path, ids, model(ids).logits


# Registration must work whatever transformers has imported first; "gpt2 first" is the case where transformers
# imports its Auto modules halfway through its own modules (modeling_layers), when ours cannot be imported yet.
AUTO_ROUND_TRIP = r"""
import json, sys
{before}
import hf_scratch_gpt
{after}
assert "hf_scratch_gpt.modeling_scratch_gpt" not in sys.modules or {model_may_be_loaded}
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

path, ids = sys.argv[1], torch.tensor(json.loads(sys.argv[2]))
lm = AutoModelForCausalLM.from_pretrained(path).eval()
print(json.dumps({
    "config": type(AutoConfig.from_pretrained(path)).__name__,
    "base": type(AutoModel.from_pretrained(path)).__name__,
    "clf": type(AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)).__name__,
    "lm": type(lm).__name__,
    "module": type(lm).__module__,
    "logits": lm(ids).logits.tolist(),
    # PEP 562 attributes are the module's classes, and remote-code registration happened too
    "same": [getattr(hf_scratch_gpt, name) is getattr(sys.modules[module], name) for name, module in (
        ("ScratchGPTConfig", "hf_scratch_gpt.configuration_scratch_gpt"),
        *((name, "hf_scratch_gpt.modeling_scratch_gpt") for name in (
            "ScratchGPTPreTrainedModel", "ScratchGPTModel", "ScratchGPTForCausalLM",
            "ScratchGPTForSequenceClassification")))],
    "auto_classes": [cls._auto_class for cls in (type(lm.config), type(lm))],
}))
"""


@pytest.mark.parametrize(
    "before, after, model_may_be_loaded",
    [
        ("", "", False),  # nothing of transformers imported yet: the finder registers later
        ("import transformers.models.auto.modeling_auto", "", True),  # Auto modules first: registers at once
        (
            "",
            "from transformers import GPT2LMHeadModel",
            True,
        ),  # Auto modules imported mid-way by transformers
    ],
    ids=["plain", "auto-modules-first", "gpt2-after"],
)
def test_auto_classes_load_a_checkpoint_after_import_hf_scratch_gpt(
    checkpoint, before, after, model_may_be_loaded
):
    path, ids, logits = checkpoint
    code = (
        AUTO_ROUND_TRIP.replace("{before}", before)
        .replace("{after}", after)
        .replace("{model_may_be_loaded}", str(model_may_be_loaded))
    )
    out = json.loads(run_python(code, str(path), json.dumps(ids.tolist())).strip().splitlines()[-1])
    assert out["config"] == "ScratchGPTConfig"
    assert [out["base"], out["lm"], out["clf"]] == [
        "ScratchGPTModel",
        "ScratchGPTForCausalLM",
        "ScratchGPTForSequenceClassification",
    ]
    assert (
        out["module"] == "hf_scratch_gpt.modeling_scratch_gpt"
    )  # our installed code, not a remote-code copy
    torch.testing.assert_close(torch.tensor(out["logits"]), logits, rtol=0, atol=1e-6)
    assert out["same"] == [True] * 5
    assert out["auto_classes"] == ["AutoConfig", "AutoModelForCausalLM"]


def test_unknown_package_attribute_is_an_attribute_error():
    import hf_scratch_gpt

    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        hf_scratch_gpt.NoSuchThing  # noqa: B018
    from hf_scratch_gpt import bpe  # a submodule still imports through `from package import name`

    assert bpe.__name__ == "hf_scratch_gpt.bpe"


def test_saved_checkpoint_carries_auto_map_and_code(checkpoint):
    path, _, _ = checkpoint
    auto_map = json.loads((path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoConfig"] == "configuration_scratch_gpt.ScratchGPTConfig"
    assert auto_map["AutoModelForCausalLM"] == "modeling_scratch_gpt.ScratchGPTForCausalLM"
    assert (path / "modeling_scratch_gpt.py").is_file() and (path / "configuration_scratch_gpt.py").is_file()
