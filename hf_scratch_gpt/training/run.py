"""Stage 5 (before training): make sure a run never silently overwrites another, and find where to resume.

Rules, checked by every process before anything is written:

- `--output_dir` that holds files: refused, unless `--overwrite_output_dir` (its old `checkpoint-*` folders are
  deleted so a later resume cannot pick them up) or `--resume_from_checkpoint`.
- Right before a run saves its final model, `clear_saved_model` removes the model files already in the folder: an
  earlier run's, or the adapter files the Trainer copies there when `--push_to_hub` pushes LoRA checkpoints. Left
  behind, an `adapter_config.json` next to a new full model makes `from_pretrained` apply the adapter on top of it,
  and a full model's `config.json` next to a new adapter makes it look for weights that are not there. This waits
  until the model is loaded, so a run may continue from a checkpoint in its own output folder.
- `--resume_from_checkpoint PATH` resumes from that checkpoint; `--resume_from_checkpoint last` (or `true`)
  resumes from the newest *complete* checkpoint in `--output_dir` (one whose `trainer_state.json` was written,
  so a run killed while saving resumes from the checkpoint before).

Usage:

    resume = prepare_output_dir(
        training_args.output_dir, run_args.overwrite_output_dir, training_args.resume_from_checkpoint
    )
    trainer.train(resume_from_checkpoint=resume)
"""

import re
import shutil
from pathlib import Path

from accelerate import PartialState

TRAINER_STATE = "trainer_state.json"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
# The files whose presence decides what `from_pretrained` loads from a folder (a full model or a peft adapter).
SAVED_MODEL_FILES = (
    "model*.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "adapter_model*",
)
RESUME_LATEST = {"last", "latest", "true", "yes", "1"}


def checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete checkpoints in `output_dir`, oldest (lowest step) first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in output_dir.iterdir()
        if (match := CHECKPOINT_PATTERN.match(path.name)) and (path / TRAINER_STATE).is_file()
    ]
    return [path for _, path in sorted(found)]


def prepare_output_dir(
    output_dir: str | Path, overwrite: bool, resume_from_checkpoint: str | None
) -> str | None:
    """Check `output_dir` against the rules above; return the checkpoint folder to resume from (or None).

    Every process checks, then all wait for each other, so no process sees files another one just wrote.
    Only the main process deletes anything.
    """
    resume = _check_output_dir(
        Path(output_dir), overwrite, resume_from_checkpoint, PartialState().is_main_process
    )
    PartialState().wait_for_everyone()
    return resume


def _check_output_dir(output_dir: Path, overwrite: bool, resume_from_checkpoint: str | None, is_main: bool):
    if resume_from_checkpoint is not None:
        if resume_from_checkpoint.lower() in RESUME_LATEST:
            found = checkpoints(output_dir)
            if not found:
                raise ValueError(
                    f"--resume_from_checkpoint {resume_from_checkpoint}: no complete checkpoint-* folder (one with "
                    f"{TRAINER_STATE}) in {output_dir}; start a new run without --resume_from_checkpoint"
                )
            return str(found[-1])
        checkpoint = Path(resume_from_checkpoint)
        if not (checkpoint / TRAINER_STATE).is_file():
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint} is not a complete checkpoint (no {TRAINER_STATE} in it); "
                f"pass a checkpoint-* folder, or 'last' for the newest one in --output_dir"
            )
        return str(checkpoint)
    existing = sorted(path.name for path in output_dir.iterdir()) if output_dir.is_dir() else []
    if existing and not overwrite:
        shown = ", ".join(existing[:6]) + (", ..." if len(existing) > 6 else "")
        raise FileExistsError(
            f"--output_dir {output_dir} already holds another run ({shown}). Pass --overwrite_output_dir to "
            f"replace it, --resume_from_checkpoint last to continue it, or choose another --output_dir."
        )
    if existing and is_main:
        for path in output_dir.iterdir():
            if CHECKPOINT_PATTERN.match(path.name) and path.is_dir():
                shutil.rmtree(path)
    return None


def clear_saved_model(output_dir: str | Path) -> list[str]:
    """Delete the model files (SAVED_MODEL_FILES) directly in `output_dir`; return their names.

    Call on the main process just before saving the final model; other files (tokenizer, metrics, the user's own)
    stay until the new run replaces them.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    removed = []
    for path in sorted(output_dir.iterdir()):
        if path.is_file() and any(path.match(pattern) for pattern in SAVED_MODEL_FILES):
            path.unlink()
            removed.append(path.name)
    return removed


def save_final_model(model, tokenizer, output_dir: str | Path) -> None:
    """Save the finished model (full, merged or adapter) and tokenizer in place of any model already there."""
    clear_saved_model(output_dir)  # an earlier run's model, or adapters copied here by checkpoint pushes
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
