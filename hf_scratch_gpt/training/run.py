"""The run lifecycle every command that writes a run folder shares (the four recipes and `convert`).

A run folder is one run of one command. `start_run` checks it before anything is loaded or written, and
`Run.finish` writes what every run ends with. The rules:

- **A folder holds one run.** The command's name is recorded in the folder's `run.json` and in every
  checkpoint's `trainer_state.json`. A folder that holds files is refused, unless `--overwrite_output_dir` (replace that run) or
  `--resume_from_checkpoint` (continue it).
- **Resume only your own run.** `--resume_from_checkpoint last` takes the newest *complete* checkpoint (one whose
  `trainer_state.json` was written, so a run killed while saving resumes from the one before); a PATH names one.
  Either way the checkpoint must have been written by the same recipe: another recipe's is refused, with what it
  is. Resuming into a folder that holds another run is refused too.
- **Start only from whole files.** The weights and tokenizer files of every folder the run reads (start model,
  tokenizer, judge, the checkpoint to resume) are checked first (`check_checkpoint_files`): a damaged one is an
  error naming it, before anything is loaded or written.
- **Never delete what the run starts from.** `--overwrite_output_dir` is refused while the start model, tokenizer,
  a data file or the checkpoint to resume lies inside the folder it would clear.
- **An overwritten folder keeps nothing of the old run.** It is emptied (only a folder that holds a run: a
  folder of other files is refused), so no stale `generated_responses.json` or checkpoint survives.

Usage (a recipe):

    run = start_run("finetune_instruct", training_args, run_args, inputs=[model_args.model_name_or_path])
    ...                                   # data, model, Trainer(callbacks=[run.callback()])
    trainer.train(resume_from_checkpoint=run.resume)
    run.save_model(model, tokenizer)
    run.finish(trainer, metrics, card)    # metrics, trainer state, model card, loss plot, push
"""

import json
import logging
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from accelerate import PartialState
from transformers import TrainerCallback, set_seed
from transformers.trainer_callback import ExportableState

from hf_scratch_gpt.model.checkpoint_files import check_checkpoint_files
from hf_scratch_gpt.training.reporting import (
    LOSS_PLOT,
    CardInfo,
    push_output_dir,
    save_loss_plot,
    write_model_card,
)

logger = logging.getLogger(__name__)

RUN_RECORD = "run.json"
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
# Files only our runs write (this version's record; a finished run's results; a Trainer's state): a folder with one
# of them may be emptied by --overwrite_output_dir. A model folder alone (config.json + weights, e.g. a clone of a
# Hub repo) is not enough: it may be someone's work that no command of ours created.
RUN_MARKERS = (RUN_RECORD, TRAINER_STATE, "all_results.json")
# Never deleted, whatever else the folder holds: a version-control checkout is not a run folder.
NEVER_DELETED = (".git", ".hg", ".svn")
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


def read_record(folder: Path) -> dict | None:
    """The folder's run.json, or None when it has none (or one that cannot be read)."""
    try:
        return json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def holds_a_run(folder: Path) -> bool:
    """True when `folder` holds one of our runs (a record, results, a trainer state, or a complete checkpoint)."""
    if not folder.is_dir() or any((folder / name).exists() for name in NEVER_DELETED):
        return False
    return bool(checkpoints(folder)) or any((folder / name).is_file() for name in RUN_MARKERS)


def is_inside(path: str | Path, folder: Path) -> bool:
    """True when `path` (an existing local file or folder) is `folder` or lies inside it."""
    path = Path(path)
    return path.exists() and path.resolve().is_relative_to(folder.resolve())


