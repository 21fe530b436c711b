"""The model card with Hub metadata and the plot of training and validation loss.

The model card is the README.md of the output folder: YAML front matter the Hub reads (`library_name`,
`pipeline_tag`, `base_model`, `datasets`, `metrics` and a `model-index` with the measured values), then what
the model is, its results, how it was trained (the exact command) and how to use it. Local paths are not Hub
ids, so a local base model or data file is named in the text and left out of the metadata; the model-index
lists the validation and test metrics.

Usage:

    write_model_card(output_dir, CardInfo(model_name="my-gpt", pipeline_tag="text-generation",
                     summary="A small GPT pretrained on ...", metrics={"eval_loss": 1.9},
                     data="tinyshakespeare.txt (local file)"))
    save_loss_plot(trainer.state.log_history, output_dir / "loss.png")
"""

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

LOSS_PLOT = "loss.png"
CONFUSION_PLOT = "confusion_matrix.png"


@dataclass
class CardInfo:
    """What the model card says; `metrics` are the final numbers (e.g. eval_loss, test_accuracy)."""

    model_name: str
    pipeline_tag: str
    summary: str
    metrics: dict[str, float]
    data: str  # what it was trained on, in words (local files, the default corpus, a Hub dataset)
    dataset: str | None = None  # Hub dataset id, when the data came from the Hub
    base_model: str | None = None  # Hub id or local folder the model was finetuned from
    hyperparameters: dict[str, object] = field(default_factory=dict)
    usage: str = ""
    evaluation: str = (
        ""  # markdown after the results table (e.g. per-split metrics, a confusion matrix image)
    )
    command: list[str] = field(default_factory=lambda: [Path(sys.argv[0]).as_posix(), *sys.argv[1:]])


def is_hub_id(name: str | None) -> bool:
    """True for a name that can only be a Hub id (not a path that exists here, not an absolute path)."""
    return bool(name) and not Path(name).exists() and not Path(name).is_absolute() and name.count("/") <= 1


def write_model_card(output_dir: str | Path, info: CardInfo) -> Path:
    """Write README.md (metadata + text) into `output_dir` and return its path."""
    numbers = {name: value for name, value in info.metrics.items() if isinstance(value, int | float)}
    evaluated = {name: value for name, value in numbers.items() if _split(name) in ("validation", "test")}
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=info.pipeline_tag,
        base_model=info.base_model if is_hub_id(info.base_model) else None,
        datasets=[info.dataset] if info.dataset else None,
        metrics=sorted({_metric_type(name) for name in numbers}),
        tags=["hf_scratch_gpt", "scratch_gpt", "custom_code"],
        model_name=info.model_name,
        eval_results=[
            EvalResult(
                task_type=info.pipeline_tag,
                dataset_type=info.dataset or "local",
                dataset_name=info.dataset or info.data,
                dataset_split=_split(name),
                metric_type=_metric_type(name),
                metric_name=name,
                metric_value=value,
            )
            for name, value in evaluated.items()
        ]
        or None,
    )
    rows = "\n".join(f"| {name} | {value:.4g} |" for name, value in numbers.items())
    hyper = "\n".join(f"- {name}: {value}" for name, value in info.hyperparameters.items())
    command = " ".join(shlex.quote(arg) for arg in info.command)
    sections = [
        f"# {info.model_name}",
        info.summary,
        f"Base model: `{info.base_model}`" if info.base_model else "",
        f"Data: {info.data}",
        f"## Results\n\n| metric | value |\n|---|---|\n{rows}" if rows else "",
        info.evaluation,
        f"## Training\n\nTrained with hf_scratch_gpt's recipe:\n\n```bash\npython {command}\n```\n\n{hyper}",
        f"![training and validation loss]({LOSS_PLOT})",
        f"## Usage\n\n```python\n{info.usage.strip()}\n```" if info.usage else "",
    ]
    body = "\n\n".join(section for section in sections if section)
    path = Path(output_dir) / "README.md"
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n").save(path)
    return path


SPLIT_PREFIXES = {"eval_": "validation", "validation_": "validation", "test_": "test", "train_": "train"}


def _metric_type(name: str) -> str:
    """'eval_nats_per_char' -> 'nats_per_char', 'test_accuracy' -> 'accuracy'."""
    for prefix in SPLIT_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _split(name: str) -> str | None:
    """'eval_loss' -> 'validation', 'test_accuracy' -> 'test'."""
    return next((split for prefix, split in SPLIT_PREFIXES.items() if name.startswith(prefix)), None)


def save_loss_plot(log_history: list[dict], path: str | Path, title: str = "loss") -> Path | None:
    """Plot training loss and validation loss against the optimizer step; None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    evals = [(entry["step"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry]
    if not train and not evals:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for points, label, style in ((train, "training loss", "-"), (evals, "validation loss", "o-")):
        if points:
            steps, values = zip(*points, strict=True)
            axes.plot(steps, values, style, label=label)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("cross-entropy loss (nats per token)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def save_confusion_plot(
    matrix: list[list[int]], label_list: list[str], path: str | Path, title: str = "confusion matrix"
) -> Path:
    """Plot a confusion matrix (rows: true label, columns: predicted label) with the count in every cell."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    size = min(12, 2.5 + 0.6 * len(label_list))
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="Blues")
    ticks = range(len(label_list))
    axes.set_xticks(ticks, label_list, rotation=45 if len(label_list) > 4 else 0, ha="right")
    axes.set_yticks(ticks, label_list)
    largest = max(max(row) for row in matrix) or 1
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            colour = "white" if count > largest / 2 else "black"  # readable on dark and light cells
            axes.text(column, row, str(count), ha="center", va="center", color=colour)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def push_output_dir(trainer, output_dir: str | Path) -> None:
    """Upload the finished output folder to the Hub repo the Trainer created for `--push_to_hub`.

    Model, tokenizer, model card, metrics and plot go up in one commit; `checkpoint-*` folders stay local (the
    Trainer already pushed checkpoints while training, per `--hub_strategy`). Model files in the repo that this
    folder no longer has (e.g. the adapter of a pushed LoRA checkpoint, when the final model is merged) are deleted
    in the same commit. Unlike `Trainer.push_to_hub`, this neither saves the model again (which would replace a
    merged LoRA model by its adapter) nor overwrites the model card with the Trainer's generic one.
    """
    if not trainer.is_world_process_zero():
        return
    from huggingface_hub import upload_folder

    from hf_scratch_gpt.training.run import SAVED_MODEL_FILES

    # A checkpoint upload still in flight finishes first (transformers' own wait, as in Trainer.push_to_hub).
    finish_pending = getattr(trainer, "_finish_current_push", None)
    if finish_pending is not None:
        finish_pending()
    upload_folder(
        repo_id=trainer.hub_model_id,
        folder_path=str(output_dir),
        commit_message="End of training",
        token=trainer.args.hub_token,
        revision=trainer.args.hub_revision,
        ignore_patterns=["_*", "checkpoint-*"],
        delete_patterns=list(SAVED_MODEL_FILES),  # files uploaded in this commit are kept
    )
