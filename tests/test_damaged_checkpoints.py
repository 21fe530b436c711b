"""Damaged checkpoints and starting points that do not fit the stage.

A checkpoint copied halfway or edited by mistake must be an error naming the file, saying how it is damaged and
what to do, wherever it is loaded: `from_pretrained` of our classes (also as remote code), `load_causal_lm`,
every recipe (start model, tokenizer, resume), `convert` and the Space. A classifier folder without a trained head
must be refused by the Space, and DPO from a model that is not chat-finetuned must warn.

Each damage is made here from a whole file, so what the message must say is known independently of the checker:
the whole file's size is the size a truncated copy should have had.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest
from recipe_helpers import (
    FAST_ARGS,
    ascii_text,
    instruction_records,
    labelled_rows,
    preference_records,
    run_recipe,
    write_jsonl,
)
from recipe_helpers import (
    TINY_PRETRAIN as TINY,
)
from space_helpers import load_app
from transformers import AutoModelForSequenceClassification

from hf_scratch_gpt import ScratchGPTForCausalLM
from hf_scratch_gpt.convert import main as convert_main
from hf_scratch_gpt.model.checkpoint_files import check_checkpoint_files
from hf_scratch_gpt.model.gpt2 import load_causal_lm

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny pretrain run (model, tokenizer, one checkpoint at step 2), its arguments, and data for every recipe."""
    root = tmp_path_factory.mktemp("damaged")
    text = root / "train.txt"
    text.write_text(ascii_text(6000), encoding="utf-8")
    args = [
        "--train_file",
        str(text),
        *TINY,
        "--max_steps",
        "2",
        "--save_steps",
        "2",
        "--eval_strategy",
        "no",
    ]
    out = root / "pretrain"
    run_recipe("pretrain", [*args, "--output_dir", str(out), *FAST_ARGS])
    data = {
        "pretrain": text,
        "finetune_classifier": write_jsonl(root / "labels.jsonl", labelled_rows(20)),
        "finetune_instruct": write_jsonl(root / "instruct.jsonl", instruction_records(24)),
        "finetune_preference": write_jsonl(root / "pairs.jsonl", preference_records(40)),
    }
    return out, args, data


def truncate(path: Path) -> tuple[int, int]:
    """Cut `path` to half its size, as an interrupted copy does; return (whole size, size left)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return len(data), len(data) // 2


def break_a_merge(folder: Path) -> None:
    """Make tokenizer.json's first merge name a token its vocabulary does not hold (still valid JSON)."""
    path = folder / "tokenizer.json"
    content = json.loads(path.read_text(encoding="utf-8"))
    content["model"]["merges"][0] = ["zzzq", "x"]
    path.write_text(json.dumps(content), encoding="utf-8")


def damaged_copy(source: Path, target: Path, damage: str) -> tuple[Path, str]:
    """A copy of the checkpoint `source` with one damage; the folder and a regex of what the error must say."""
    shutil.copytree(source, target)
    weights, tokenizer = target / "model.safetensors", target / "tokenizer.json"
    if damage == "truncated weights":
        whole, left = truncate(weights)
        said = rf"is damaged \(truncated\): expected {whole:,} bytes, found {left:,}; copy it again"
    elif damage == "corrupt weights":  # the header overwritten: not even its length is right
        weights.write_bytes(bytes(range(256)) * 4 + weights.read_bytes()[1024:])
        said = "is damaged: it does not start with a safetensors header; copy it again"
    elif damage == "truncated tokenizer.json":
        _, left = truncate(tokenizer)
        said = (
            rf"is damaged: not valid JSON .* It ends mid-way, after {left:,} bytes: cut short\. Copy it again"
        )
    else:
        break_a_merge(target)
        said = r"is damaged: tokenizers cannot build a tokenizer from it \(Token `zzzq` out of vocabulary.*Copy it"
    damaged = weights if "weights" in damage else tokenizer
    return target, f"{re.escape(str(damaged))} {said}"


# ---------------------------------------------------------------- from_pretrained, load_causal_lm, the checker


@pytest.mark.parametrize("damage", ["truncated weights", "corrupt weights"])
@pytest.mark.parametrize(
    "load",
    [
        ScratchGPTForCausalLM.from_pretrained,
        AutoModelForSequenceClassification.from_pretrained,  # a new head on a damaged body
        load_causal_lm,
    ],
    ids=["ScratchGPTForCausalLM", "AutoModelForSequenceClassification", "load_causal_lm"],
)
def test_loading_damaged_weights_names_the_file(pretrained, tmp_path, damage, load):
    folder, message = damaged_copy(pretrained[0], tmp_path / "copy", damage)
    with pytest.raises(ValueError, match=message):
        load(str(folder))