@dataclass
class Run:
    """One run of one command in its folder: what `start_run` checked, and what the run ends with."""

    recipe: str
    output_dir: Path
    resume: str | None  # the checkpoint folder to resume from, or None for a new run
    command: list[str]

    def record(self) -> dict:
        return {"recipe": self.recipe, "command": self.command}

    def write_record(self, folder: Path | None = None) -> None:
        """run.json in the run folder (or a checkpoint of it): which command wrote it, and how."""
        folder = folder or self.output_dir
        folder.mkdir(parents=True, exist_ok=True)
        record = {**self.record(), "written": datetime.now(UTC).isoformat(timespec="seconds")}
        (folder / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    def callback(self) -> TrainerCallback:
        """A Trainer callback that records this run in every checkpoint it saves."""
        return RunRecord(self.recipe, self.command)

    def save_model(self, model, tokenizer, trainer=None) -> None:
        """Save the finished model (full, merged or adapter) and tokenizer, replacing model files already there
        (adapter files the Trainer copies into the folder when `--push_to_hub` pushes LoRA checkpoints: left
        behind, an adapter_config.json next to a full model makes `from_pretrained` apply it on top).

        The trained model itself (`model is trainer.model`) is saved through `trainer.save_model` on every process,
        so that sharded training (FSDP) gathers its weights; a merged model or an adapter is saved by the main one.
        """
        state = PartialState()
        if state.is_main_process:
            clear_saved_model(self.output_dir)
        state.wait_for_everyone()
        if trainer is not None and model is trainer.model:
            # RecipeTrainer saves with the KV cache on, and the tokenizer with the model.
            trainer.save_model(str(self.output_dir))
            return
        if state.is_main_process:
            if getattr(model, "config", None) is not None:
                model.config.use_cache = True  # the Trainer turns the KV cache off for training
            model.save_pretrained(self.output_dir)
            tokenizer.save_pretrained(self.output_dir)

    def finish(self, trainer, metrics: dict, card: CardInfo, plot_title: str) -> None:
        """Metrics, trainer state, model card and loss plot into the folder; push when asked; end the processes."""
        trainer.save_metrics("all", metrics)
        trainer.save_state()
        if trainer.is_world_process_zero():
            write_model_card(self.output_dir, card)
            save_loss_plot(trainer.state.log_history, self.output_dir / LOSS_PLOT, title=plot_title)
        if trainer.args.push_to_hub:
            push_output_dir(trainer, self.output_dir)
        trainer.end_run()


class RunRecord(TrainerCallback, ExportableState):
    """The recipe and command, saved in every checkpoint's trainer_state.json by the Trainer itself.

    trainer_state.json is the file whose presence makes a checkpoint complete, so a checkpoint is never complete
    without its record (a separate file written after it could be missing when a run is killed in between).
    """

    def __init__(self, recipe: str, command: list[str]):
        self.recipe, self.command = recipe, command

    def state(self) -> dict:
        return {"args": {"recipe": self.recipe, "command": self.command}, "attributes": {}}


def checkpoint_record(checkpoint: Path) -> dict | None:
    """The RunRecord a checkpoint's trainer_state.json holds ({"recipe", "command"}), or None."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    saved = state.get("stateful_callbacks", {}).get(RunRecord.__name__)
    saved = saved[0] if isinstance(saved, list) and saved else saved
    return saved.get("args") if isinstance(saved, dict) else None


def start_run(
    recipe: str,
    training_args,
    run_args,
    inputs: list[str | Path | None] = (),
    command: list[str] | None = None,
) -> Run:
    """Check `training_args.output_dir` against the rules above, then seed and log; return the Run.

    `inputs`: what the run reads (start model, tokenizer, data files), which an overwrite must not delete.
    Every process checks, then all wait for each other, so none sees files another one just wrote; only the main
    process deletes or writes anything.
    """
    setup_logging(training_args)
    run = prepare_run_folder(
        recipe,
        training_args.output_dir,
        run_args.overwrite_output_dir,
        training_args.resume_from_checkpoint,
        inputs,
        command or run_args.command,
    )
    if run_args.precision_reason:
        logger.info(run_args.precision_reason)
    set_seed(training_args.seed)
    return run


def prepare_run_folder(
    recipe: str,
    output_dir: str | Path,
    overwrite: bool,
    resume_from_checkpoint: str | None = None,
    inputs: list[str | Path | None] = (),
    command: list[str] | None = None,
) -> Run:
    """The output-folder part of `start_run` (for commands without a Trainer, such as `convert`)."""
    output_dir = Path(output_dir)
    command = command or [Path(sys.argv[0]).as_posix(), *sys.argv[1:]]
    state = PartialState()
    resume = None
    if resume_from_checkpoint in (None, False, ""):  # a YAML `false` means no resume too
        # What the run reads, as given, plus every command-line argument that names an existing path (a
        # --config file, a local --dataset_name folder): none of it may lie in a folder an overwrite empties.
        named = [arg.partition("=")[2] or arg for arg in command[1:]]
        paths = [
            *inputs,
            *(arg for arg in named if Path(arg).exists() and Path(arg).resolve() != output_dir.resolve()),
        ]
        _check_new_run(recipe, output_dir, overwrite, [path for path in paths if path])
    elif overwrite:
        raise ValueError(
            "--overwrite_output_dir and --resume_from_checkpoint contradict each other (replace the run, or "
            "continue it): pass only one"
        )
    else:
        resume = _checkpoint_to_resume(recipe, output_dir, resume_from_checkpoint)
    for path in (*inputs, resume):
        if path:
            check_checkpoint_files(path)  # a damaged weights or tokenizer file: an error naming it
    run = Run(recipe=recipe, output_dir=output_dir, resume=resume, command=command)
    state.wait_for_everyone()  # every process has checked before the main one changes anything
    if state.is_main_process:
        if overwrite and resume is None and output_dir.is_dir():
            for path in output_dir.iterdir():
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            logger.info("--overwrite_output_dir: removed the previous run from %s", output_dir)
        run.write_record()
    state.wait_for_everyone()
    return run


def _check_new_run(recipe: str, output_dir: Path, overwrite: bool, inputs: list) -> None:
    existing = sorted(path.name for path in output_dir.iterdir()) if output_dir.is_dir() else []
    if existing in ([], [RUN_RECORD]):  # empty, or a run that stopped before it wrote anything but its record
        return
    shown = ", ".join(existing[:6]) + (", ..." if len(existing) > 6 else "")
    if not holds_a_run(output_dir):
        raise FileExistsError(
            f"--output_dir {output_dir} holds files that are not a run ({shown}); no command deletes them, even "
            f"with --overwrite_output_dir. Choose another --output_dir."
        )
    if not overwrite:
        raise FileExistsError(
            f"--output_dir {output_dir} already holds another run ({shown}). Pass --overwrite_output_dir to "
            f"replace it, --resume_from_checkpoint last to continue it, or choose another --output_dir."
        )
    inside = [str(path) for path in inputs if is_inside(path, output_dir)]
    if inside:
        raise ValueError(
            f"--overwrite_output_dir would empty {output_dir}, but this run starts from {', '.join(inside)} inside "
            f"it; choose another --output_dir (or copy what you start from out of that folder first)."
        )


def _checkpoint_to_resume(recipe: str, output_dir: Path, resume_from_checkpoint: str) -> str:
    if str(resume_from_checkpoint).lower() in RESUME_LATEST:  # a YAML `true` arrives as a bool
        found = checkpoints(output_dir)
        if not found:
            raise ValueError(
                f"--resume_from_checkpoint {resume_from_checkpoint}: no complete checkpoint-* folder (one with "
                f"{TRAINER_STATE}) in {output_dir}; start a new run without --resume_from_checkpoint"
            )
        checkpoint = found[-1]
    else:
        checkpoint = Path(str(resume_from_checkpoint))
        if not (checkpoint / TRAINER_STATE).is_file():
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint} is not a complete checkpoint (no {TRAINER_STATE} in it); "
                f"pass a checkpoint-* folder, or 'last' for the newest one in --output_dir"
            )
    record = checkpoint_record(checkpoint)
    if record is None:
        raise ValueError(
            f"{checkpoint / TRAINER_STATE} does not record which recipe wrote it (it was saved by an older "
            f"version), so it is not resumed: a checkpoint of another recipe would silently mix two runs. Start a "
            f"new run from its weights instead (--model_name_or_path {checkpoint})."
        )
    if record.get("recipe") != recipe:
        raise ValueError(
            f"--resume_from_checkpoint: {checkpoint} is a checkpoint of {record.get('recipe')} "
            f"({' '.join(record.get('command', []))}), not of {recipe}; resume it with that recipe, or start "
            f"this {recipe} run in another --output_dir."
        )
    folder_record = read_record(output_dir)
    if folder_record is not None and folder_record.get("recipe") != recipe:
        raise ValueError(
            f"--output_dir {output_dir} holds a {folder_record.get('recipe')} run; resuming a {recipe} checkpoint "
            f"into it would mix the two runs. Choose another --output_dir."
        )
    if folder_record is None and not is_inside(checkpoint, output_dir) and holds_a_run(output_dir):
        raise ValueError(
            f"--output_dir {output_dir} holds another run; resume {checkpoint} into its own run folder or an "
            f"empty one."
        )
    return str(checkpoint)


def clear_saved_model(output_dir: str | Path) -> list[str]:
    """Delete the model files (SAVED_MODEL_FILES) directly in `output_dir`; return their names."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    removed = []
    for path in sorted(output_dir.iterdir()):
        if path.is_file() and any(path.match(pattern) for pattern in SAVED_MODEL_FILES):
            path.unlink()
            removed.append(path.name)
    return removed


def setup_logging(training_args) -> None:
    """INFO logs on the main process (WARNING on the others); transformers' level from --log_level."""
    import transformers

    level = logging.INFO if training_args.should_log else logging.WARNING
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=level
    )
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
