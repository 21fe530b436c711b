"""The README's three commands: pretrain -> instruct-finetune on the built-in task set -> the Space on Chat.

The default test runs them on tiny settings (seconds); the slow test runs them exactly as the README does, with no
tuning flags, and checks the targets: >= 90% of the held-out built-in instructions answered exactly, >= 90% of the
last turns of held-out conversations and >= 95% of the single-turn records.
"""

import json

import pytest
from recipe_helpers import FAST_ARGS, load_recipe, run_recipe
from space_helpers import load_app

pretrain = load_recipe("pretrain")
instruct = load_recipe("finetune_instruct")


def test_three_commands_on_tiny_settings(tmp_path):
    base, chat = tmp_path / "pretrain", tmp_path / "instruct"
    tiny = ["--model_size", "tiny", "--vocab_size", "300", "--block_size", "32", "--max_steps", "4"]
    run_recipe(pretrain, [*tiny, "--eval_steps", "4", "--output_dir", str(base), *FAST_ARGS])
    recorded = json.loads((base / "all_results.json").read_text())
    assert recorded["train_tokens_seen"] == 4 * 16 * 32  # steps x batch (pretrain's default 16) x block
    small = [
        "--max_steps",
        "3",
        "--task_train_examples",
        "30",
        "--task_eval_examples",
        "5",
        "--max_new_tokens",
        "6",
    ]
    metrics = run_recipe(
        instruct, ["--model_name_or_path", str(base), "--output_dir", str(chat), *small, *FAST_ARGS]
    )
    # the default learning rate is the one the base recorded (pretrain.py's 2e-3)
    assert recorded["learning_rate"] == 2e-3 and metrics["learning_rate"] == pytest.approx(2e-3)
    assert metrics["test_num_responses"] == 5 and "test_exact_match" in metrics
    app = load_app()
    for folder, opens_on in ((base, "complete"), (chat, "chat")):
        model, tokenizer = app.load_checkpoint(str(folder), "causal")
        (tabs,) = [c for c in app.build_demo(model, tokenizer).config["components"] if c["type"] == "tabs"]
        assert tabs["props"]["selected"] == opens_on


@pytest.mark.slow
def test_three_commands_as_the_readme_gives_them(tmp_path):
    """About 5 minutes on 2 cores: the README's commands with no tuning flags (only the folders differ)."""
    base, chat = tmp_path / "pretrain", tmp_path / "instruct"
    run_recipe(pretrain, ["--output_dir", str(base)])
    metrics = run_recipe(instruct, ["--model_name_or_path", str(base), "--output_dir", str(chat)])
    assert metrics["test_num_responses"] == 200
    assert metrics["test_exact_match"] >= 0.90
    # the last turn of held-out conversations, and the single-turn records kept where they were
    assert metrics["test_exact_match_multiturn"] >= 0.90 and metrics["test_exact_match_singleturn"] >= 0.95
    assert metrics["test_eos_rate"] == 1.0
    model, tokenizer = load_app().load_checkpoint(str(chat), "causal")
    assert model.config.chat_finetuned is True