def test_an_intact_checkpoint_passes_the_check(pretrained):
    out, _, _ = pretrained
    check_checkpoint_files(out)
    check_checkpoint_files(out / "checkpoint-2")


@pytest.mark.slow  # a fresh interpreter importing transformers: 10-30 s
def test_the_modeling_code_saved_with_the_checkpoint_names_the_file(pretrained, tmp_path):
    """Where hf_scratch_gpt is not installed, the check runs from the checkpoint's own modeling_scratch_gpt.py."""
    folder, message = damaged_copy(pretrained[0], tmp_path / "copy", "truncated weights")
    script = f"""
import sys
sys.modules["hf_scratch_gpt"] = None  # makes `import hf_scratch_gpt` raise ImportError
from transformers import AutoModelForCausalLM
try:
    AutoModelForCausalLM.from_pretrained({str(folder)!r}, trust_remote_code=True)
except Exception as err:
    print(type(err).__name__, err)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ValueError ")
    assert re.search(message, proc.stdout)


# ---------------------------------------------------------------- the recipes


RECIPES = ("pretrain", "finetune_classifier", "finetune_instruct", "finetune_preference")


@pytest.mark.parametrize("damage", ["truncated weights", "truncated tokenizer.json", "bad merges"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_names_a_damaged_start_model_before_writing_anything(
    pretrained, tmp_path, recipe, damage
):
    if recipe == "finetune_preference":
        pytest.importorskip("trl")
    out, _, data = pretrained
    folder, message = damaged_copy(out, tmp_path / "start", damage)
    output_dir = tmp_path / "out"
    args = ["--model_name_or_path", str(folder), "--train_file", str(data[recipe]), "--max_steps", "1"]
    with pytest.raises(ValueError, match=message):
        run_recipe(recipe, [*args, "--output_dir", str(output_dir), *FAST_ARGS])
    assert not output_dir.exists()  # checked before the run folder is made: a retry needs no --overwrite


def test_pretrain_names_a_damaged_tokenizer_name(pretrained, tmp_path):
    out, _, data = pretrained
    folder, message = damaged_copy(out, tmp_path / "tokenizer", "bad merges")
    args = ["--tokenizer_name", str(folder), "--train_file", str(data["pretrain"]), *TINY, "--max_steps", "1"]
    with pytest.raises(ValueError, match=message):
        run_recipe("pretrain", [*args, "--output_dir", str(tmp_path / "out"), *FAST_ARGS])


@pytest.mark.parametrize("damage", ["truncated weights", "truncated tokenizer.json"])
def test_resume_names_a_damaged_checkpoint(pretrained, tmp_path, damage):
    out, args, _ = pretrained
    run = tmp_path / "run"
    shutil.copytree(out, run, ignore=shutil.ignore_patterns("checkpoint-*"))
    _, message = damaged_copy(out / "checkpoint-2", run / "checkpoint-2", damage)
    before = {path: path.stat().st_mtime_ns for path in run.rglob("*")}
    with pytest.raises(ValueError, match=message):
        run_recipe(
            "pretrain", [*args, "--output_dir", str(run), "--resume_from_checkpoint", "last", *FAST_ARGS]
        )
    assert {path: path.stat().st_mtime_ns for path in run.rglob("*")} == before  # nothing written


# ---------------------------------------------------------------- convert


def test_convert_names_damaged_weights_both_ways(pretrained, tmp_path):
    out, _, _ = pretrained
    ours, message = damaged_copy(out, tmp_path / "ours", "truncated weights")
    with pytest.raises(ValueError, match=message):
        convert_main(["--to_gpt2", str(ours), "--output_dir", str(tmp_path / "as-gpt2")])
    assert not (tmp_path / "as-gpt2").exists()

    convert_main(["--to_gpt2", str(out), "--output_dir", str(tmp_path / "gpt2")])
    gpt2, message = damaged_copy(tmp_path / "gpt2", tmp_path / "gpt2-copy", "truncated weights")
    with pytest.raises(ValueError, match=message):
        convert_main(["--from_gpt2", str(gpt2), "--output_dir", str(tmp_path / "back")])
    assert not (tmp_path / "back").exists()


def test_convert_names_bad_merges(pretrained, tmp_path):
    folder, message = damaged_copy(pretrained[0], tmp_path / "copy", "bad merges")
    with pytest.raises(ValueError, match=message + r".*delete the tokenizer files"):
        convert_main(["--to_gpt2", str(folder), "--output_dir", str(tmp_path / "gpt2")])


# ---------------------------------------------------------------- the Space


@pytest.mark.parametrize("damage", ["truncated weights", "truncated tokenizer.json", "bad merges"])
def test_space_start_up_names_a_damaged_model_without_a_traceback(pretrained, tmp_path, capsys, damage):
    folder, message = damaged_copy(pretrained[0], tmp_path / "copy", damage)
    with pytest.raises(SystemExit) as exit_info:
        load_app().main(["--model", str(folder)])  # before any server is launched
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: could not load causal checkpoint '{folder}': ")
    assert re.search(message, err) and "Traceback" not in err


def launched_demo(monkeypatch, argv: list[str]) -> gr.Blocks:
    """The Blocks app `main(argv)` would serve (launch replaced, so no server starts)."""
    demos = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, *args, **kwargs: demos.append(self))
    load_app().main(argv)
    (demo,) = demos
    return demo


def classify_tab(demo: gr.Blocks) -> tuple[list[str], bool]:
    """The Classify tab's texts, and whether the app has a /classify endpoint."""
    config = demo.config
    components = {c["id"]: c for c in config["components"]}
    (tab,) = [c for c in components.values() if c["type"] == "tabitem" and c["props"].get("id") == "classify"]

    def texts(node) -> list[str]:
        component = components.get(node["id"], {})
        own = [component["props"].get("value") or ""] if component.get("type") == "markdown" else []
        return own + [text for child in node.get("children", []) for text in texts(child)]

    def find(node):
        if node["id"] == tab["id"]:
            return node
        return next((found for child in node.get("children", []) if (found := find(child))), None)

    endpoints = {d.get("api_name") for d in config["dependencies"]}
    return texts(find(config["layout"])), "classify" in endpoints


