"""Stage 6b (preference tuning): TRL's `DPOTrainer` with the recipes' additions and left-truncated prompts.

`PreferenceTrainer` is TRL's DPOTrainer combined with hf_scratch_gpt's RecipeTrainer (hf_scratch_gpt.training.trainer):
the `--max_train_seconds` wall-clock budget with its time-based learning-rate schedule, checkpoints saved with
the KV cache on, and `end_run()`. Python's method order puts DPOTrainer first (DPO's loss, metrics, data
preparation), then RecipeTrainer, then transformers' Trainer.

One change to TRL's data preparation: TRL 1.16 truncates a pair that exceeds `max_length` at its end
(`truncation_mode="keep_start"`; the left-truncating `"keep_end"` is deprecated) and drops pairs whose prompt
alone fills `max_length`. Here a prompt that leaves no room for its answers is cut from the *left* instead
(hf_scratch_gpt.data.preference.truncate_prompts_left, with a warning), so the answers, which are what DPO
compares, keep their tokens, and no pair is lost.

TRL is an optional dependency: `pip install 'hf_scratch_gpt[trl]'`.

Usage:

    trainer = PreferenceTrainer(model=model, args=dpo_config, train_dataset=pairs["train"],
                                eval_dataset=pairs["validation"], processing_class=tokenizer,
                                peft_config=None, max_train_seconds=300)
"""

import copy

from trl import DPOTrainer

from hf_scratch_gpt.data.preference import truncate_prompts_left
from hf_scratch_gpt.training.trainer import RecipeTrainer


class PreferenceTrainer(DPOTrainer, RecipeTrainer):
    """DPOTrainer + RecipeTrainer's time budget, cache-on saves and end_run; prompts truncated from the left."""

    def __init__(self, *args, max_train_seconds: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)  # DPOTrainer -> RecipeTrainer (no budget yet) -> Trainer
        if max_train_seconds:
            self.start_time_budget(max_train_seconds)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if args.max_length is None:
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        # Tokenize without TRL's length filter, then fit each pair by cutting its prompt from the left.
        untruncated = copy.copy(args)
        untruncated.max_length = None
        tokenized = super()._prepare_dataset(dataset, processing_class, untruncated, dataset_name)
        return truncate_prompts_left(tokenized, args.max_length, dataset_name)

    def tokenize_pairs(self, dataset, name: str):
        """Pairs tokenized exactly as the training pairs are (chat template, prompts cut from the left)."""
        return self._prepare_dataset(dataset, self.processing_class, self.args, name)
