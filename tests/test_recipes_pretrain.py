"""recipes/pretrain.py end to end on tiny local text: outputs, reloading, honest per-character metrics, resume."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO_ROOT
from huggingface_hub import ModelCard
from recipe_helpers import FAST_ARGS, ascii_text, load_recipe, run_recipe
from transformers import AutoModelForCausalLM, AutoTokenizer

import hf_scratch_gpt  # noqa: F401  (registers the Auto classes)

pretrain = load_recipe("pretrain")

TINY = [
    "--model_size",
    "tiny",
    "--vocab_size",
    "300",
    "--block_size",
    "32",
    "--per_device_train_batch_size",
    "4",
]


@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    text = ascii_text(24_000)
    lines = text.splitlines(keepends=True)
    cut = int(len(lines) * 0.9)
    (folder / "train.txt").write_text("".join(lines[:cut]), encoding="utf-8")
    (folder / "validation.txt").write_text("".join(lines[cut:]), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def finished_run(text_files, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("run") / "pretrain"
    args = [
        "--train_file", str(text_files / "train.txt"), "--validation_file", str(text_files / "validation.txt"),
        *TINY, "--max_steps", "6", "--eval_steps", "3", "--save_steps", "3", "--output_dir", str(output_dir),
        "--bf16", "false",  # float32, so the hand computation below matches to 1e-4
        *FAST_ARGS,
    ]  # fmt: skip
    return output_dir, run_recipe(pretrain, args)


def test_output_folder_is_complete_and_reloads(finished_run):
    output_dir, metrics = finished_run
    for name in (
        "model.safetensors", "config.json", "modeling_scratch_gpt.py", "configuration_scratch_gpt.py",
        "tokenizer.json", "tokenizer_config.json", "generation_config.json", "all_results.json", "README.md",
        "loss.png", "trainer_state.json",
    ):  # fmt: skip
        assert (output_dir / name).is_file(), name
    assert (output_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((output_dir / "all_results.json").read_text())
    for key in ("eval_loss", "eval_perplexity", "eval_nats_per_char", "eval_bits_per_byte", "world_size"):
        assert math.isfinite(saved[key]), key
    assert saved["global_step"] == 6 and saved["world_size"] == 1
    assert saved["eval_perplexity"] == pytest.approx(math.exp(saved["eval_loss"]))
    model = AutoModelForCausalLM.from_pretrained(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert type(model).__name__ == "ScratchGPTForCausalLM" and len(tokenizer) == model.config.vocab_size
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id


def test_model_card_has_hub_metadata(finished_run):
    output_dir, metrics = finished_run
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    assert "nats_per_char" in card.data.metrics
    values = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert values["eval_nats_per_char"] == pytest.approx(metrics["eval_nats_per_char"])
    assert "recipes/pretrain.py" in card.text and "--max_steps 6" in card.text


def test_nats_per_char_matches_a_hand_computed_value(finished_run, text_files):
    """Recompute from scratch: cut the validation tokens into blocks, sum the loss, divide by the characters."""
    output_dir, metrics = finished_run
    model = AutoModelForCausalLM.from_pretrained(output_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    lines = (text_files / "validation.txt").read_text().splitlines(keepends=True)
    ids = [
        token for line in lines for token in tokenizer(line)["input_ids"]
    ]  # rows are lines, no EOS between
    blocks = torch.tensor([ids[i : i + 32] for i in range(0, len(ids) // 32 * 32, 32)])
    with torch.no_grad():
        logits = model(blocks).logits[:, :-1]
    total_nats = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), blocks[:, 1:].flatten(), reduction="sum"
    )
    n_chars = sum(len(tokenizer.decode(block[1:])) for block in blocks.tolist())  # ASCII text: chars == bytes
    assert metrics["eval_loss"] == pytest.approx(total_nats.item() / blocks[:, 1:].numel(), rel=1e-4)
    assert metrics["eval_nats_per_char"] == pytest.approx(total_nats.item() / n_chars, rel=1e-4)
    assert metrics["eval_bits_per_byte"] == pytest.approx(total_nats.item() / math.log(2) / n_chars, rel=1e-4)


def test_default_corpus_run_prints_a_sample(tmp_path, capsys):
    metrics = run_recipe(
        pretrain,
        [*TINY, "--max_steps", "2", "--eval_steps", "2", "--output_dir", str(tmp_path / "o"), *FAST_ARGS],
    )
    assert math.isfinite(metrics["eval_nats_per_char"])
    assert "===== sample" in capsys.readouterr().out
    assert "default corpus" in (tmp_path / "o" / "README.md").read_text()


def test_refuses_an_output_folder_holding_another_run(finished_run, text_files):
    output_dir, _ = finished_run
    with pytest.raises(FileExistsError, match="already holds another run.*--overwrite_output_dir"):
        run_recipe(
            pretrain, ["--train_file", str(text_files / "train.txt"), *TINY, "--output_dir", str(output_dir)]
        )


def test_block_size_above_the_context_is_an_error(text_files, tmp_path):
    args = ["--train_file", str(text_files / "train.txt"), "--model_size", "tiny", "--vocab_size", "300"]
    with pytest.raises(
        ValueError, match=r"--block_size 256 is above the model's context \(n_positions 128\)"
    ):
        run_recipe(pretrain, [*args, "--block_size", "256", "--output_dir", str(tmp_path / "o")])


def test_missing_text_column_lists_the_columns_found(tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text('{"body": "some text"}\n{"body": "more text"}\n')
    with pytest.raises(ValueError, match=r"column\(s\) \['text'\] not found.*\['body'\].*--text_column_name"):
        run_recipe(pretrain, ["--train_file", str(data), *TINY, "--output_dir", str(tmp_path / "o")])


def test_empty_training_file_is_an_error(tmp_path):
    data = tmp_path / "empty.txt"
    data.write_text("")
    with pytest.raises(ValueError, match="train split of .*empty.txt is empty"):
        run_recipe(pretrain, ["--train_file", str(data), *TINY, "--output_dir", str(tmp_path / "o")])


def test_too_little_validation_text_for_one_block_is_an_error(text_files, tmp_path):
    (tmp_path / "v.txt").write_text("a few words\n")
    args = ["--train_file", str(text_files / "train.txt"), "--validation_file", str(tmp_path / "v.txt")]
    with pytest.raises(ValueError, match="validation text has fewer than --block_size=32 tokens"):
        run_recipe(pretrain, [*args, *TINY, "--output_dir", str(tmp_path / "o"), *FAST_ARGS])


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no complete checkpoint"):
        run_recipe(pretrain, [*TINY, "--output_dir", str(tmp_path / "o"), "--resume_from_checkpoint", "last"])


def test_killed_run_resumes_to_the_same_step_count(text_files, tmp_path):
    """SIGKILL a run right after its first checkpoint, resume it, and compare with an uninterrupted run."""
    args = [
        "--train_file", str(text_files / "train.txt"), "--validation_file", str(text_files / "validation.txt"),
        *TINY, "--max_steps", "24", "--save_steps", "5", "--eval_strategy", "no", *FAST_ARGS,
    ]  # fmt: skip
    killed_dir = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "recipes" / "pretrain.py"), *args, "--output_dir", str(killed_dir)],
        env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not (killed_dir / "checkpoint-5" / "trainer_state.json").is_file():
        assert process.poll() is None and time.monotonic() < deadline, (
            "the run ended before its first checkpoint"
        )
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed_dir / "checkpoint-24").exists(), "the run finished before it could be killed"
    assert not (killed_dir / "model.safetensors").exists()

    resumed = run_recipe(
        pretrain, [*args, "--output_dir", str(killed_dir), "--resume_from_checkpoint", "last"]
    )
    uninterrupted = run_recipe(pretrain, [*args, "--output_dir", str(tmp_path / "whole")])
    assert resumed["global_step"] == uninterrupted["global_step"] == 24
    assert 5 <= resumed["resumed_from_step"] < 24
    assert math.isfinite(resumed["eval_loss"])
    # Restored weights, optimizer, scheduler, RNG and data position: the same training as without the kill.
    assert resumed["eval_loss"] == pytest.approx(uninterrupted["eval_loss"], rel=1e-3)


def test_time_budget_stops_training(text_files, tmp_path):
    args = [
        "--train_file", str(text_files / "train.txt"), *TINY, "--max_train_seconds", "3", "--max_steps", "100000",
        "--eval_strategy", "no", "--save_strategy", "no", "--output_dir", str(tmp_path / "o"), *FAST_ARGS,
    ]  # fmt: skip
    metrics = run_recipe(pretrain, args)
    assert metrics["stopped_by_time_budget"] and 1 <= metrics["global_step"] < 100000
    assert metrics["train_runtime"] >= 3


def test_time_budget_schedule_follows_the_clock(tmp_path):
    """The learning rate is a function of the elapsed fraction of the budget, not of the step count."""
    from datasets import Dataset
    from transformers import TrainingArguments

    from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM
    from hf_scratch_gpt.training.trainer import RecipeTrainer

    config = ScratchGPTConfig(
        vocab_size=10, n_positions=8, n_embd=8, n_layer=1, n_head=1, bos_token_id=0, eos_token_id=0
    )
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, learning_rate=1e-2, warmup_steps=2, lr_scheduler_type="cosine",
        max_steps=10**6, report_to="none",
    )  # fmt: skip
    data = Dataset.from_dict({"input_ids": [[1, 2, 3]], "labels": [[1, 2, 3]]})
    trainer = RecipeTrainer(
        model=ScratchGPTForCausalLM(config), args=args, train_dataset=data, max_train_seconds=100
    )
    trainer.create_optimizer_and_scheduler(num_training_steps=10**6)
    scheduler, budget = trainer.lr_scheduler, trainer.time_budget
    rates = []
    for elapsed in (0, 0, 0, 25, 50, 100):  # steps 1..6 at these elapsed times
        budget.elapsed = elapsed
        trainer.optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    expected = [5e-3, 1e-2, 1e-2, 1e-2 * 0.5 * (1 + math.cos(math.pi / 4)), 5e-3, 0.0]
    assert rates == pytest.approx(expected, abs=1e-9)
