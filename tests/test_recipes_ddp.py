"""Distributed training through `accelerate launch`: two CPU processes really train as one DDP job."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from recipe_helpers import FAST_ARGS, ascii_text, labelled_rows, make_checkpoint

CONFIGS = REPO_ROOT / "recipes" / "configs"


def accelerate_launch(
    config: str, recipe: str, args: list[str], tmp_path: Path
) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config),
        str(REPO_ROOT / "recipes" / recipe), *args, *FAST_ARGS,
    ]  # fmt: skip
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_two_process_pretraining_is_one_ddp_job(tmp_path):
    (tmp_path / "train.txt").write_text(ascii_text(20_000))
    output_dir = tmp_path / "ddp"
    args = [
        "--train_file", str(tmp_path / "train.txt"), "--model_size", "tiny", "--vocab_size", "300",
        "--block_size", "32", "--per_device_train_batch_size", "4", "--max_steps", "6", "--eval_steps", "3",
        "--save_steps", "3", "--output_dir", str(output_dir),
    ]  # fmt: skip
    accelerate_launch("cpu_ddp_2proc.yaml", "pretrain.py", args, tmp_path)
    metrics = json.loads((output_dir / "all_results.json").read_text())
    assert metrics["world_size"] == 2
    # Each step consumed 2 processes x 4 blocks: the epoch counter moves twice as fast as with one process.
    n_blocks = metrics["train_tokens_per_epoch"] // metrics["block_size"]
    steps_per_epoch = math.ceil(n_blocks / (2 * 4))
    assert metrics["epoch"] == pytest.approx(6 / steps_per_epoch)
    assert math.isfinite(metrics["eval_nats_per_char"]) and metrics["global_step"] == 6
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "checkpoint-6").is_dir()


@pytest.mark.slow
def test_two_process_classifier_finetuning(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt", ascii_text(20_000))
    data = tmp_path / "sms"
    data.write_text("".join(f"{row['label']}\t{row['text']}\n" for row in labelled_rows(60)))
    args = [
        "--model_name_or_path",
        str(checkpoint),
        "--train_file",
        str(data),
        "--output_dir",
        str(tmp_path / "o"),
    ]
    accelerate_launch(
        "cpu_ddp_2proc.yaml", "finetune_classifier.py", [*args, "--num_train_epochs", "1"], tmp_path
    )
    metrics = json.loads((tmp_path / "o" / "all_results.json").read_text())
    assert metrics["world_size"] == 2 and 0 <= metrics["test_accuracy"] <= 1
    assert len((tmp_path / "o" / "test_predictions.jsonl").read_text().splitlines()) == 12


def test_shipped_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    expected = {
        "cpu_ddp_2proc.yaml": ("MULTI_GPU", 2),
        "multi_gpu_ddp.yaml": ("MULTI_GPU", 8),
        "fsdp.yaml": ("FSDP", 8),
    }
    for name, (kind, processes) in expected.items():
        config = load_config_from_file(str(CONFIGS / name))
        assert (config.distributed_type.value, config.num_processes) == (kind, processes), name
    fsdp = load_config_from_file(str(CONFIGS / "fsdp.yaml")).fsdp_config
    from hf_scratch_gpt.model.modeling_scratch_gpt import ScratchGPTPreTrainedModel

    assert fsdp["fsdp_transformer_layer_cls_to_wrap"] in ScratchGPTPreTrainedModel._no_split_modules


def test_end_run_destroys_the_process_group(tmp_path):
    """Recipes end with `trainer.end_run()`: a gloo process group left alive can abort a worker at exit."""
    import torch.distributed as dist
    from datasets import Dataset
    from transformers import TrainingArguments

    from hf_scratch_gpt import ScratchGPTConfig, ScratchGPTForCausalLM
    from hf_scratch_gpt.training.trainer import RecipeTrainer

    config = ScratchGPTConfig(vocab_size=10, n_positions=8, n_embd=8, n_layer=1, n_head=1)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    data = Dataset.from_dict({"input_ids": [[1, 2, 3]], "labels": [[1, 2, 3]]})
    trainer = RecipeTrainer(model=ScratchGPTForCausalLM(config), args=args, train_dataset=data)
    # A one-process gloo group stands in for a DDP worker's (a real two-process run is the test above).
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        trainer.end_run()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    trainer.end_run()  # without a process group (a plain `python` run) it is a no-op
