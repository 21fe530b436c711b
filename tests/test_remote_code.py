"""Saved checkpoints used the Hub way: trust_remote_code in a process where hf_scratch_gpt cannot be imported, and
transformers pipelines on our checkpoints."""

import json
import os
import subprocess
import sys

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import PreTrainedTokenizerFast, pipeline

from hf_scratch_gpt.model.configuration_scratch_gpt import ScratchGPTConfig
from hf_scratch_gpt.model.modeling_scratch_gpt import (
    ScratchGPTForCausalLM,
    ScratchGPTForSequenceClassification,
)

LABELS = {0: "ham", 1: "spam"}

# Runs in a fresh interpreter. `sys.modules[name] = None` makes `import hf_scratch_gpt` fail even though the package
# is installed in this venv, so everything below must come from the code files saved with the checkpoints.
REMOTE_SCRIPT = r"""
import json, sys
sys.modules["hf_scratch_gpt"] = None
try:
    import hf_scratch_gpt
    hidden = False
except ImportError:
    hidden = True
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

lm_dir, clf_dir, ids = sys.argv[1], sys.argv[2], torch.tensor(json.loads(sys.argv[3]))
lm = AutoModelForCausalLM.from_pretrained(lm_dir, trust_remote_code=True).eval()
clf = AutoModelForSequenceClassification.from_pretrained(clf_dir, trust_remote_code=True).eval()
# a head that was not the saved one: works because auto_map lists every class
new_head = AutoModelForSequenceClassification.from_pretrained(lm_dir, trust_remote_code=True, num_labels=3)
base = AutoModel.from_pretrained(lm_dir, trust_remote_code=True)
print(json.dumps({
    "hidden": hidden,
    "modules": [type(m).__module__ for m in (lm, clf, new_head, base, AutoConfig.from_pretrained(lm_dir, trust_remote_code=True))],
    "classes": [type(m).__name__ for m in (lm, clf, new_head, base)],
    "logits": lm(ids).logits.tolist(),
    "generated": lm.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False).tolist(),
    "clf_logits": clf(ids).logits.tolist(),
    "id2label": clf.config.id2label,
    "new_head_logits_shape": list(new_head(ids).logits.shape),
}))
"""


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    bpe = ByteLevelBPETokenizer()
    text = ["free prize! call now to claim your reward. ", "see you at lunch tomorrow, ok? "] * 10
    bpe.train_from_iterator(
        text, vocab_size=320, min_frequency=1, special_tokens=["<|endoftext|>"], show_progress=False
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tokenizer) -> dict:
    """A causal LM and a classifier saved with their tokenizer, as `save_pretrained` writes them."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    config = ScratchGPTConfig(
        n_layer=2,
        n_head=2,
        n_embd=32,
        vocab_size=len(tokenizer),
        n_positions=64,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=tokenizer.pad_token_id,
    )
    lm = ScratchGPTForCausalLM(config).eval()
    lm.save_pretrained(root / "lm")
    tokenizer.save_pretrained(root / "lm")
    clf = ScratchGPTForSequenceClassification.from_pretrained(
        root / "lm", id2label=LABELS, label2id={v: k for k, v in LABELS.items()}
    ).eval()
    clf.save_pretrained(root / "clf")
    tokenizer.save_pretrained(root / "clf")
    return {"lm": lm, "clf": clf, "lm_dir": root / "lm", "clf_dir": root / "clf"}


def test_saved_checkpoint_carries_code_and_full_auto_map(checkpoints):
    for folder in (checkpoints["lm_dir"], checkpoints["clf_dir"]):
        files = {p.name for p in folder.iterdir()}
        assert {"configuration_scratch_gpt.py", "modeling_scratch_gpt.py", "model.safetensors"} <= files
        assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
        auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
        assert auto_map == {
            "AutoConfig": "configuration_scratch_gpt.ScratchGPTConfig",
            "AutoModel": "modeling_scratch_gpt.ScratchGPTModel",
            "AutoModelForCausalLM": "modeling_scratch_gpt.ScratchGPTForCausalLM",
            "AutoModelForSequenceClassification": "modeling_scratch_gpt.ScratchGPTForSequenceClassification",
        }


def test_trust_remote_code_loads_without_the_package(checkpoints, tmp_path):
    ids = [[3, 17, 42, 5, 99, 7], [8, 1, 250, 31, 4, 60]]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            REMOTE_SCRIPT,
            str(checkpoints["lm_dir"]),
            str(checkpoints["clf_dir"]),
            json.dumps(ids),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["hidden"], "hf_scratch_gpt was importable in the remote-code process"
    assert all(module.startswith("transformers_modules") for module in remote["modules"]), remote["modules"]
    assert remote["classes"] == [
        "ScratchGPTForCausalLM",
        "ScratchGPTForSequenceClassification",
        "ScratchGPTForSequenceClassification",
        "ScratchGPTModel",
    ]
    # the remote code was cached under the temporary HF_HOME, not the user's
    assert (tmp_path / "hf_home" / "modules" / "transformers_modules").is_dir()

    x = torch.tensor(ids)
    lm, clf = checkpoints["lm"], checkpoints["clf"]
    torch.testing.assert_close(torch.tensor(remote["logits"]), lm(x).logits, rtol=0, atol=1e-5)
    settings = dict(max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert remote["generated"] == lm.generate(x, attention_mask=torch.ones_like(x), **settings).tolist()
    torch.testing.assert_close(torch.tensor(remote["clf_logits"]), clf(x).logits, rtol=0, atol=1e-5)
    assert {int(k): v for k, v in remote["id2label"].items()} == LABELS
    assert remote["new_head_logits_shape"] == [2, 3]


def test_text_generation_pipeline(checkpoints, tokenizer):
    generator = pipeline("text-generation", model=str(checkpoints["lm_dir"]))
    prompt = "free prize"
    out = generator(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, return_full_text=False)
    inputs = tokenizer(prompt, return_tensors="pt")
    expected = checkpoints["lm"].generate(**inputs, max_new_tokens=12, min_new_tokens=12, do_sample=False)
    assert out[0]["generated_text"] == tokenizer.decode(expected[0, inputs.input_ids.shape[1] :])


def test_text_classification_pipeline(checkpoints, tokenizer):
    classifier = pipeline("text-classification", model=str(checkpoints["clf_dir"]))
    texts = ["free prize! call now", "see you at lunch"]
    predictions = classifier(texts, top_k=None)
    for text, scores in zip(texts, predictions, strict=True):
        probs = checkpoints["clf"](**tokenizer(text, return_tensors="pt")).logits.softmax(-1)[0]
        got = {entry["label"]: entry["score"] for entry in scores}
        assert set(got) == {"ham", "spam"}
        assert got["ham"] == pytest.approx(probs[0].item(), abs=1e-5)
        assert got["spam"] == pytest.approx(probs[1].item(), abs=1e-5)
