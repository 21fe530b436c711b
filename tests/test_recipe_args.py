"""Recipe arguments: presets and --config_overrides, argument files, output-folder rules, reporting helpers."""

import json

import pytest
from transformers import TrainingArguments

from hf_scratch_gpt.data.arguments import DataArguments
from hf_scratch_gpt.model.presets import MODEL_PRESETS, parse_config_overrides, preset_config_kwargs
from hf_scratch_gpt.training.arguments import RunArguments, parse_recipe_args
from hf_scratch_gpt.training.reporting import is_hub_id, push_output_dir, save_loss_plot
from hf_scratch_gpt.training.run import SAVED_MODEL_FILES


def test_config_overrides_are_typed():
    parsed = parse_config_overrides(
        "n_embd=10, n_layer=2,resid_pdrop=0.0,n_inner=none,tie_word_embeddings=false"
    )
    assert parsed == {
        "n_embd": 10,
        "n_layer": 2,
        "resid_pdrop": 0.0,
        "n_inner": None,
        "tie_word_embeddings": False,
    }
    assert parse_config_overrides("activation_function=gelu") == {"activation_function": "gelu"}
    assert parse_config_overrides(None) == {}


def test_config_override_errors():
    with pytest.raises(ValueError, match="unknown config field 'n_embed'.*'n_embd'"):
        parse_config_overrides("n_embed=10")
    with pytest.raises(ValueError, match="not of the form key=value"):
        parse_config_overrides("n_layer")
    with pytest.raises(ValueError, match="--model_size 'huge' is not a preset"):
        preset_config_kwargs("huge")


def test_presets_build_valid_configs_and_gpt2_shapes():
    from hf_scratch_gpt import ScratchGPTConfig

    for name in MODEL_PRESETS:
        ScratchGPTConfig(**preset_config_kwargs(name))
    assert (
        preset_config_kwargs("gpt2-medium")["n_embd"] == 1024
        and preset_config_kwargs("gpt2-xl")["n_layer"] == 48
    )
    assert preset_config_kwargs("tiny", "n_layer=3")["n_layer"] == 3


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_one_argument_file_replaces_the_flags(tmp_path, suffix):
    values = {
        "train_file": "data.txt",
        "output_dir": str(tmp_path / "o"),
        "max_train_seconds": 5,
        "learning_rate": 0.01,
    }
    path = tmp_path / f"args{suffix}"
    path.write_text(
        json.dumps(values) if suffix == ".json" else "\n".join(f"{k}: {v}" for k, v in values.items())
    )
    data, run, training = parse_recipe_args(
        (DataArguments, RunArguments, TrainingArguments),
        {"learning_rate": 1e-3, "num_train_epochs": 7},
        [str(path)],
    )
    assert data.train_file == "data.txt" and run.max_train_seconds == 5
    assert (
        training.learning_rate == 0.01 and training.num_train_epochs == 7
    )  # file wins; recipe default fills in


def test_flags_override_recipe_defaults(tmp_path):
    flags = ["--output_dir", str(tmp_path), "--num_train_epochs", "2"]
    data, run, training = parse_recipe_args(
        (DataArguments, RunArguments, TrainingArguments), {"num_train_epochs": 7}, flags
    )
    assert training.num_train_epochs == 2 and run.overwrite_output_dir is False
    with pytest.raises(ValueError, match=r"unknown argument names \[.no_such_flag.\]"):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"output_dir": str(tmp_path), "no_such_flag": 1}))
        parse_recipe_args((DataArguments, RunArguments, TrainingArguments), {}, [str(path)])


def test_loss_plot_and_hub_ids(tmp_path):
    history = [{"loss": 3.0, "step": 1}, {"loss": 2.0, "step": 2}, {"eval_loss": 2.5, "step": 2}]
    path = save_loss_plot(history, tmp_path / "loss.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert save_loss_plot([], tmp_path / "none.png") is None
    assert is_hub_id("openai-community/gpt2") and is_hub_id("gpt2")
    assert not is_hub_id(str(tmp_path)) and not is_hub_id("/abs/path") and not is_hub_id(None)


def test_push_output_dir_uploads_the_finished_folder(tmp_path, monkeypatch):
    """--push_to_hub uploads the folder as written (merged model, our model card), never re-saving the model."""
    import huggingface_hub

    calls, waited = [], []
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: calls.append(kwargs))

    class FakeTrainer:  # the attributes of transformers.Trainer that push_output_dir uses
        hub_model_id = "me/run"
        args = TrainingArguments(output_dir=str(tmp_path), hub_token="secret", hub_revision="dev")

        def __init__(self, main):
            self.main = main

        def is_world_process_zero(self):
            return self.main

        def _finish_current_push(self):
            waited.append(True)

        def save_model(self, *args, **kwargs):
            raise AssertionError("the output folder is already complete; saving again would replace it")

    push_output_dir(FakeTrainer(main=False), tmp_path)
    assert calls == [] and waited == []  # other processes upload nothing
    push_output_dir(FakeTrainer(main=True), tmp_path)
    assert waited == [True]
    assert calls == [
        dict(
            repo_id="me/run",
            folder_path=str(tmp_path),
            commit_message="End of training",
            token="secret",
            revision="dev",
            ignore_patterns=["_*", "checkpoint-*"],
            # model files the repo holds from earlier pushes (a LoRA checkpoint's adapter) go, unless re-uploaded
            delete_patterns=list(SAVED_MODEL_FILES),
        )
    ]