def test_space_refuses_a_classifier_without_a_trained_head(pretrained, monkeypatch, capsys):
    """A language model passed as --classifier: from_pretrained would give it a random `score` head."""
    out, _, _ = pretrained
    _, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert "score.weight" in info["missing_keys"]  # the premise: transformers initialises that head at random
    demo = launched_demo(monkeypatch, ["--model", str(out), "--classifier", str(out)])
    texts, has_endpoint = classify_tab(demo)
    assert not has_endpoint  # nothing to classify with: no made-up probabilities
    (shown,) = texts
    assert shown.startswith("**The classifier cannot be used.** ")
    assert f"{out} has no trained classification head: its weights hold no score.weight" in shown
    assert "saved as ScratchGPTForCausalLM" in shown and "recipes/finetune_classifier.py" in shown
    assert "no trained classification head" in capsys.readouterr().err  # and the log says so at start-up
    with pytest.raises(RuntimeError, match="has no trained classification head"):
        load_app().load_checkpoint(str(out), "classify")


def test_space_shows_a_damaged_classifier_in_the_classify_tab(pretrained, tmp_path, monkeypatch):
    out, _, _ = pretrained
    folder, message = damaged_copy(out, tmp_path / "classifier", "truncated weights")
    texts, has_endpoint = classify_tab(
        launched_demo(monkeypatch, ["--model", str(out), "--classifier", str(folder)])
    )
    assert not has_endpoint
    (shown,) = texts
    assert re.search(message, shown)


# ---------------------------------------------------------------- DPO from a model that is not chat-finetuned


def test_dpo_from_a_base_model_warns_in_the_log_results_and_card(pretrained, tmp_path, caplog):
    pytest.importorskip("trl")
    out, _, data = pretrained
    output_dir = tmp_path / "dpo"
    args = ["--model_name_or_path", str(out), "--train_file", str(data["finetune_preference"]), "--max_steps", "1",
            "--num_generate", "1", "--max_new_tokens", "2", "--bf16", "false", "--output_dir", str(output_dir)]  # fmt: skip
    with caplog.at_level("WARNING", logger="finetune_preference"):
        metrics = run_recipe("finetune_preference", [*args, *FAST_ARGS])
    warning = f"the start model {out} is not chat-finetuned"
    assert any(r.levelname == "WARNING" and warning in r.getMessage() for r in caplog.records)
    assert json.loads((output_dir / "all_results.json").read_text())["start_model_warning"].startswith(
        warning
    )
    assert metrics["start_model_warning"].startswith(warning)
    card = (output_dir / "README.md").read_text()
    assert f"**Warning:** {warning}" in card and "recipes/finetune_instruct.py --model_name_or_path" in card


def test_dpo_from_a_chat_finetuned_model_does_not_warn(pretrained):
    pytest.importorskip("trl")
    from transformers import AutoConfig

    from recipes.finetune_preference import not_chat_finetuned_warning

    config = AutoConfig.from_pretrained(pretrained[0])
    assert not_chat_finetuned_warning(config, "base") is not None
    config.chat_finetuned = True  # what recipes/finetune_instruct.py records
    assert not_chat_finetuned_warning(config, "chat") is None
