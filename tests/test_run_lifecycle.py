"""The run lifecycle (hf_scratch_gpt.training.run) and the parse-once arguments, on real recipe runs.

Each case here was a way to lose or mix a user's work: resuming another recipe's checkpoint, an overwrite that
deleted the model the run starts from, stale files of an overwritten run, `convert` writing over a run, and a
damaged tokenizer silently dropped by `convert`.
"""

import json
import shutil

import pytest
from recipe_helpers import FAST_ARGS, ascii_text, instruction_records, load_recipe, run_recipe, write_jsonl
from recipe_helpers import TINY_PRETRAIN as TINY
from transformers import TrainingArguments

from hf_scratch_gpt.convert import main as convert_main
from hf_scratch_gpt.data.arguments import DataArguments
from hf_scratch_gpt.training.arguments import ModelArguments, RunArguments, parse_recipe_args
from hf_scratch_gpt.training.run import RUN_RECORD, checkpoints, prepare_run_folder


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny pretrain run with two checkpoints, and a text file to train on."""
    root = tmp_path_factory.mktemp("lifecycle")
    text = root / "train.txt"
    text.write_text(ascii_text(6000), encoding="utf-8")
    out = root / "pretrain"
    args = [
        "--train_file",
        str(text),
        *TINY,
        "--max_steps",
        "4",
        "--save_steps",
        "2",
        "--eval_strategy",
        "no",
    ]
    run_recipe("pretrain", [*args, "--output_dir", str(out), *FAST_ARGS])
    return root, out, args


def instruct_args(root, base, out, *extra):
    data = write_jsonl(root / "instruct.jsonl", instruction_records(24))
    return ["--model_name_or_path", str(base), "--train_file", str(data), "--max_steps", "2", "--num_generate", "2",
            "--max_new_tokens", "4", "--output_dir", str(out), *FAST_ARGS, *extra]  # fmt: skip


def copy_run(source, target):
    shutil.copytree(source, target)
    return target


def test_resume_refuses_another_recipes_checkpoint(pretrained, tmp_path):
    root, out, _ = pretrained
    folder = copy_run(out, tmp_path / "pretrain")
    before = sorted(p.name for p in folder.rglob("*"))
    with pytest.raises(
        ValueError, match=r"checkpoint-4 is a checkpoint of pretrain .*not of finetune_instruct"
    ):
        run_recipe(
            "finetune_instruct", instruct_args(root, folder, folder, "--resume_from_checkpoint", "last")
        )
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing written or deleted


def test_resume_continues_its_own_run(pretrained, tmp_path):
    root, out, args = pretrained
    folder = copy_run(out, tmp_path / "pretrain")
    shutil.rmtree(folder / "checkpoint-4")
    metrics = run_recipe("pretrain", [*args, "--output_dir", str(folder), "--resume_from_checkpoint", "last",
                                      *FAST_ARGS])  # fmt: skip
    assert metrics["resumed_from_step"] == 2 and metrics["global_step"] == 4
    assert json.loads((folder / RUN_RECORD).read_text())["recipe"] == "pretrain"


def test_resume_refuses_a_checkpoint_without_a_record(pretrained, tmp_path):
    """A checkpoint saved before runs were recorded: which recipe wrote it is unknown, so it is not resumed."""
    _, out, args = pretrained
    folder = copy_run(out, tmp_path / "old")
    state_file = checkpoints(folder)[-1] / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["stateful_callbacks"]["RunRecord"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="does not record which recipe wrote it"):
        run_recipe("pretrain", [*args, "--output_dir", str(folder), "--resume_from_checkpoint", "last"])


def test_overwrite_never_deletes_the_start_model(pretrained, tmp_path):
    root, out, _ = pretrained
    folder = copy_run(out, tmp_path / "pretrain")
    start = folder / "checkpoint-4"
    with pytest.raises(ValueError, match=r"starts from .*checkpoint-4 inside it"):
        run_recipe("finetune_instruct", instruct_args(root, start, folder, "--overwrite_output_dir"))
    assert (start / "model.safetensors").is_file() and (folder / "model.safetensors").is_file()


def test_an_overwritten_folder_holds_nothing_of_the_old_run(pretrained, tmp_path):
    root, out, _ = pretrained
    target = tmp_path / "instruct"
    run_recipe("finetune_instruct", instruct_args(root, out, target))
    assert (target / "generated_responses.json").is_file()
    (target / "notes-of-the-old-run.txt").write_text("old")
    run_recipe(
        "finetune_instruct", instruct_args(root, out, target, "--overwrite_output_dir", "--num_generate", "0")
    )
    names = {p.name for p in target.iterdir()}
    assert "generated_responses.json" not in names and "notes-of-the-old-run.txt" not in names
    assert json.loads((target / "all_results.json").read_text()).get("test_num_responses") is None
    assert json.loads((target / RUN_RECORD).read_text())["recipe"] == "finetune_instruct"


def test_a_folder_of_other_files_is_never_deleted(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a run"):
            prepare_run_folder("pretrain", folder, overwrite)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_convert_refuses_a_folder_holding_a_run(pretrained, tmp_path):
    _, out, _ = pretrained
    folder = copy_run(out, tmp_path / "run")
    weights = (folder / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already holds another run.*--overwrite_output_dir"):
        convert_main(["--to_gpt2", str(out), "--output_dir", str(folder)])
    assert (folder / "model.safetensors").read_bytes() == weights
    with pytest.raises(ValueError, match="starts from"):  # the source inside the folder it would clear
        convert_main(["--to_gpt2", str(folder), "--output_dir", str(folder), "--overwrite_output_dir"])
    convert_main(["--to_gpt2", str(out), "--output_dir", str(folder), "--overwrite_output_dir"])
    names = {p.name for p in folder.iterdir()}
    assert not any(name.startswith("checkpoint-") for name in names) and "README.md" not in names
    assert json.loads((folder / "config.json").read_text())["model_type"] == "gpt2"


def test_convert_names_a_damaged_tokenizer(pretrained, tmp_path):
    _, out, _ = pretrained
    source = copy_run(out, tmp_path / "source")
    tokenizer_file = source / "tokenizer.json"
    tokenizer_file.write_text(tokenizer_file.read_text()[:1000])  # truncated, as by a failed copy
    with pytest.raises(ValueError, match=r"tokenizer\.json is damaged"):
        convert_main(["--to_gpt2", str(source), "--output_dir", str(tmp_path / "gpt2")])
    assert not (tmp_path / "gpt2").exists()  # checked before anything is written


# ---------------------------------------------------------------- parse once: --config plus flags


def parse(args):
    return parse_recipe_args((ModelArguments, DataArguments, RunArguments, TrainingArguments), {}, args)


def test_config_file_plus_overriding_flags(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: from-file\nlearning_rate: 1.0e-3\nmax_steps: 7\nmodel_size: tiny\n")
    _, _, _, training = parse(["--config", str(config), "--max_steps", "9"])
    assert (training.output_dir, training.learning_rate, training.max_steps) == ("from-file", 1e-3, 9)
    model, _, _, training = parse([f"--config={config}", "--model_size", "mini"])  # = form, other flag
    assert model.model_size == "mini" and training.max_steps == 7
    _, _, _, training = parse([str(config)])  # a lone file argument, as before
    assert training.max_steps == 7


def test_training_arguments_validate_the_final_values(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"output_dir": "o", "eval_strategy": "steps", "load_best_model_at_end": True,
                                  "save_strategy": "steps", "eval_steps": 10, "save_steps": 10}))  # fmt: skip
    parse(["--config", str(config)])  # consistent
    with pytest.raises(
        ValueError, match="round multiple"
    ):  # the flag makes it inconsistent: TrainingArguments says so
        parse(["--config", str(config), "--save_steps", "15"])


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml is not valid YAML"):
        parse(["--config", str(bad)])
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"output_dir": "o", "no_such_flag": 1}))
    with pytest.raises(ValueError, match="no_such_flag"):
        parse(["--config", str(unknown)])
    with pytest.raises(FileNotFoundError, match="missing.yaml does not exist"):
        parse(["--config", str(tmp_path / "missing.yaml")])


def test_base_chosen_defaults_lose_to_flags_and_config(pretrained, tmp_path):
    root, out, _ = pretrained
    instruct = load_recipe("finetune_instruct")
    base_args = ["--model_name_or_path", str(out), "--output_dir", str(tmp_path / "o")]
    chosen = instruct.parse_args(base_args)[-1]
    recorded = json.loads((out / "all_results.json").read_text())["learning_rate"]
    assert chosen.learning_rate == recorded  # a small base: its own pretraining learning rate
    assert chosen.num_train_epochs == 10 and chosen.per_device_train_batch_size == 32
    config = tmp_path / "c.yaml"
    config.write_text("num_train_epochs: 3\n")
    given = instruct.parse_args([*base_args, "--config", str(config), "--learning_rate", "0.25"])[-1]
    assert (given.learning_rate, given.num_train_epochs, given.per_device_train_batch_size) == (0.25, 3, 32)


def test_no_code_reads_argparse_internals():
    from conftest import REPO_ROOT

    offenders = [
        str(path.relative_to(REPO_ROOT))
        for folder in ("hf_scratch_gpt", "scratch_tokenizer", "recipes", "space")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if "._actions" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


# ---------------------------------------------------------------- the folder rules, without training


def fake_run(folder, recipe="pretrain", steps=(2,)):
    """A run folder as our recipes leave it: run.json, results, and complete checkpoints recording the recipe."""
    folder.mkdir(parents=True)
    (folder / RUN_RECORD).write_text(json.dumps({"recipe": recipe, "command": [recipe]}))
    (folder / "all_results.json").write_text("{}")
    for step in steps:
        checkpoint = folder / f"checkpoint-{step}"
        checkpoint.mkdir()
        state = {"global_step": step, "stateful_callbacks": {"RunRecord": {"args": {"recipe": recipe}}}}
        (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    return folder


def test_resuming_into_a_folder_of_another_recipe_is_refused(tmp_path):
    own = fake_run(tmp_path / "instruct-run", "finetune_instruct")
    other = fake_run(tmp_path / "pretrain-run", "pretrain")
    with pytest.raises(ValueError, match="holds a pretrain run; resuming a finetune_instruct checkpoint"):
        prepare_run_folder("finetune_instruct", other, False, str(own / "checkpoint-2"))
    assert prepare_run_folder("finetune_instruct", own, False, "last").resume == str(own / "checkpoint-2")
    # a YAML `true` / `false` for --resume_from_checkpoint means "the newest" / "a new run"
    assert prepare_run_folder("finetune_instruct", own, False, True).resume == str(own / "checkpoint-2")
    assert prepare_run_folder("pretrain", tmp_path / "new", False, False).resume is None


def test_overwrite_and_resume_together_are_refused(tmp_path):
    run = fake_run(tmp_path / "run")
    with pytest.raises(ValueError, match="contradict"):
        prepare_run_folder("pretrain", run, True, "last")
    assert (run / "checkpoint-2").is_dir()


def test_only_our_runs_are_emptied(tmp_path):
    clone = tmp_path / "hub-clone"  # a model folder someone cloned: weights and config, but no run of ours
    (clone / ".git").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "README.md"):
        (clone / name).write_text("theirs")
    with pytest.raises(FileExistsError, match="not a run"):
        prepare_run_folder("pretrain", clone, True)
    (clone / "all_results.json").write_text("{}")  # even a run's marker: never a folder with a checkout
    with pytest.raises(FileExistsError, match="not a run"):
        prepare_run_folder("pretrain", clone, True)
    assert sorted(p.name for p in clone.iterdir()) == [".git", "README.md", "all_results.json", "config.json",
                                                       "model.safetensors"]  # fmt: skip


def test_a_run_that_stopped_before_writing_anything_does_not_block_the_next(tmp_path):
    folder = tmp_path / "run"
    prepare_run_folder("pretrain", folder, False)  # then, say, the data file had a wrong column
    assert [p.name for p in folder.iterdir()] == [RUN_RECORD]
    prepare_run_folder(
        "pretrain", folder, False
    )  # the corrected command starts without --overwrite_output_dir


def test_every_path_in_the_command_is_protected_by_an_overwrite(tmp_path):
    run = fake_run(tmp_path / "run")
    config = run / "my-settings.yaml"
    config.write_text("learning_rate: 0.1\n")
    with pytest.raises(ValueError, match="my-settings.yaml inside it"):
        prepare_run_folder("pretrain", run, True, command=["recipes/pretrain.py", "--config", str(config)])
    assert config.is_file()


def test_config_file_values_keep_their_meaning(tmp_path):
    from hf_scratch_gpt.training.arguments import LoraArguments

    config = tmp_path / "lora.yaml"
    config.write_text(
        "output_dir: o\nlora_target_modules: c_attn\nuse_peft: true\nresume_from_checkpoint: true\n"
    )
    _, lora, _, training = parse_recipe_args((ModelArguments, LoraArguments, RunArguments, TrainingArguments), {},
                                             ["--config", str(config)])  # fmt: skip
    assert (
        lora.lora_target_modules == ["c_attn"] and lora.use_peft is True
    )  # as `--lora_target_modules c_attn`
    other = tmp_path / "other.yaml"
    other.write_text("max_steps: 3\n")
    with pytest.raises(ValueError, match="--config is given twice"):
        parse(["--config", str(config), "--config", str(other)])
    # `--train_file=x.json` alone is a flag, not a lone config file
    _, data, _, _ = parse_recipe_args((ModelArguments, DataArguments, RunArguments, TrainingArguments),
                                      {"output_dir": "o"}, ["--train_file=x.json"])  # fmt: skip
    assert data.train_file == "x.json"
