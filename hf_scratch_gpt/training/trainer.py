"""The HF `Trainer` the recipes use, plus a wall-clock budget and pretraining metrics.

`RecipeTrainer` is transformers' `Trainer` with two additions:

- `max_train_seconds`: training stops once that much wall-clock time has passed (checked after every optimizer
  step), and the learning-rate schedule runs on the elapsed fraction of the budget instead of on steps, so a
  cosine or linear decay reaches its end exactly when time runs out. Warmup stays in steps
  (`--warmup_steps 100`), or a fraction of the budget (`--warmup_steps 0.05`). Under DDP the elapsed time of
  process 0 is broadcast every step, so all processes use the same learning rate and stop at the same step.
- `eval_text_units`: whenever a validation loss is logged, perplexity, nats per character and bits per byte
  are logged beside it (see hf_scratch_gpt.training.lm_metrics).

Usage:

    trainer = RecipeTrainer(model=model, args=training_args, train_dataset=train, eval_dataset=val,
                            max_train_seconds=110, eval_text_units=units)
    trainer.train()
"""

import math
import time

import torch
from accelerate.utils import broadcast
from torch.optim.lr_scheduler import LambdaLR
from transformers import ProgressCallback, Trainer, TrainerCallback

from hf_scratch_gpt.data.lm import TextUnits
from hf_scratch_gpt.training.lm_metrics import language_model_metrics

TIME_SCHEDULES = ("linear", "cosine", "cosine_with_min_lr", "constant", "constant_with_warmup")


class TimeBudget:
    """Elapsed training time as a fraction of a budget; `elapsed` is what every process agrees on."""

    def __init__(self, seconds: float):
        if seconds <= 0:
            raise ValueError(f"max_train_seconds must be positive, got {seconds}")
        self.seconds = seconds
        self.started_at: float | None = None
        self.elapsed = 0.0
        self.stopped_at_step: int | None = None  # set when the budget, not max_steps, ended training

    def start(self) -> None:
        self.started_at = time.perf_counter()
        self.elapsed = 0.0

    def progress(self) -> float:
        return min(self.elapsed / self.seconds, 1.0)


def time_lr_factor(
    schedule: str, step: int, progress: float, warmup: float, min_lr_rate: float = 0.0
) -> float:
    """Learning-rate multiplier at optimizer `step` and elapsed budget fraction `progress` (0..1).

    `warmup` >= 1 is a number of warmup steps, below 1 a fraction of the time budget.

    >>> time_lr_factor("cosine", step=500, progress=0.5, warmup=10)
    0.5
    >>> time_lr_factor("linear", step=5, progress=0.01, warmup=10)
    0.5
    """
    if warmup >= 1:
        if step < warmup:
            return step / warmup
        decay_progress = progress
    else:
        if progress < warmup:
            return progress / warmup
        decay_progress = (progress - warmup) / (1 - warmup)
    if schedule in ("constant", "constant_with_warmup"):
        return 1.0
    if schedule == "linear":
        return max(0.0, 1.0 - decay_progress)
    cosine = 0.5 * (1.0 + math.cos(math.pi * decay_progress))
    return min_lr_rate + (1.0 - min_lr_rate) * cosine


class TimeBudgetCallback(TrainerCallback):
    """Starts the budget when training starts; after each step syncs the elapsed time and stops when spent.

    It also keeps the progress bar honest: the Trainer's bar counts toward `max_steps` (all epochs), which a time
    budget never reaches, so its ETA would read hours. The bar's total becomes the steps the budget is projected
    to allow at the speed so far, so its ETA is the time left.
    """

    def __init__(self, budget: TimeBudget, callbacks: list[TrainerCallback] | None = None):
        self.budget = budget
        self.callbacks = callbacks if callbacks is not None else []  # the Trainer's, to find its progress bar
        self.start_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.budget.start()
        self.start_step = state.global_step  # > 0 when resuming; the budget's clock starts now

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = torch.tensor([time.perf_counter() - self.budget.started_at], device=args.device)
        if args.world_size > 1:
            elapsed = broadcast(elapsed, from_process=0)  # one clock for all processes
        self.budget.elapsed = float(elapsed.item())
        if self.budget.elapsed >= self.budget.seconds:
            self.budget.stopped_at_step = state.global_step
            control.should_training_stop = True
        self._project_progress_bar(state)
        return control

    def _project_progress_bar(self, state) -> None:
        steps = state.global_step - self.start_step
        projected = self.start_step + round(steps * self.budget.seconds / max(self.budget.elapsed, 1e-9))
        for callback in self.callbacks:
            bar = getattr(callback, "training_bar", None)
            if isinstance(callback, ProgressCallback) and bar is not None:
                bar.total = min(state.max_steps, max(projected, state.global_step))


class RecipeTrainer(Trainer):
    """`Trainer` + `max_train_seconds` (time budget with a time-based LR schedule) + pretraining metrics."""

    def __init__(
        self,
        *args,
        max_train_seconds: float | None = None,
        eval_text_units: TextUnits | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.eval_text_units = eval_text_units
        self.time_budget = None
        if max_train_seconds:
            self.start_time_budget(max_train_seconds)

    def start_time_budget(self, max_train_seconds: float) -> None:
        """Stop training after `max_train_seconds`, with the learning-rate schedule running on elapsed time."""
        if self.args.lr_scheduler_type.value not in TIME_SCHEDULES:
            raise ValueError(
                f"--max_train_seconds runs the learning-rate schedule on time and supports "
                f"--lr_scheduler_type {TIME_SCHEDULES}, not {self.args.lr_scheduler_type.value!r}"
            )
        self.time_budget = TimeBudget(max_train_seconds)
        self.add_callback(TimeBudgetCallback(self.time_budget, self.callback_handler.callbacks))

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        if self.time_budget is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        schedule = self.args.lr_scheduler_type.value
        min_lr_rate = (self.args.lr_scheduler_kwargs or {}).get("min_lr_rate", 0.0)
        warmup = self.args.warmup_steps

        def factor(step: int) -> float:
            return time_lr_factor(schedule, step, self.time_budget.progress(), warmup, min_lr_rate)

        self.lr_scheduler = LambdaLR(optimizer or self.optimizer, factor)
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # Trainer sets config.use_cache = args.use_cache (False) for training; a saved model should generate with
        # its KV cache, so checkpoints and the final model are written with use_cache=True.
        config = getattr(self.model, "config", None)
        training_value = getattr(config, "use_cache", None)
        if config is not None:
            config.use_cache = True
        try:
            super().save_model(output_dir, _internal_call)
        finally:
            if config is not None:
                config.use_cache = training_value

    def end_run(self) -> None:
        """Wait for every process, then destroy the process group (nothing to do in a single process).

        Call last in a recipe. A DDP worker that exits with its gloo process group still alive can abort while the
        interpreter shuts down ("terminate called without an active exception", exit code -6): a run that
        finished and saved everything would then fail under `accelerate launch`.
        """
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # `logs` is also the metrics dict `evaluate()` returns, so the extra metrics appear in both.
        if self.eval_text_units is not None and "eval_loss" in logs:
            extra = language_model_metrics(logs["eval_loss"], self.eval_text_units)
            logs.update({f"eval_{name}": value for name, value in extra.items()})
        super().log(logs, start_time)
